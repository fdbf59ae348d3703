#include "sluice/inet/interface_config.hpp"

#include <array>
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
  std::string s =
      format_ipv4(address) + "/" + std::to_string(prefix) + (gateway != 0 ? " gateway " + format_ipv4(gateway) : "");
  for (const auto& a : ip6) s += " " + a.address.to_string() + "/" + std::to_string(a.prefix);
  if (!gateway6.is_unspecified()) s += " gateway6 " + gateway6.to_string();
  if (accept_ra) s += " accept-ra";
  return s;
}

ip_address link_local_from_mac(const mac_address& mac) noexcept {
  ip_address a;
  a.bytes[0] = 0xfe;
  a.bytes[1] = 0x80;
  a.bytes[8] = static_cast<std::uint8_t>(mac.bytes[0] ^ 0x02);  // the universal/local bit, inverted
  a.bytes[9] = mac.bytes[1];
  a.bytes[10] = mac.bytes[2];
  a.bytes[11] = 0xff;
  a.bytes[12] = 0xfe;
  a.bytes[13] = mac.bytes[3];
  a.bytes[14] = mac.bytes[4];
  a.bytes[15] = mac.bytes[5];
  return a;
}

namespace {

// The 16 bytes as two big-endian 64-bit halves.
std::array<std::uint64_t, 2> halves(const ip_address& a) noexcept {
  std::uint64_t hi = 0, lo = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    hi = (hi << 8) | a.bytes[i];
    lo = (lo << 8) | a.bytes[8 + i];
  }
  return {hi, lo};
}

}  // namespace

bool ip6_interface_address::on_link(const ip_address& a) const noexcept {
  const auto x = halves(a), y = halves(address);
  const std::uint64_t mask_hi =
      prefix >= 64 ? ~std::uint64_t{0} : (prefix == 0 ? 0 : ~std::uint64_t{0} << (64 - prefix));
  const std::uint64_t mask_lo = prefix <= 64 ? 0 : ~std::uint64_t{0} << (128 - prefix);
  return ((x[0] ^ y[0]) & mask_hi) == 0 && ((x[1] ^ y[1]) & mask_lo) == 0;
}

bool interface_config::is_ip6(const ip_address& a) const noexcept {
  for (const auto& x : ip6)
    if (x.address == a && !x.duplicate) return true;
  return false;
}

bool interface_config::on_link6(const ip_address& a) const noexcept {
  if (a.is_v6_link_local()) return true;
  for (const auto& x : ip6)
    if (x.on_link(a)) return true;
  return false;
}

const ip6_interface_address* interface_config::source6_for(const ip_address& a) const noexcept {
  const ip6_interface_address* first = nullptr;
  for (const auto& x : ip6) {
    if (x.duplicate) continue;
    if (x.on_link(a)) return &x;
    if (first == nullptr) first = &x;
  }
  return first;
}

result<interface_config> interface_config::parse(std::string_view ip, std::string_view gateway,
                                                 const std::vector<std::string>& ip6, std::string_view gateway6) {
  auto base = parse(ip, gateway);
  if (!base.ok()) return base;
  interface_config c = *base;
  if (ip6.size() > max_ip6) {
    return error{"--ip6 given " + std::to_string(ip6.size()) + " times: at most " + std::to_string(max_ip6), {}};
  }
  for (const std::string& text : ip6) {
    const std::string flag = "--ip6=" + text;
    const auto slash = text.find('/');
    if (slash == std::string::npos) return error{flag + ": give a prefix, e.g. fd00::2/64", {}};
    auto a = ip_address::parse(std::string_view(text).substr(0, slash));
    if (!a || a->is_v4()) return error{flag + ": not an IPv6 address", {}};
    std::string_view p = std::string_view(text).substr(slash + 1);
    unsigned prefix = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || prefix == 0 || prefix > 128) {
      return error{flag + ": the prefix must be 1 to 128", {}};
    }
    ip_address loopback;
    loopback.bytes[15] = 1;
    if (a->is_unspecified() || a->is_v6_multicast() || *a == loopback) {
      return error{flag + ": not a usable unicast address", {}};
    }
    if (a->is_v6_link_local()) {
      return error{flag + ": the link-local address comes from the MAC; give a global or unique-local one", {}};
    }
    if (c.is_ip6(*a)) return error{flag + ": given twice", {}};
    c.ip6.push_back({*a, prefix});
  }
  if (!gateway6.empty()) {
    const std::string flag = "--gateway6=" + std::string(gateway6);
    auto g = ip_address::parse(gateway6);
    if (!g || g->is_v4()) return error{flag + ": not an IPv6 address", {}};
    if (g->is_unspecified() || g->is_v6_multicast() || c.is_ip6(*g)) {
      return error{flag + ": not another host's unicast address", {}};
    }
    if (!c.on_link6(*g)) return error{flag + ": must be link-local (fe80::/10) or inside an --ip6 prefix", {}};
    if (c.ip6.empty()) return error{flag + ": needs an --ip6 address to send from", {}};
    c.gateway6 = *g;
  }
  return c;
}

}  // namespace sluice::inet
