#pragma once
// `sluice-bench frames`: length-prefixed messages, a 4-byte big-endian
// length and --size pseudo-random payload bytes, written with
// codec::length_field_prepender; replies are split with
// codec::length_field_decoder and checked byte for byte, length included.

#include <cstring>
#include <string>
#include <vector>

#include "payload.hpp"
#include "protocol.hpp"
#include "settings.hpp"
#include "sluice/core/codec/length_field_decoder.hpp"
#include "sluice/core/codec/length_field_prepender.hpp"

namespace sluice::bench {

class frames_protocol {
 public:
  struct conn_state {};
  static constexpr unsigned header_size = 4;

  explicit frames_protocol(const settings& s)
      : size_(s.size),
        expected_(s.size),
        // A reply may be longer than what was sent (a wrong server); accept
        // up to twice that before calling the stream broken.
        decoder_(codec::length_field_decoder::make(
                     {.field_size = header_size, .strip = header_size, .max_frame_length = 2 * s.size + header_size})
                     .value()),
        prepender_(codec::length_field_prepender::make({.field_size = header_size}).value()) {}

  void open(conn_state&) noexcept {}

  bool send(connection& c, conn_state&, std::uint32_t conn, std::uint64_t seq) noexcept {
    return prepender_.write_header(c.output(), size_) && write_message(c, expected_, size_, conn, seq);
  }

  reply_result receive(buffer_chain& in, conn_state&, std::uint32_t conn, std::uint64_t seq, std::string& why) noexcept {
    std::string_view frame;
    const codec::frame_status st = decoder_.decode(in, frame);
    if (st == codec::frame_status::need_more) return {};
    if (st != codec::frame_status::frame) {
      why = "reply cannot be framed: " + std::string(codec::to_string(st));
      return {reply::broken, 0};
    }
    const std::size_t bytes = header_size + frame.size();
    fill_message(expected_.data(), size_, conn, seq);
    if (frame.size() != size_ || std::memcmp(frame.data(), expected_.data(), size_) != 0) {
      why = frame.size() != size_ ? "reply frame has " + std::to_string(frame.size()) + " bytes, sent " +
                                        std::to_string(size_)
                                  : "echoed frame bytes differ from the bytes sent";
      return {reply::mismatch, bytes};
    }
    return {reply::ok, bytes};
  }

 private:
  std::size_t size_;
  std::vector<std::byte> expected_;
  codec::length_field_decoder decoder_;
  codec::length_field_prepender prepender_;
};

}  // namespace sluice::bench
