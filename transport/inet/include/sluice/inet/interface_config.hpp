#pragma once
// The stack's addressing: its IPv4 address and subnet, and an optional
// default gateway (--ip=ADDR/PREFIX, --gateway=ADDR); its IPv6 addresses
// with their prefixes (--ip6=ADDR/PREFIX, repeatable) and an optional IPv6
// default gateway (--gateway6=ADDR). The IPv6 link-local address is not
// configured: it comes from the port's MAC (link_local_from_mac), always.
// A value type.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/inet/mac_address.hpp"

namespace sluice::inet {

// "10.0.0.1" to a host-order address.
[[nodiscard]] std::optional<std::uint32_t> parse_ipv4(std::string_view text) noexcept;
// A host-order address as "10.0.0.1".
[[nodiscard]] std::string format_ipv4(std::uint32_t host_order);

// fe80::/64 with the modified EUI-64 interface identifier of mac (RFC 4291
// appendix A, RFC 2464 5): the stack's IPv6 link-local address.
[[nodiscard]] ip_address link_local_from_mac(const mac_address& mac) noexcept;

// One IPv6 address of the interface and its on-link prefix (--ip6).
struct ip6_interface_address {
  ip_address address;    // a global or unique-local unicast address
  unsigned prefix = 64;  // on-link prefix length (1 to 128)
  // Duplicate address detection found another host using it (RFC 4862
  // 5.4.5): not ours any more (is_ip6, source6_for skip it); its prefix
  // stays on link.
  bool duplicate = false;
  // a is inside this address's prefix.
  [[nodiscard]] bool on_link(const ip_address& a) const noexcept;
};

// The stack's address on its link: the address, its subnet and the default
// gateway. A plain value; any thread.
struct interface_config {
  // --ip6 given more often than this is refused (each address is checked
  // on every IPv6 frame received).
  static constexpr std::size_t max_ip6 = 8;

  std::uint32_t address = 0;  // host order
  unsigned prefix = 24;  // subnet prefix length (0 to 32)
  std::uint32_t gateway = 0;  // 0: none (only the subnet is reachable)

  // The subnet mask of prefix, host order.
  [[nodiscard]] std::uint32_t netmask() const noexcept {
    return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  }
  // The subnet's broadcast address, host order.
  [[nodiscard]] std::uint32_t subnet_broadcast() const noexcept { return (address & netmask()) | ~netmask(); }
  // On the local link (reached without the gateway).
  [[nodiscard]] bool on_link(std::uint32_t a) const noexcept { return (a & netmask()) == (address & netmask()); }
  // Addresses of ours that datagrams may be sent to (unicast, both broadcasts).
  [[nodiscard]] bool accepts(std::uint32_t dst) const noexcept {
    return dst == address || dst == 0xffffffffu || (prefix < 31 && dst == subnet_broadcast());
  }

  // IPv6 (besides the link-local address, which the stack derives from its MAC).
  std::vector<ip6_interface_address> ip6;  // --ip6, in the order given
  ip_address gateway6;                     // --gateway6; "::": none (only on-link prefixes)
  // --accept-ra: router advertisements give the default router (RFC 4861
  // 6.3.4) when gateway6 is "::"; prefixes and SLAAC are not used.
  bool accept_ra = false;

  // One of the --ip6 addresses (not the link-local one), not found duplicate.
  [[nodiscard]] bool is_ip6(const ip_address& a) const noexcept;
  // a is inside one of the --ip6 prefixes (or link-local: always on link).
  [[nodiscard]] bool on_link6(const ip_address& a) const noexcept;
  // The --ip6 address whose prefix holds a, else the first; duplicate ones
  // skipped; nullptr if none is left.
  [[nodiscard]] const ip6_interface_address* source6_for(const ip_address& a) const noexcept;

  // From --ip and --gateway; errors name the flag and say what is wrong.
  static result<interface_config> parse(std::string_view ip, std::string_view gateway);
  // The same, and --ip6 (each ADDR/PREFIX) and --gateway6 (empty: none).
  static result<interface_config> parse(std::string_view ip, std::string_view gateway,
                                        const std::vector<std::string>& ip6, std::string_view gateway6);
  // "10.0.0.2/24 gateway 10.0.0.1", then " fd00::2/64 gateway6 fe80::1" for IPv6.
  [[nodiscard]] std::string to_string() const;
};

}  // namespace sluice::inet
