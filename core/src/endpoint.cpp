#include "sluice/core/endpoint.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace sluice {

endpoint::endpoint() noexcept { std::memset(&addr_, 0, sizeof addr_); }

endpoint::endpoint(const sockaddr* sa, socklen_t len) noexcept : endpoint() {
  if (sa == nullptr) return;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&addr_, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&addr_, sa, sizeof(sockaddr_in6));
  }
}

endpoint endpoint::ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept {
  endpoint e;
  auto* in = &e.addr_.v4;
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(host_order_addr);
  in->sin_port = htons(port);
  return e;
}

endpoint endpoint::loopback_v4(std::uint16_t port) noexcept { return ipv4(INADDR_LOOPBACK, port); }

endpoint endpoint::loopback_v6(std::uint16_t port) noexcept {
  endpoint e;
  auto* in6 = &e.addr_.v6;
  in6->sin6_family = AF_INET6;
  in6->sin6_addr = in6addr_loopback;
  in6->sin6_port = htons(port);
  return e;
}

result<endpoint> endpoint::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return error{"bad address '" + std::string(text) + "': " + std::string(why), {}};
  };
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("expected [IPV6]:PORT");
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return bad("IPv6 addresses need brackets: [ADDR]:PORT");
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  if (host.empty() || host == "*") return ipv4(INADDR_ANY, static_cast<std::uint16_t>(port));

  std::string host_z(host);
  endpoint e;
  auto* in = &e.addr_.v4;
  auto* in6 = &e.addr_.v6;
  if (inet_pton(AF_INET, host_z.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    return e;
  }
  if (inet_pton(AF_INET6, host_z.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    return e;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host_z.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) return bad(std::string("cannot resolve host: ") + gai_strerror(rc));
  endpoint found(res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (found.empty()) return bad("host has no IPv4 or IPv6 address");
  found.set_port(static_cast<std::uint16_t>(port));
  return found;
}

std::uint16_t endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(addr_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(addr_.v6.sin6_port);
  return 0;
}

void endpoint::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) addr_.v4.sin_port = htons(port);
  if (family() == AF_INET6) addr_.v6.sin6_port = htons(port);
}

std::uint32_t endpoint::v4_addr() const noexcept {
  if (family() != AF_INET) return 0;
  return ntohl(addr_.v4.sin_addr.s_addr);
}

std::uint64_t endpoint::address_hash() const noexcept {
  // FNV-1a over the address bytes: stable and cheap; not for adversarial use.
  const unsigned char* p = nullptr;
  std::size_t n = 0;
  if (family() == AF_INET) {
    p = reinterpret_cast<const unsigned char*>(&addr_.v4.sin_addr);
    n = 4;
  } else if (family() == AF_INET6) {
    p = reinterpret_cast<const unsigned char*>(&addr_.v6.sin6_addr);
    n = 16;
  }
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

socklen_t endpoint::size() const noexcept {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

std::string_view endpoint::address_text(char (&buf)[address_text_capacity]) const noexcept {
  static_assert(address_text_capacity >= INET6_ADDRSTRLEN);
  if (family() == AF_INET) {
    // By hand: the gateway formats the client's address on every request
    // (X-Forwarded-For), and glibc's inet_ntop does it through sprintf.
    unsigned char octets[4];
    std::memcpy(octets, &addr_.v4.sin_addr, sizeof octets);
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i != 0) *p++ = '.';
      p = std::to_chars(p, buf + address_text_capacity, octets[i]).ptr;
    }
    return {buf, static_cast<std::size_t>(p - buf)};
  }
  if (family() != AF_INET6 || inet_ntop(AF_INET6, &addr_.v6.sin6_addr, buf, address_text_capacity) == nullptr) {
    return {};
  }
  return buf;
}

std::string endpoint::to_string() const {
  char buf[address_text_capacity];
  std::string_view a = address_text(buf);
  if (a.empty()) return "(none)";
  return (is_v6() ? "[" + std::string(a) + "]" : std::string(a)) + ":" + std::to_string(port());
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
  return a.size() == b.size() && std::memcmp(&a.addr_, &b.addr_, a.size()) == 0;
}

}  // namespace sluice
