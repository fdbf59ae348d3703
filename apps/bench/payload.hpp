#pragma once
// Message `seq` of connection `conn`: reproducible pseudo-random bytes, so a
// checker regenerates what was sent instead of remembering it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "sluice/core/connection.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::bench {

inline void fill_message(std::byte* out, std::size_t n, std::uint32_t conn, std::uint64_t seq) noexcept {
  std::uint64_t x = (static_cast<std::uint64_t>(conn) << 40) ^ seq ^ 0x9E3779B97F4A7C15ULL;
  std::size_t i = 0;
  while (i < n) {
    // splitmix64
    x += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    const std::size_t k = std::min<std::size_t>(8, n - i);
    std::memcpy(out + i, &z, k);
    i += k;
  }
}

// Queues message `seq` of connection `conn` (`size` bytes) on c: generated
// in place in the output when it fits a segment, through `scratch` (at least
// `size` bytes) otherwise. False if the output refused it.
inline bool write_message(connection& c, std::vector<std::byte>& scratch, std::size_t size, std::uint32_t conn,
                          std::uint64_t seq) noexcept {
  auto room = size <= c.loop().pool().segment_size() ? c.output().reserve(size) : std::span<std::byte>{};
  if (!room.empty()) {
    fill_message(room.data(), size, conn, seq);
    c.output().commit(size);
    c.flush();
    return true;
  }
  fill_message(scratch.data(), size, conn, seq);
  return c.write(std::string_view(reinterpret_cast<const char*>(scratch.data()), size));
}

}  // namespace sluice::bench
