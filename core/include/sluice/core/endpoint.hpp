#pragma once
// An IPv4 or IPv6 address with a port: what listen, connect and send_to take.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/base/result.hpp"

namespace sluice {

class endpoint {
 public:
  endpoint() noexcept;
  // From a socket address (AF_INET or AF_INET6); anything else gives an empty endpoint.
  endpoint(const sockaddr* sa, socklen_t len) noexcept;

  // Parses "HOST:PORT", "[IPV6]:PORT", ":PORT" or "*:PORT" (any address).
  // HOST may be a name ("localhost"); it is resolved here (control plane only).
  static result<endpoint> parse(std::string_view text);
  static endpoint ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept;
  static endpoint loopback_v4(std::uint16_t port) noexcept;
  static endpoint loopback_v6(std::uint16_t port) noexcept;

  [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
  [[nodiscard]] int family() const noexcept { return addr_.sa.sa_family; }
  [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
  [[nodiscard]] std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  // IPv4 address in host byte order (0 for IPv6).
  [[nodiscard]] std::uint32_t v4_addr() const noexcept;
  // A hash of the address only (not the port), stable across runs.
  [[nodiscard]] std::uint64_t address_hash() const noexcept;

  [[nodiscard]] const sockaddr* data() const noexcept { return &addr_.sa; }
  [[nodiscard]] sockaddr* data() noexcept { return &addr_.sa; }
  [[nodiscard]] socklen_t size() const noexcept;
  // Room for any IPv4 or IPv6 socket address (what accept and recvfrom may fill).
  [[nodiscard]] static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_in6); }

  // "127.0.0.1:80" or "[::1]:80".
  [[nodiscard]] std::string to_string() const;
  // The address alone ("127.0.0.1", "::1"), written into buf without
  // allocating (data path: X-Forwarded-For); empty for an empty endpoint.
  static constexpr std::size_t address_text_capacity = 46;  // INET6_ADDRSTRLEN
  [[nodiscard]] std::string_view address_text(char (&buf)[address_text_capacity]) const noexcept;

  friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

 private:
  // Compact on purpose (28 bytes): every connection stores its peer's.
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } addr_;
};

}  // namespace sluice
