#pragma once
// The frames the stack speaks, parsed and written: Ethernet II, ARP for
// IPv4 over Ethernet (RFC 826), IPv4 (RFC 791), ICMP echo (RFC 792) and UDP
// (RFC 768). Parsers read only inside the bytes they are given, check every
// field the stack relies on, and return drop_reason::none or why not; they
// never trust a length field before checking it against the bytes present.
// Writers fill headers in place (the caller reserved the room).
//
// Plain functions of bytes: any thread, no allocation. The fuzz target
// (tests/fuzz/fuzz_packet_parser.cpp) drives the parsers with arbitrary bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sluice/inet/drop_reason.hpp"
#include "sluice/inet/mac_address.hpp"

namespace sluice::inet {

inline constexpr std::size_t ethernet_header_len = 14;  // bytes: two MACs and the EtherType
inline constexpr std::size_t arp_message_len = 28;      // bytes of an Ethernet/IPv4 ARP message
inline constexpr std::size_t ipv4_min_header_len = 20;  // bytes of an IPv4 header without options
inline constexpr std::size_t icmp_header_len = 8;       // bytes of an ICMP echo header
inline constexpr std::size_t udp_header_len = 8;        // bytes of a UDP header
// The largest UDP payload an IPv4 datagram can carry.
inline constexpr std::size_t udp_max_payload = 65535 - ipv4_min_header_len - udp_header_len;

inline constexpr std::uint16_t ethertype_ipv4 = 0x0800;   // EtherType of IPv4
inline constexpr std::uint16_t ethertype_arp = 0x0806;    // EtherType of ARP
inline constexpr std::uint8_t ip_protocol_icmp = 1;       // IPv4 protocol number of ICMP
inline constexpr std::uint8_t ip_protocol_tcp = 6;        // IPv4 protocol number of TCP
inline constexpr std::uint8_t ip_protocol_udp = 17;       // IPv4 protocol number of UDP
inline constexpr std::uint16_t arp_op_request = 1;        // ARP operation: request
inline constexpr std::uint16_t arp_op_reply = 2;          // ARP operation: reply
inline constexpr std::uint8_t icmp_echo_reply = 0;        // ICMP type: echo reply
inline constexpr std::uint8_t icmp_echo_request = 8;      // ICMP type: echo request
inline constexpr std::uint8_t icmp_dest_unreachable = 3;  // ICMP type: destination unreachable
inline constexpr std::uint8_t icmp_code_frag_needed = 4;  // RFC 1191: the next-hop MTU in bytes 6-7

// Big-endian fields at unaligned addresses.
[[nodiscard]] inline std::uint16_t load_be16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
// A big-endian 32-bit field at p.
[[nodiscard]] inline std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::uint32_t{load_be16(p)} << 16) | load_be16(p + 2);
}
// Writes v big-endian at p.
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
// Writes v big-endian at p.
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  store_be16(p, static_cast<std::uint16_t>(v >> 16));
  store_be16(p + 2, static_cast<std::uint16_t>(v));
}

// An Ethernet II header, parsed.
struct ethernet_header {
  mac_address dst;         // destination address
  mac_address src;         // source address
  std::uint16_t type = 0;  // EtherType (ethertype_ipv4, ethertype_arp)
};

// An ARP message for IPv4 over Ethernet, parsed.
struct arp_message {
  std::uint16_t op = 0;    // arp_op_request or arp_op_reply
  mac_address sender_mac;  // the sender's hardware address
  std::uint32_t sender_ip = 0;  // host order, as every address in these structs
  mac_address target_mac;       // the target's hardware address (zero in a request)
  std::uint32_t target_ip = 0;  // the target's address, host order
};

// An IPv4 header, parsed (or to write).
struct ipv4_header {
  std::uint8_t header_len = 20;   // bytes (IHL x 4); options are skipped, not interpreted
  std::uint8_t tos = 0;  // type of service (DSCP and ECN bits), passed through
  std::uint16_t total_len = 0;    // header and payload
  std::uint16_t id = 0;         // identification, shared by a datagram's fragments
  bool dont_fragment = false;   // DF: must not be fragmented
  bool more_fragments = false;  // MF: more fragments follow
  std::uint16_t fragment_offset = 0;  // bytes (the field x 8)
  std::uint8_t ttl = 64;      // time to live
  std::uint8_t protocol = 0;  // ip_protocol_tcp, ip_protocol_udp, ip_protocol_icmp
  std::uint32_t src = 0;      // source address, host order
  std::uint32_t dst = 0;      // destination address, host order

  // Part of a fragmented datagram (MF set or a nonzero offset).
  [[nodiscard]] bool is_fragment() const noexcept { return more_fragments || fragment_offset != 0; }
  // Bytes after the header (total_len - header_len).
  [[nodiscard]] std::uint16_t payload_len() const noexcept {
    return static_cast<std::uint16_t>(total_len - header_len);
  }
};

// A UDP header, parsed (or to write).
struct udp_header {
  std::uint16_t src_port = 0;  // source port, host order
  std::uint16_t dst_port = 0;  // destination port, host order
  std::uint16_t length = 0;    // header and payload
  std::uint16_t checksum = 0;  // as on the wire; 0: the sender computed none
};

// The start of an ICMP message, parsed.
struct icmp_header {
  std::uint8_t type = 0;  // icmp_echo_request, icmp_dest_unreachable, ...
  std::uint8_t code = 0;  // subtype (icmp_code_frag_needed, ...)
};

// ---- parsers: n is the number of bytes present at p ----------------------------

// An Ethernet II header from the n bytes at p.
[[nodiscard]] drop_reason parse_ethernet(const std::byte* p, std::size_t n, ethernet_header& out) noexcept;
// An Ethernet/IPv4 ARP message from the n bytes at p (its Ethernet header
// already skipped).
[[nodiscard]] drop_reason parse_arp(const std::byte* p, std::size_t n, arp_message& out) noexcept;
// Checks the header and that total_len fits in n (bytes past it are link
// padding). verify_checksum false when the device already checked it.
[[nodiscard]] drop_reason parse_ipv4(const std::byte* p, std::size_t n, bool verify_checksum,
                                     ipv4_header& out) noexcept;
// n is the IP payload length; checks the UDP length against it. The
// checksum is verified separately (udp_checksum_ok): it may span fragments.
[[nodiscard]] drop_reason parse_udp(const std::byte* p, std::size_t n, udp_header& out) noexcept;
// An ICMP header from the n bytes at p (the IP payload); checks its length
// only (the checksum is the caller's).
[[nodiscard]] drop_reason parse_icmp(const std::byte* p, std::size_t n, icmp_header& out) noexcept;

// ---- writers ---------------------------------------------------------------------

// Writes an Ethernet II header (ethernet_header_len bytes) at p.
void write_ethernet(std::byte* p, const mac_address& dst, const mac_address& src, std::uint16_t type) noexcept;
// Writes an ARP message (arp_message_len bytes) at p.
void write_arp(std::byte* p, const arp_message& m) noexcept;
// Writes a 20-byte header (no options); the checksum is computed unless the
// device is to fill it in (then it is left 0).
void write_ipv4(std::byte* p, const ipv4_header& h, bool compute_checksum) noexcept;
// Writes the 8-byte header with a zero checksum field (h.checksum is not
// used): the caller stores the checksum once it is known (store_checksum).
void write_udp(std::byte* p, const udp_header& h) noexcept;
// Stores a value from internet_checksum (machine order, see checksum.hpp).
inline void store_checksum(std::byte* at, std::uint16_t machine_order) noexcept {
  std::memcpy(at, &machine_order, 2);
}

}  // namespace sluice::inet
