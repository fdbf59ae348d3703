#pragma once
// Sequence number arithmetic modulo 2^32 (RFC 9293 section 3.4): a < b
// means a comes before b on the circle, which holds while the two are less
// than 2^31 apart (TCP never has more than 2^30 bytes in a window, RFC 7323
// section 2.3). Every comparison of sequence numbers in the stack goes
// through these, so that wraparound is never a special case.

#include <cstdint>

namespace sluice::inet {

// a comes before b.
[[nodiscard]] constexpr bool seq_lt(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}
// a comes before b or is b.
[[nodiscard]] constexpr bool seq_le(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) <= 0;
}
// a comes after b.
[[nodiscard]] constexpr bool seq_gt(std::uint32_t a, std::uint32_t b) noexcept { return seq_lt(b, a); }
// a comes after b or is b.
[[nodiscard]] constexpr bool seq_ge(std::uint32_t a, std::uint32_t b) noexcept { return seq_le(b, a); }
// The later of a and b.
[[nodiscard]] constexpr std::uint32_t seq_max(std::uint32_t a, std::uint32_t b) noexcept { return seq_lt(a, b) ? b : a; }
// The earlier of a and b.
[[nodiscard]] constexpr std::uint32_t seq_min(std::uint32_t a, std::uint32_t b) noexcept { return seq_lt(a, b) ? a : b; }
// lo <= x < hi on the circle.
[[nodiscard]] constexpr bool seq_in(std::uint32_t x, std::uint32_t lo, std::uint32_t hi) noexcept {
  return seq_le(lo, x) && seq_lt(x, hi);
}

static_assert(seq_lt(0xfffffff0u, 0x10u), "wraparound: a number just below 2^32 comes before a small one");
static_assert(!seq_lt(0x10u, 0xfffffff0u));
static_assert(seq_in(2u, 0xfffffffeu, 5u));

}  // namespace sluice::inet
