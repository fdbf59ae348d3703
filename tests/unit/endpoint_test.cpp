// endpoint: the address text (written without allocating, IPv4 by hand)
// agrees with inet_ntop for every octet value and position, IPv6 included.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "sluice/core/endpoint.hpp"

namespace sluice {
namespace {

std::string ntop(int family, const void* a) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(family, a, buf, sizeof buf);
}

std::string text(const endpoint& e) {
  char buf[endpoint::address_text_capacity];
  return std::string(e.address_text(buf));
}

TEST(endpoint, ipv4_address_text_matches_inet_ntop) {
  // Every octet value in every position, then random addresses.
  for (unsigned pos = 0; pos < 4; ++pos) {
    for (unsigned v = 0; v < 256; ++v) {
      const std::uint32_t addr = 0x0a000001u ^ (v << (8 * pos));
      const endpoint e = endpoint::ipv4(addr, 80);
      const std::uint32_t net = htonl(addr);
      ASSERT_EQ(text(e), ntop(AF_INET, &net)) << std::hex << addr;
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::uint32_t addr = rng();
    const std::uint32_t net = htonl(addr);
    ASSERT_EQ(text(endpoint::ipv4(addr, 1)), ntop(AF_INET, &net));
  }
  EXPECT_EQ(text(endpoint::ipv4(0xffffffffu, 1)), "255.255.255.255");
  EXPECT_EQ(text(endpoint::ipv4(0, 1)), "0.0.0.0");
}

TEST(endpoint, ipv6_and_empty_address_text) {
  EXPECT_EQ(text(endpoint::loopback_v6(80)), "::1");
  auto e = endpoint::parse("[2001:db8::ff00:42:8329]:443");
  ASSERT_TRUE(e);
  EXPECT_EQ(text(*e), "2001:db8::ff00:42:8329");
  EXPECT_EQ(e->to_string(), "[2001:db8::ff00:42:8329]:443");
  EXPECT_EQ(text(endpoint()), "");
  EXPECT_EQ(endpoint().to_string(), "(none)");
  EXPECT_EQ(endpoint::loopback_v4(8080).to_string(), "127.0.0.1:8080");
}

}  // namespace
}  // namespace sluice
