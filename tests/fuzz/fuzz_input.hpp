#pragma once
// Helpers shared by the libFuzzer targets: read options from the front of
// the fuzzer's input, then deliver the rest to a buffer chain in pieces whose
// sizes the input also chooses, so every split point gets exercised.
// Failures abort (libFuzzer reports them with the input that caused them).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"

namespace sluice::fuzz {

#define SLUICE_FUZZ_CHECK(cond)                                                    \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint64_t number(unsigned bytes) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v = (v << 8) | byte();
    return v;
  }
  // What is left: the stream to decode.
  std::string_view rest() const { return {reinterpret_cast<const char*>(p_), n_}; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// Piece sizes from 1 to 64 chosen by a small generator seeded from `seed`.
inline std::vector<std::string_view> cut(std::string_view data, std::uint32_t seed) {
  std::vector<std::string_view> pieces;
  std::uint32_t x = seed | 1;
  while (!data.empty()) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    const std::size_t n = std::min<std::size_t>(data.size(), 1 + x % 64);
    pieces.push_back(data.substr(0, n));
    data.remove_prefix(n);
  }
  return pieces;
}

// Appends `piece` in a fresh pool segment of its own.
inline void append(segment_pool& pool, buffer_chain& c, std::string_view piece) {
  segment* s = pool.allocate();
  SLUICE_FUZZ_CHECK(s != nullptr && piece.size() <= s->tailroom());
  std::memcpy(s->base + s->end, piece.data(), piece.size());
  s->end += static_cast<std::uint32_t>(piece.size());
  c.append(s);
}

inline segment_pool::options pool_options() {
  segment_pool::options o;
  o.segment_size = 4096;
  o.max_bytes = std::size_t{64} << 20;
  return o;
}

}  // namespace sluice::fuzz
