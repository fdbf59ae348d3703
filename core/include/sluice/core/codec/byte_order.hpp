#pragma once
// Unsigned integers of 1, 2, 4 or 8 bytes in either byte order, as length
// fields carry them. Plain functions over bytes: any thread.

#include <cstddef>
#include <cstdint>

namespace sluice::codec {

// Which end of a length field comes first on the wire: big (network order) or
// little.
enum class byte_order : std::uint8_t { big, little };

// The `size`-byte unsigned integer at p (size is 1, 2, 4 or 8).
[[nodiscard]] constexpr std::uint64_t load_uint(const std::byte* p, unsigned size, byte_order order) noexcept {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < size; ++i) {
    const unsigned k = order == byte_order::big ? i : size - 1 - i;
    v = (v << 8) | std::to_integer<std::uint64_t>(p[k]);
  }
  return v;
}

// Writes the low `size` bytes of v at p.
constexpr void store_uint(std::byte* p, std::uint64_t v, unsigned size, byte_order order) noexcept {
  for (unsigned i = 0; i < size; ++i) {
    const unsigned k = order == byte_order::big ? size - 1 - i : i;
    p[k] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
}

// The largest value a `size`-byte field holds.
[[nodiscard]] constexpr std::uint64_t max_uint(unsigned size) noexcept {
  return size >= 8 ? UINT64_MAX : (std::uint64_t{1} << (8 * size)) - 1;
}

// 1, 2, 4 or 8: a size a length field may have.
[[nodiscard]] constexpr bool valid_field_size(unsigned size) noexcept {
  return size == 1 || size == 2 || size == 4 || size == 8;
}

}  // namespace sluice::codec
