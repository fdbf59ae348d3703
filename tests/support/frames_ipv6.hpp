#pragma once
// IPv6 frames (RFC 8200), their extension headers, ICMPv6 (RFC 4443),
// Neighbour Discovery (RFC 4861) and UDP over IPv6, built and read byte by
// byte for the user-space stack's tests, independently of the stack's own
// parsers and writers (addresses come from inet_pton, checksums from the
// plain sum in frames.cpp's manner). Frames go on a memory wire with
// frames::send and come back with frames::receive_all.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/inet/mac_address.hpp"

namespace sluice::test::frames6 {

using inet::mac_address;
using addr = std::array<std::uint8_t, 16>;  // network order

// "fd00::1" (inet_pton; aborts the test program on a typo).
addr a6(const char* text);
// The solicited-node group of a (ff02::1:ffXX:XXXX) and its 33:33 MAC.
addr solicited_node(const addr& a);
mac_address multicast_mac(const addr& group);
// fe80::/64 with the modified EUI-64 interface id of mac (RFC 4291 A).
addr link_local_of(const mac_address& mac);

// The fixed header and payload; payload_len overrides the length field.
std::string ipv6(const addr& src, const addr& dst, std::uint8_t next, std::string_view payload,
                 std::uint8_t hop_limit = 64, std::optional<std::uint16_t> payload_len = {});
// Options headers (hop-by-hop 0, destination options 60): `options` padded
// with PadN to a multiple of 8 with the 2-byte header.
std::string options_header(std::uint8_t next, std::string_view options);
// A routing header with no addresses (8 bytes).
std::string routing_header(std::uint8_t next, std::uint8_t type, std::uint8_t segments_left);
// A fragment header (offset in bytes, a multiple of 8).
std::string fragment_header(std::uint8_t next, std::uint16_t offset, bool more, std::uint32_t id);

// Upper layers, checksummed over the IPv6 pseudo-header.
std::string udp(const addr& src, const addr& dst, std::uint16_t sport, std::uint16_t dport, std::string_view payload,
                bool zero_checksum = false, bool bad_checksum = false);
// An ICMPv6 message: type, code, checksum, then `body` (the 4 bytes after
// the checksum included).
std::string icmpv6(const addr& src, const addr& dst, std::uint8_t type, std::uint8_t code, std::string_view body,
                   bool bad_checksum = false);
// An echo request/reply body: id, sequence, data.
std::string echo_body(std::uint16_t id, std::uint16_t seq, std::string_view data);
// NS / NA bodies (flags: R 0x80, S 0x40, O 0x20), with a link-layer option when given.
std::string ns_body(const addr& target, std::optional<mac_address> source_ll);
std::string na_body(std::uint8_t flags, const addr& target, std::optional<mac_address> target_ll);

// Ethernet + IPv6 frame of an ICMPv6 message (hop limit 255 unless given).
std::string icmpv6_frame(const mac_address& dst_mac, const mac_address& src_mac, const addr& src, const addr& dst,
                         std::uint8_t type, std::uint8_t code, std::string_view body, std::uint8_t hop_limit = 255);
// Ethernet + IPv6 + UDP.
std::string udp_frame(const mac_address& dst_mac, const mac_address& src_mac, const addr& src, const addr& dst,
                      std::uint16_t sport, std::uint16_t dport, std::string_view payload);

// What a test reads back from an IPv6 frame (extension headers skipped).
struct decoded {
  mac_address dst_mac, src_mac;
  std::uint16_t type = 0;
  std::uint8_t hop_limit = 0;
  addr src{}, dst{};
  std::uint8_t upper = 0;  // after the extension headers
  bool fragment = false;
  std::uint16_t fragment_offset = 0;
  bool more_fragments = false;
  std::uint32_t fragment_id = 0;
  std::string l4;          // upper-layer bytes
  bool checksum_ok = false;  // UDP / ICMPv6, over the pseudo-header (unfragmented only)
  std::uint8_t icmp_type = 0, icmp_code = 0;
  std::uint32_t icmp_word = 0;  // bytes 4-7 (MTU, pointer, id+seq)
  std::string icmp_rest;        // after byte 8
  addr nd_target{};
  std::uint8_t nd_flags = 0;
  std::optional<mac_address> nd_ll{};  // the source (NS) or target (NA) link-layer option
  std::uint16_t sport = 0, dport = 0;
  std::string payload;  // UDP payload
};
decoded decode(std::string_view frame);

}  // namespace sluice::test::frames6
