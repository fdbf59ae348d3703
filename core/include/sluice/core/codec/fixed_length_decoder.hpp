#pragma once
// Splits a byte stream into frames of one fixed size.
//
//   auto d = codec::fixed_length_decoder::make({.frame_length = 32});
//   buffer_chain frame;
//   while (d->decode(c.input(), frame) == codec::frame_status::frame) { ... }
//
// One decoder per connection; owner core only.

#include <cstddef>

#include "sluice/core/codec/frame_decoder.hpp"
#include "sluice/base/result.hpp"

namespace sluice::codec {

// Frames of frame_length bytes each (see the file comment). Made by make();
// decode() comes from frame_decoder.
class fixed_length_decoder : public frame_decoder<fixed_length_decoder> {
 public:
  // The frame size.
  struct options {
    std::size_t frame_length = 1;  // bytes per frame, at least 1
  };

  // Checks the options (frame_length at least 1).
  static result<fixed_length_decoder> make(const options& opts);

  // Where the next frame lies: the first frame_length bytes, once that many are
  // buffered. For frame_decoder.
  [[nodiscard]] frame_bounds locate(const buffer_chain& in) const noexcept {
    if (in.size() < opts_.frame_length) return {frame_status::need_more};
    return {frame_status::frame, 0, opts_.frame_length, 0};
  }
  // Nothing to forget: a fixed-length decoder keeps no scan state.
  void reset() noexcept {}
  // The options it was made with.
  [[nodiscard]] const options& settings() const noexcept { return opts_; }

 private:
  explicit fixed_length_decoder(const options& opts) noexcept : opts_(opts) {}
  options opts_;
};

}  // namespace sluice::codec
