#pragma once
// Splits a byte stream at any of a set of delimiters (1 to 8 of them, each 1
// to 16 bytes): a frame ends at the earliest delimiter, and where several
// start at the same byte the longest wins (so {"\n", "\n\n"} or {"\r\n",
// "\r\n\r\n"} behave as one expects). When a longer delimiter could still
// match once more bytes arrive, the decoder waits for them.
//
//   auto d = codec::delimiter_decoder::make({"\r\n", "\n", std::string_view("\0", 1)}, {.max_length = 4096});
//   if (!d) { /* d.err().message says why */ }
//   buffer_chain frame;
//   while (d->decode(c.input(), frame) == codec::frame_status::frame) { ... }
//
// A frame longer than max_length is refused (too_long) as soon as no
// delimiter can start within it. The delimiters are copied into the decoder
// (no allocation). One decoder per connection; owner core only.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "sluice/core/codec/frame_decoder.hpp"
#include "sluice/base/result.hpp"

namespace sluice::codec {

// Frames that end at any of up to max_delimiters delimiters (see the file
// comment). Made by make(), which checks the delimiters; decode() comes from
// frame_decoder.
class delimiter_decoder : public frame_decoder<delimiter_decoder> {
 public:
  // Delimiters one decoder may have.
  static constexpr std::size_t max_delimiters = 8;
  // Bytes one delimiter may have.
  static constexpr std::size_t max_delimiter_size = 16;

  // What a frame may be, beyond its delimiters.
  struct options {
    // Most bytes of frame content, not counting its delimiter.
    std::size_t max_length = 8192;
    // Hand out frames without their delimiter; false keeps it.
    bool strip_delimiter = true;
  };

  // Checks the delimiters (count and sizes) and copies them in.
  static result<delimiter_decoder> make(std::span<const std::string_view> delimiters, const options& opts);
  // make() for a braced list of delimiters: make({"\r\n", "\n"}, opts).
  static result<delimiter_decoder> make(std::initializer_list<std::string_view> delimiters, const options& opts) {
    return make(std::span<const std::string_view>(delimiters.begin(), delimiters.size()), opts);
  }
  // With default options.
  static result<delimiter_decoder> make(std::initializer_list<std::string_view> delimiters) {
    return make(delimiters, options{});
  }

  // Where the next frame lies: up to the first delimiter found (the earliest in
  // the input, the longest at the same offset), scanning only bytes not scanned
  // before. For frame_decoder.
  [[nodiscard]] frame_bounds locate(const buffer_chain& in) noexcept;
  // Forgets scanning progress: for a fresh input, or after others consumed from it.
  void reset() noexcept { scanned_ = 0; }
  // The options it was made with.
  [[nodiscard]] const options& settings() const noexcept { return opts_; }
  // Delimiters it looks for.
  [[nodiscard]] std::size_t delimiter_count() const noexcept { return count_; }

 private:
  delimiter_decoder() = default;

  options opts_{};
  std::array<std::array<char, max_delimiter_size>, max_delimiters> delims_{};
  std::array<std::uint8_t, max_delimiters> sizes_{};
  std::size_t count_ = 0;
  // The distinct first bytes of the delimiters: what the scan looks for.
  std::array<char, max_delimiters> firsts_{};
  std::size_t firsts_count_ = 0;
  std::size_t longest_ = 0;
  std::size_t scanned_ = 0;  // no delimiter starts before this input offset
};

}  // namespace sluice::codec
