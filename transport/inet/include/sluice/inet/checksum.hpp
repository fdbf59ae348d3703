#pragma once
// The Internet checksum (RFC 1071): the ones' complement of the ones'
// complement sum of 16-bit words. Computed in the machine's byte order and
// stored as it comes out (RFC 1071 section 2(B): the sum is byte-order
// independent), so no word is swapped on the way. Pieces of odd length are
// allowed: a piece that starts at an odd offset of the whole has its partial
// sum byte-swapped before it is added (the same property).
//
// A value type; plain functions of bytes: any thread, no allocation.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <arpa/inet.h>

#include "sluice/inet/ip_address.hpp"

namespace sluice::inet {

// The Internet checksum (RFC 1071) of bytes added in order, in pieces of any
// length (odd ones included). A value type, no allocation.
class internet_checksum {
 public:
  // Adds n bytes that follow everything added so far.
  void add(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    if (n == 0) return;
    std::uint64_t part = 0;
    std::size_t i = 0;
    // 32-bit words into a 64-bit sum: no carry is lost below 2^32 words.
    for (; i + 4 <= n; i += 4) {
      std::uint32_t w;
      std::memcpy(&w, p + i, 4);
      part += w;
    }
    if (i + 2 <= n) {
      std::uint16_t w;
      std::memcpy(&w, p + i, 2);
      part += w;
      i += 2;
    }
    if (i < n) {
      // The last odd byte is the first byte of a word whose second is zero.
      std::uint16_t w = 0;
      std::memcpy(&w, p + i, 1);
      part += w;
    }
    add_partial(part);
    if ((n & 1) != 0) odd_ = !odd_;
  }
  // Adds the partial sum of an even number of bytes that follow everything
  // added so far, summed as add() sums them: 16- or 32-bit words read in
  // machine order, added into 64 bits without a carry lost.
  void add_partial(std::uint64_t part) noexcept {
    std::uint16_t folded = fold(part);
    if (odd_) folded = static_cast<std::uint16_t>((folded >> 8) | (folded << 8));
    sum_ += folded;
  }
  // Adds a 16-bit value as it appears on the wire (big-endian).
  void add_be16(std::uint16_t v) noexcept {
    const unsigned char b[2] = {static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    add(b, 2);
  }
  // Adds a 32-bit value as it appears on the wire (big-endian).
  void add_be32(std::uint32_t v) noexcept {
    add_be16(static_cast<std::uint16_t>(v >> 16));
    add_be16(static_cast<std::uint16_t>(v));
  }
  // The value to store in a checksum field (memcpy, machine order). Over
  // bytes that already include a correct checksum it is 0.
  [[nodiscard]] std::uint16_t finish() const noexcept { return static_cast<std::uint16_t>(~fold(sum_)); }
  // The folded sum itself, not complemented (what a pseudo-header
  // checksum for an offloading NIC is).
  [[nodiscard]] std::uint16_t folded() const noexcept { return fold(sum_); }

  // s folded to 16 bits with end-around carry (ones' complement sum).
  [[nodiscard]] static std::uint16_t fold(std::uint64_t s) noexcept {
    while ((s >> 16) != 0) s = (s & 0xffff) + (s >> 16);
    return static_cast<std::uint16_t>(s);
  }

 private:
  std::uint64_t sum_ = 0;
  bool odd_ = false;
};

// The checksum of n contiguous bytes.
[[nodiscard]] inline std::uint16_t checksum_of(const void* data, std::size_t n) noexcept {
  internet_checksum c;
  c.add(data, n);
  return c.finish();
}

// The IPv4 pseudo-header (RFC 768) that UDP and TCP checksums start from.
// Addresses in host order.
inline void add_pseudo_header(internet_checksum& c, std::uint32_t src, std::uint32_t dst, std::uint8_t protocol,
                              std::uint16_t l4_length) noexcept {
  // Words in registers, as for IPv6 below (no bytes stored and read back).
  c.add_partial(std::uint64_t{htonl(src)} + htonl(dst) + htonl((std::uint32_t{protocol} << 16) | l4_length));
}

// The pseudo-header of either family: IPv4's (RFC 768, 12 bytes) when both
// addresses are IPv4, IPv6's (RFC 8200 section 8.1: addresses, 32-bit
// upper-layer length, next header) otherwise. What TCP, UDP and ICMPv6
// checksums start from.
inline void add_pseudo_header(internet_checksum& c, const ip_address& src, const ip_address& dst,
                              std::uint8_t protocol, std::uint32_t l4_length) noexcept {
  if (src.is_v4() && dst.is_v4()) {
    add_pseudo_header(c, src.v4_addr(), dst.v4_addr(), protocol, static_cast<std::uint16_t>(l4_length));
    return;
  }
  // Ten 32-bit words summed in registers, one fold: on every IPv6
  // datagram's path twice (receive and send). The length and next header
  // are the words their big-endian bytes make in machine order (htonl), not
  // bytes stored and read back (a store-forwarding stall).
  auto halves = [](const ip_address& a) {
    std::uint64_t w[2];
    std::memcpy(w, a.data(), 16);
    return (w[0] & 0xffffffffu) + (w[0] >> 32) + (w[1] & 0xffffffffu) + (w[1] >> 32);
  };
  const std::uint64_t part = halves(src) + halves(dst) + htonl(l4_length) + htonl(protocol);
  c.add_partial(part);
}

}  // namespace sluice::inet
