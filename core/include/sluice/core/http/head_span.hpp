#pragma once
// Where a piece of a parsed HTTP head is: an offset from the head's first
// byte and a length. Requests and responses both keep their target, reason
// and header fields this way, so that the parsed message holds no copies
// and no pointers that a moved head would invalidate.

#include <cstdint>
#include <string_view>

namespace sluice::http {

// A piece of a head: `len` bytes at offset `off` from the head's first byte.
struct head_span {
  std::uint32_t off = 0;  // offset from the head's first byte
  std::uint32_t len = 0;  // length in bytes

  // The piece, given the head's first byte.
  [[nodiscard]] std::string_view in(const char* head) const noexcept { return {head + off, len}; }
};

// A header field of a head: its name and its value, as spans.
struct head_field {
  head_span name;   // the field name as sent
  head_span value;  // the value, without surrounding spaces or tabs
};

}  // namespace sluice::http
