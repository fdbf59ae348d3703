#pragma once
// Splits a byte stream into frames that carry their own length in a header
// field: 1, 2, 4 or 8 bytes, big or little endian, at any offset.
//
//   [ field_offset bytes | length field | length + length_adjustment bytes ]
//   |<------------------------ the frame on the wire -------------------->|
//   |<- strip ->|  handed out ...                                         |
//
// The frame on the wire is field_offset + field_size + value +
// length_adjustment bytes. Use a negative adjustment when the value counts
// the header too (a 4-byte field that counts itself: -4), a positive one when
// more header follows the field. `strip` bytes are dropped from the front of
// each frame before it is handed out (4 with a bare 4-byte header gives the
// payload alone).
//
// The header is checked before anything else is buffered: a frame longer than
// max_frame_length is too_long, a value that makes the length negative or
// shorter than `strip` is bad_length; either way the connection is closed
// (codec::reject) without waiting for the announced bytes.
//
//   auto d = codec::length_field_decoder::make({.field_size = 2, .strip = 2});
//   std::string_view payload;
//   while (d->decode(c.input(), payload) == codec::frame_status::frame) { ... }
//
// One decoder per connection; owner core only.

#include <cstddef>
#include <cstdint>

#include "sluice/core/codec/byte_order.hpp"
#include "sluice/core/codec/frame_decoder.hpp"
#include "sluice/base/result.hpp"

namespace sluice::codec {

// Frames announced by a length field in their header (see the file comment).
// Made by make(), which checks the options; decode() comes from frame_decoder.
class length_field_decoder : public frame_decoder<length_field_decoder> {
 public:
  // Where the length field lies, what it counts and what is handed out (see the
  // file comment for the layout).
  struct options {
    std::size_t field_offset = 0;  // bytes of header before the length field
    unsigned field_size = 4;  // 1, 2, 4 or 8
    byte_order order = byte_order::big;  // the field's byte order
    std::int64_t length_adjustment = 0;  // added to the field's value to get the bytes that follow the field
    std::size_t strip = 0;               // bytes dropped from the front of each frame (the header, or part of it)
    // Most bytes of one frame on the wire, header included.
    std::size_t max_frame_length = std::size_t{1} << 20;
  };

  // Checks the options: a valid field size, and a maximum that leaves room
  // for the header and for what is stripped.
  static result<length_field_decoder> make(const options& opts);

  // Where the next frame lies, from its header alone (too_long and bad_length
  // as soon as the header is in). For frame_decoder.
  [[nodiscard]] frame_bounds locate(const buffer_chain& in) const noexcept;
  // Nothing to forget: the header is read again on every call (a few bytes).
  void reset() noexcept {}
  // The options it was made with.
  [[nodiscard]] const options& settings() const noexcept { return opts_; }

 private:
  explicit length_field_decoder(const options& opts) noexcept : opts_(opts) {}
  options opts_;
};

}  // namespace sluice::codec
