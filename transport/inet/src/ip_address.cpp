#include "sluice/inet/ip_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "sluice/core/endpoint.hpp"

namespace sluice::inet {

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    in_addr a;
    std::memcpy(&a, bytes.data() + 12, 4);
    inet_ntop(AF_INET, &a, buf, sizeof buf);
  } else {
    in6_addr a;
    std::memcpy(&a, bytes.data(), 16);
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
  }
  return buf;
}

std::optional<ip_address> ip_address::parse(std::string_view text) noexcept {
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) == 1) return v4(ntohl(a4.s_addr));
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) == 1) return v6(&a6);
  return std::nullopt;
}

ip_address ip_address::of(const endpoint& e) noexcept {
  if (e.family() == AF_INET) return v4(e.v4_addr());
  if (e.family() == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(e.data());
    return v6(&s->sin6_addr);
  }
  return {};
}

endpoint ip_address::with_port(std::uint16_t port) const noexcept {
  if (is_v4()) return endpoint::ipv4(v4_addr(), port);
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  std::memcpy(&s.sin6_addr, bytes.data(), 16);
  return endpoint(reinterpret_cast<const sockaddr*>(&s), sizeof s);
}

}  // namespace sluice::inet
