#pragma once
// Splits a byte stream into lines ending in LF or CRLF.
//
//   codec::line_decoder lines({.max_length = 1024});
//   std::string_view line;
//   while (lines.decode(c.input(), line) == codec::frame_status::frame) { ... }
//
// A line longer than max_length is refused (too_long) as soon as enough bytes
// arrived to be sure, never buffered to its end. The scan resumes where the
// last call stopped, so a line arriving byte by byte is searched once.
//
// One decoder per connection (it remembers how far it scanned); owner core only.

#include <cstddef>

#include "sluice/core/codec/frame_decoder.hpp"

namespace sluice::codec {

// Lines ending in LF or CRLF (see the file comment). decode() comes from
// frame_decoder.
class line_decoder : public frame_decoder<line_decoder> {
 public:
  // Limits and whether the ending is kept.
  struct options {
    // Most bytes of line content, not counting its CRLF or LF.
    std::size_t max_length = 8192;
    // Hand out lines without their ending; false keeps the CRLF or LF.
    bool strip_ending = true;
  };

  line_decoder() noexcept : line_decoder(options{}) {}
  // A decoder with these options (default: lines up to 8192 bytes, ending
  // stripped).
  explicit line_decoder(const options& opts) noexcept : opts_(opts) {}

  // Where the next line lies in `in`, without consuming anything.
  [[nodiscard]] frame_bounds locate(const buffer_chain& in) noexcept;
  // Forgets scanning progress: for a fresh input, or after others consumed from it.
  void reset() noexcept { scanned_ = 0; }
  // The options it was made with.
  [[nodiscard]] const options& settings() const noexcept { return opts_; }

 private:
  options opts_;
  std::size_t scanned_ = 0;  // input bytes known to hold no LF
};

}  // namespace sluice::codec
