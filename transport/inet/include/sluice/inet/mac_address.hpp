#pragma once
// A 48-bit Ethernet address. A value type: any thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::inet {

struct mac_address {
  std::array<std::uint8_t, 6> bytes{};

  [[nodiscard]] static constexpr mac_address broadcast() noexcept {
    return mac_address{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  }
  [[nodiscard]] static mac_address from(const std::byte* p) noexcept {
    mac_address m;
    for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = std::to_integer<std::uint8_t>(p[i]);
    return m;
  }
  void store(std::byte* p) const noexcept {
    for (std::size_t i = 0; i < 6; ++i) p[i] = static_cast<std::byte>(bytes[i]);
  }
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  // Group addresses (broadcast included) have the low bit of the first byte set.
  [[nodiscard]] constexpr bool is_group() const noexcept { return (bytes[0] & 1) != 0; }
  [[nodiscard]] constexpr bool is_zero() const noexcept { return *this == mac_address{}; }

  // "02:00:00:00:00:01"
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] static std::optional<mac_address> parse(std::string_view text) noexcept;

  friend constexpr bool operator==(const mac_address&, const mac_address&) = default;
};

}  // namespace sluice::inet
