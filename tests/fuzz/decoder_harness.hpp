#pragma once
// The check every decoder target makes: decode the same stream twice, once
// with all of it buffered (frames as chains) and once arriving piece by piece
// (frames as views); both must give the same frames and end the same way,
// every frame must satisfy `frame_ok`, and no segment may leak.

#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "sluice/core/codec/frame_status.hpp"

namespace sluice::fuzz {

struct run_result {
  std::vector<std::string> frames;
  codec::frame_status last = codec::frame_status::need_more;
  std::string rest;
};

template <class Decoder, class FrameOk>
void check_decoder(Decoder decoder, std::string_view data, std::uint32_t seed, FrameOk frame_ok) {
  segment_pool pool(pool_options());
  run_result whole;
  {
    Decoder d = decoder;
    buffer_chain in(&pool);
    for (std::string_view piece : cut(data, seed)) append(pool, in, piece);
    buffer_chain frame;
    while ((whole.last = d.decode(in, frame)) == codec::frame_status::frame) {
      std::string f;
      frame.for_each_piece([&](std::string_view p) {
        f += p;
        return true;
      });
      whole.frames.push_back(std::move(f));
    }
    in.for_each_piece([&](std::string_view p) {
      whole.rest += p;
      return true;
    });
  }
  run_result trickle;
  {
    Decoder d = decoder;
    buffer_chain in(&pool);
    for (std::string_view piece : cut(data, seed * 2654435761u)) {
      append(pool, in, piece);
      std::string_view frame;
      while ((trickle.last = d.decode(in, frame)) == codec::frame_status::frame) trickle.frames.emplace_back(frame);
      in.release();
      pool.reset_scratch();
      if (codec::is_error(trickle.last)) break;
    }
  }
  SLUICE_FUZZ_CHECK(whole.frames == trickle.frames);
  SLUICE_FUZZ_CHECK(whole.last == trickle.last);
  for (const auto& f : whole.frames) SLUICE_FUZZ_CHECK(frame_ok(f));
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
}

}  // namespace sluice::fuzz
