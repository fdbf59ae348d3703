#include "sluice/inet/siphash.hpp"

#include <bit>
#include <cstring>
#include <random>

namespace sluice::inet {

namespace {

struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  // One SipRound (the paper, section 2: ARX network of four additions,
  // four rotations by 13, 16, 21, 17 and two by 32).
  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
  void compress(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();  // c = 2
    v0 ^= m;
  }
};

// Little-endian 64-bit word from 8 bytes, whatever the machine's order.
[[nodiscard]] std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t w = 0;
  for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];
  return w;
}

}  // namespace

std::uint64_t siphash24(const siphash_key& key, const void* data, std::size_t n) noexcept {
  // Initialisation constants: "somepseudorandomlygeneratedbytes" in ASCII.
  sip_state s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
              key.k1 ^ 0x7465646279746573ull};
  const auto* p = static_cast<const unsigned char*>(data);
  const std::size_t whole = n / 8 * 8;
  for (std::size_t i = 0; i < whole; i += 8) s.compress(load_le64(p + i));
  // The last block: the remaining bytes, and n mod 256 in the top byte.
  unsigned char last[8] = {};
  std::memcpy(last, p + whole, n - whole);
  last[7] = static_cast<unsigned char>(n);
  s.compress(load_le64(last));
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();  // d = 4
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

siphash_key make_secret_key(std::uint64_t seed, std::uint64_t salt) {
  if (seed != 0) return siphash_key{seed ^ salt, seed * 0x9e3779b97f4a7c15ull + salt};
  std::random_device rd;
  auto word = [&rd] { return (std::uint64_t{rd()} << 32) | rd(); };
  return siphash_key{word(), word()};
}

}  // namespace sluice::inet
