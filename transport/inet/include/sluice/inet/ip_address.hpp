#pragma once
// An IPv4 or IPv6 address as the user-space stack keeps it: 16 bytes in
// network order, an IPv4 address as its IPv4-mapped IPv6 form (ffff in
// bytes 10 and 11, RFC 4291 section 2.5.5.2). One type for both families,
// so a TCP four-tuple, a neighbour cache key or a reassembly key is the same
// structure whatever the family (one TCP, two address families). A plain
// value; any thread; no allocation except to_string().

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {
class endpoint;
}

namespace sluice::inet {

// An address of either family (see the file comment).
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 mapped (bytes 10-11 ffff, 12-15 the address)

  // The IPv4 address a.b.c.d given in host order (0x0a000001 for 10.0.0.1).
  [[nodiscard]] static constexpr ip_address v4(std::uint32_t host_order) noexcept {
    ip_address a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes[13] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes[14] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes[15] = static_cast<std::uint8_t>(host_order);
    return a;
  }
  // The IPv6 address whose 16 network-order bytes start at p.
  [[nodiscard]] static ip_address v6(const void* p) noexcept {
    ip_address a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  // An IPv4 address (IPv4-mapped form).
  [[nodiscard]] constexpr bool is_v4() const noexcept {
    // Three word compares (on every packet's path, both families).
    const auto w = std::bit_cast<std::array<std::uint32_t, 4>>(bytes);
    constexpr auto mapped = std::bit_cast<std::uint32_t>(std::array<std::uint8_t, 4>{0, 0, 0xff, 0xff});
    return (w[0] | w[1]) == 0 && w[2] == mapped;
  }
  // The IPv4 address in host order (meaningful only when is_v4()).
  [[nodiscard]] constexpr std::uint32_t v4_addr() const noexcept {
    return (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) | (std::uint32_t{bytes[14]} << 8) |
           bytes[15];
  }
  // "::" (IPv6's unspecified address; an all-zero value).
  [[nodiscard]] constexpr bool is_unspecified() const noexcept {
    const auto w = std::bit_cast<std::array<std::uint64_t, 2>>(bytes);
    return (w[0] | w[1]) == 0;
  }
  // An IPv6 multicast address (ff00::/8).
  [[nodiscard]] constexpr bool is_v6_multicast() const noexcept { return bytes[0] == 0xff; }
  // An IPv6 link-local unicast address (fe80::/10).
  [[nodiscard]] constexpr bool is_v6_link_local() const noexcept {
    return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
  }
  // The 16 bytes, network order (what goes on the wire for IPv6).
  [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes.data(); }

  // Byte for byte (as two 64-bit words: on every packet's path, no memcmp call).
  friend constexpr bool operator==(const ip_address& a, const ip_address& b) noexcept {
    const auto x = std::bit_cast<std::array<std::uint64_t, 2>>(a.bytes);
    const auto y = std::bit_cast<std::array<std::uint64_t, 2>>(b.bytes);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }

  // "10.0.0.1" or "fd00::1" (RFC 5952 form).
  [[nodiscard]] std::string to_string() const;
  // "10.0.0.1", "fd00::1" or "::ffff:10.0.0.1" (control plane).
  [[nodiscard]] static std::optional<ip_address> parse(std::string_view text) noexcept;
  // The address of an endpoint (IPv4 or IPv6; empty endpoints give "::").
  [[nodiscard]] static ip_address of(const endpoint& e) noexcept;
  // An endpoint for this address and port.
  [[nodiscard]] endpoint with_port(std::uint16_t port) const noexcept;
};

}  // namespace sluice::inet
