#pragma once
// The stack's addressing: its IPv4 address and subnet, and an optional
// default gateway (--ip=ADDR/PREFIX, --gateway=ADDR). A value type.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/base/result.hpp"

namespace sluice::inet {

// "10.0.0.1" to a host-order address.
[[nodiscard]] std::optional<std::uint32_t> parse_ipv4(std::string_view text) noexcept;
// A host-order address as "10.0.0.1".
[[nodiscard]] std::string format_ipv4(std::uint32_t host_order);

// The stack's address on its link: the address, its subnet and the default
// gateway. A plain value; any thread.
struct interface_config {
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

  // From --ip and --gateway; errors name the flag and say what is wrong.
  static result<interface_config> parse(std::string_view ip, std::string_view gateway);
  // "10.0.0.2/24 gateway 10.0.0.1"
  [[nodiscard]] std::string to_string() const;
};

}  // namespace sluice::inet
