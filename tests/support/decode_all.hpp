#pragma once
// Runs a decoder over a chain until it stops, collecting the frames, through
// either of the two ways a decoder hands frames out.

#include <string>
#include <string_view>
#include <vector>

#include "chains.hpp"
#include "sluice/core/codec/frame_status.hpp"

namespace sluice::test {

struct decoded {
  std::vector<std::string> frames;
  codec::frame_status last = codec::frame_status::need_more;  // why decoding stopped
};

// Frames as chains of their own (zero copy).
template <class Decoder>
decoded decode_chains(Decoder& d, buffer_chain& in) {
  decoded out;
  buffer_chain frame;
  while ((out.last = d.decode(in, frame)) == codec::frame_status::frame) out.frames.push_back(contents(frame));
  return out;
}

// Frames as contiguous views.
template <class Decoder>
decoded decode_views(Decoder& d, buffer_chain& in) {
  decoded out;
  std::string_view frame;
  while ((out.last = d.decode(in, frame)) == codec::frame_status::frame) out.frames.emplace_back(frame);
  return out;
}

}  // namespace sluice::test
