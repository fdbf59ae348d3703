#pragma once
// A 48-bit Ethernet address. A value type: any thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::inet {

// An Ethernet address (see the file comment).
struct mac_address {
  std::array<std::uint8_t, 6> bytes{};  // in wire order

  // ff:ff:ff:ff:ff:ff.
  [[nodiscard]] static constexpr mac_address broadcast() noexcept {
    return mac_address{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  }
  // The 6 bytes at p, in wire order.
  [[nodiscard]] static mac_address from(const std::byte* p) noexcept {
    mac_address m;
    for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = std::to_integer<std::uint8_t>(p[i]);
    return m;
  }
  // Writes the 6 bytes at p, in wire order.
  void store(std::byte* p) const noexcept {
    for (std::size_t i = 0; i < 6; ++i) p[i] = static_cast<std::byte>(bytes[i]);
  }
  // ff:ff:ff:ff:ff:ff.
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  // Group addresses (broadcast included) have the low bit of the first byte set.
  [[nodiscard]] constexpr bool is_group() const noexcept { return (bytes[0] & 1) != 0; }
  // 00:00:00:00:00:00 (not set).
  [[nodiscard]] constexpr bool is_zero() const noexcept { return *this == mac_address{}; }

  // "02:00:00:00:00:01"
  [[nodiscard]] std::string to_string() const;
  // "02:00:00:00:00:01": six two-digit hex groups separated by ':'; nullopt
  // for anything else.
  [[nodiscard]] static std::optional<mac_address> parse(std::string_view text) noexcept;

  // The same six bytes.
  friend constexpr bool operator==(const mac_address&, const mac_address&) = default;
};

}  // namespace sluice::inet
