#pragma once
// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
// 2012), written from the paper's description: a keyed 64-bit PRF for short
// inputs. The TCP layer keys it with a per-stack secret to make initial
// sequence numbers (RFC 6528's F()) and SYN cookie MACs (RFC 4987 section
// 3.6) that an off-path attacker cannot predict. Beside it: secret keys and
// the cheaper keyed multiply-shift hash the tables use for addresses a
// sender chooses (neighbour slots, TCP buckets, IPv6 fragment ids).
//
// A value type; any thread, no allocation.

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sluice::inet {

// A 128-bit SipHash key, as two 64-bit halves.
struct siphash_key {
  std::uint64_t k0 = 0;  // first half (little-endian bytes 0..7 of the key)
  std::uint64_t k1 = 0;  // second half (bytes 8..15)
};

// SipHash-2-4 of n bytes at data.
[[nodiscard]] std::uint64_t siphash24(const siphash_key& key, const void* data, std::size_t n) noexcept;

// A secret key: from std::random_device when seed is 0 (control plane, a
// few calls per stack), else derived from seed and salt (reproducible runs:
// tcp_config::secret); salt tells one use's key from another's.
[[nodiscard]] siphash_key make_secret_key(std::uint64_t seed = 0, std::uint64_t salt = 0);

// A keyed multiply-shift hash of 16 bytes (an IPv6 address): the two 64-bit
// halves times the key's halves made odd, summed. Its high bits are the hash
// (take `>> (64 - bits)`): a sender that does not know the key cannot aim
// many addresses at one value. Two multiplications (siphash over 16 bytes
// cost a tenth of the IPv6 UDP echo per packet).
[[nodiscard]] inline std::uint64_t multiply_shift16(const void* p, const siphash_key& k) noexcept {
  std::uint64_t hi;
  std::uint64_t lo;
  std::memcpy(&hi, p, 8);
  std::memcpy(&lo, static_cast<const unsigned char*>(p) + 8, 8);
  return hi * (k.k0 | 1) + lo * (k.k1 | 1);
}

}  // namespace sluice::inet
