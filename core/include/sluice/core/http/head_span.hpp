#pragma once
// Where a piece of a parsed HTTP head is: an offset from the head's first
// byte and a length. Requests and responses both keep their target, reason
// and header fields this way, so that the parsed message holds no copies
// and no pointers that a moved head would invalidate.

#include <cstdint>
#include <string_view>

namespace sluice::http {

struct head_span {
  std::uint32_t off = 0;
  std::uint32_t len = 0;

  [[nodiscard]] std::string_view in(const char* head) const noexcept { return {head + off, len}; }
};

struct head_field {
  head_span name;
  head_span value;
};

}  // namespace sluice::http
