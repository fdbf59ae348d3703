#pragma once
// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
// 2012), written from the paper's description: a keyed 64-bit PRF for short
// inputs. The TCP layer keys it with a per-stack secret to make initial
// sequence numbers (RFC 6528's F()) and SYN cookie MACs (RFC 4987 section
// 3.6) that an off-path attacker cannot predict.
//
// A value type; any thread, no allocation.

#include <cstddef>
#include <cstdint>

namespace sluice::inet {

// A 128-bit SipHash key, as two 64-bit halves.
struct siphash_key {
  std::uint64_t k0 = 0;  // first half (little-endian bytes 0..7 of the key)
  std::uint64_t k1 = 0;  // second half (bytes 8..15)
};

// SipHash-2-4 of n bytes at data.
[[nodiscard]] std::uint64_t siphash24(const siphash_key& key, const void* data, std::size_t n) noexcept;

}  // namespace sluice::inet
