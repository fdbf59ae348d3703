#include "sluice/inet/interface_config.hpp"

#include <charconv>

namespace sluice::inet {

std::optional<std::uint32_t> parse_ipv4(std::string_view text) noexcept {
  std::uint32_t out = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (text.empty() || text.front() != '.') return std::nullopt;
      text.remove_prefix(1);
    }
    // One to three digits, no sign, no leading '+'.
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 3) return std::nullopt;
    unsigned v = 0;
    std::from_chars(text.data(), text.data() + digits, v);
    if (v > 255) return std::nullopt;
    out = (out << 8) | v;
    text.remove_prefix(digits);
  }
  if (!text.empty()) return std::nullopt;
  return out;
}

std::string format_ipv4(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) +
         "." + std::to_string(a & 0xff);
}

result<interface_config> interface_config::parse(std::string_view ip, std::string_view gateway) {
  interface_config c;
  if (ip.empty()) return error{"--ip=ADDR/PREFIX is needed by the user-space stack (e.g. --ip=10.0.0.2/24)", {}};
  const auto slash = ip.find('/');
  if (slash == std::string_view::npos) return error{"--ip=" + std::string(ip) + ": give a prefix, e.g. /24", {}};
  auto a = parse_ipv4(ip.substr(0, slash));
  if (!a) return error{"--ip=" + std::string(ip) + ": not an IPv4 address", {}};
  std::string_view p = ip.substr(slash + 1);
  unsigned prefix = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || prefix == 0 || prefix > 32) {
    return error{"--ip=" + std::string(ip) + ": the prefix must be 1 to 32", {}};
  }
  c.address = *a;
  c.prefix = prefix;
  const std::uint32_t first = c.address >> 24;
  if (c.address == 0 || first == 127 || first >= 224 || (prefix < 31 && c.address == c.subnet_broadcast()) ||
      (prefix < 31 && (c.address & ~c.netmask()) == 0)) {
    return error{"--ip=" + std::string(ip) + ": not a usable host address", {}};
  }
  if (!gateway.empty()) {
    auto g = parse_ipv4(gateway);
    if (!g) return error{"--gateway=" + std::string(gateway) + ": not an IPv4 address", {}};
    if (!c.on_link(*g) || *g == c.address) {
      return error{"--gateway=" + std::string(gateway) + ": must be another address inside " + format_ipv4(c.address) +
                       "/" + std::to_string(prefix),
                   {}};
    }
    c.gateway = *g;
  }
  return c;
}

std::string interface_config::to_string() const {
  return format_ipv4(address) + "/" + std::to_string(prefix) + (gateway != 0 ? " gateway " + format_ipv4(gateway) : "");
}

}  // namespace sluice::inet
