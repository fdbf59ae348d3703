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

// A socket address (see the file comment): 28 bytes, copyable, no allocation.
// Empty (AF_UNSPEC) when default-constructed.
class endpoint {
 public:
  endpoint() noexcept;
  // From a socket address (AF_INET or AF_INET6); anything else gives an empty endpoint.
  endpoint(const sockaddr* sa, socklen_t len) noexcept;

  // Parses "HOST:PORT", "[IPV6]:PORT", ":PORT" or "*:PORT" (any address).
  // HOST may be a name ("localhost"); it is resolved here (control plane only).
  static result<endpoint> parse(std::string_view text);
  // host_order_addr:port, e.g. ipv4(0x7f000001, 80) for 127.0.0.1:80.
  static endpoint ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept;
  // The IPv4 loopback, 127.0.0.1:port.
  static endpoint loopback_v4(std::uint16_t port) noexcept;
  // The IPv6 loopback, [::1]:port.
  static endpoint loopback_v6(std::uint16_t port) noexcept;

  // No address (default-constructed, or made from an unsupported family).
  [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
  // AF_INET, AF_INET6 or AF_UNSPEC (empty).
  [[nodiscard]] int family() const noexcept { return addr_.sa.sa_family; }
  // An IPv6 address.
  [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
  // The port in host byte order (0 for an empty endpoint).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // Changes the port (nothing for an empty endpoint).
  void set_port(std::uint16_t port) noexcept;
  // IPv4 address in host byte order (0 for IPv6).
  [[nodiscard]] std::uint32_t v4_addr() const noexcept;
  // A hash of the address only (not the port), stable across runs.
  [[nodiscard]] std::uint64_t address_hash() const noexcept;

  // The socket address, for the sockets API (bind, connect, sendto).
  [[nodiscard]] const sockaddr* data() const noexcept { return &addr_.sa; }
  // The socket address, for the sockets API to fill in (accept, recvfrom).
  [[nodiscard]] sockaddr* data() noexcept { return &addr_.sa; }
  // The length of the socket address for its family (0 when empty).
  [[nodiscard]] socklen_t size() const noexcept;
  // Room for any IPv4 or IPv6 socket address (what accept and recvfrom may fill).
  [[nodiscard]] static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_in6); }

  // "127.0.0.1:80" or "[::1]:80".
  [[nodiscard]] std::string to_string() const;
  // The size of the buffer address_text() writes into.
  static constexpr std::size_t address_text_capacity = 46;  // INET6_ADDRSTRLEN
  // The address alone ("127.0.0.1", "::1"), written into buf without
  // allocating (data path: X-Forwarded-For); empty for an empty endpoint.
  [[nodiscard]] std::string_view address_text(char (&buf)[address_text_capacity]) const noexcept;

  // Same family, address and port (byte for byte).
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
