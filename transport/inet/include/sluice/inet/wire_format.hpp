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
#include "sluice/inet/ip_address.hpp"
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

// ---- IPv6 (RFC 8200), ICMPv6 (RFC 4443), Neighbour Discovery (RFC 4861) --------

inline constexpr std::uint16_t ethertype_ipv6 = 0x86dd;  // EtherType of IPv6
inline constexpr std::size_t ipv6_header_len = 40;       // bytes of the fixed IPv6 header
// Extension headers the walker follows before it gives up (ipv6_chain_too_long).
inline constexpr unsigned ipv6_max_extension_headers = 8;
inline constexpr std::uint8_t ip6_next_hop_by_hop = 0;    // next header: hop-by-hop options
inline constexpr std::uint8_t ip6_next_routing = 43;      // next header: routing header
inline constexpr std::uint8_t ip6_next_fragment = 44;     // next header: fragment header
inline constexpr std::uint8_t ip6_next_icmpv6 = 58;       // next header: ICMPv6
inline constexpr std::uint8_t ip6_next_none = 59;         // next header: no next header
inline constexpr std::uint8_t ip6_next_dest_options = 60; // next header: destination options
inline constexpr std::size_t ipv6_fragment_header_len = 8;  // bytes of a fragment header
inline constexpr std::size_t icmpv6_header_len = 8;       // type, code, checksum and 4 bytes
// ICMPv6 types (RFC 4443, RFC 4861).
inline constexpr std::uint8_t icmpv6_dest_unreachable = 1;
inline constexpr std::uint8_t icmpv6_packet_too_big = 2;  // packet too big (RFC 4443 3.2)
inline constexpr std::uint8_t icmpv6_time_exceeded = 3;  // time exceeded (3.3)
inline constexpr std::uint8_t icmpv6_param_problem = 4;  // parameter problem (3.4)
inline constexpr std::uint8_t icmpv6_echo_request = 128;  // echo request (4.1)
inline constexpr std::uint8_t icmpv6_echo_reply = 129;  // echo reply (4.2)
inline constexpr std::uint8_t icmpv6_router_solicitation = 133;  // router solicitation (RFC 4861 4.1)
inline constexpr std::uint8_t icmpv6_router_advertisement = 134;  // router advertisement (4.2)
inline constexpr std::size_t nd_router_advert_len = 16;  // an RA's fixed part: type to retransmit timer (RFC 4861 4.2)
inline constexpr std::uint8_t icmpv6_neighbor_solicitation = 135;  // neighbour solicitation (4.3)
inline constexpr std::uint8_t icmpv6_neighbor_advertisement = 136;  // neighbour advertisement (4.4)
inline constexpr std::uint8_t icmpv6_redirect = 137;  // redirect (4.5)
inline constexpr std::uint8_t icmpv6_code_port_unreachable = 4;    // destination unreachable code
inline constexpr std::uint8_t icmpv6_code_bad_header_field = 0;    // parameter problem codes (RFC 4443 3.4)
inline constexpr std::uint8_t icmpv6_code_unknown_next_header = 1;  // parameter problem: unrecognised next header
inline constexpr std::uint8_t icmpv6_code_unknown_option = 2;  // parameter problem: unrecognised option
inline constexpr std::uint8_t icmpv6_code_incomplete_chain = 3;  // parameter problem: first fragment without the whole header chain (RFC 7112)
inline constexpr std::size_t nd_message_len = 24;  // NS/NA: ICMPv6 header and the 16-byte target
inline constexpr std::uint8_t nd_option_source_ll = 1;  // ND option: source link-layer address
inline constexpr std::uint8_t nd_option_target_ll = 2;  // ND option: target link-layer address
inline constexpr std::uint8_t nd_flag_router = 0x80;     // NA flags (byte 4)
inline constexpr std::uint8_t nd_flag_solicited = 0x40;  // (see nd_flag_router)
inline constexpr std::uint8_t nd_flag_override = 0x20;   // (see nd_flag_router)
// The minimum MTU of an IPv6 link (RFC 8200 5): packets too big messages
// below it are taken as this.
inline constexpr std::uint32_t ipv6_min_mtu = 1280;

// The fixed IPv6 header, parsed (or to write).
struct ipv6_header {
  std::uint8_t traffic_class = 0;  // DSCP and ECN bits, passed through
  std::uint32_t flow_label = 0;    // 20 bits
  std::uint16_t payload_len = 0;   // bytes after the fixed header (extension headers included)
  std::uint8_t next_header = 0;    // the first extension header or the upper layer
  std::uint8_t hop_limit = 64;     // hops left
  ip_address src;                  // source address
  ip_address dst;                  // destination address
};

// The fixed header's bytes of an upper layer served over IPv6 (TCP 20, UDP
// 8, ICMPv6 4: type, code, checksum), else 0: what a first fragment must
// hold after its extension headers (RFC 7112).
[[nodiscard]] constexpr std::size_t upper_header_len(std::uint8_t protocol) noexcept {
  if (protocol == ip_protocol_tcp) return 20;
  if (protocol == ip_protocol_udp) return udp_header_len;
  return protocol == ip6_next_icmpv6 ? 4 : 0;
}

// What the extension-header walker found (walk_ipv6_extensions).
struct ipv6_chain {
  std::uint8_t upper = 0;      // the upper-layer protocol (next header after the chain)
  std::uint16_t upper_at = 0;  // bytes from the end of the fixed header to the upper-layer header
  // A fragment header was met (the walk stops there: what follows it is
  // the fragmentable part, whole only after reassembly).
  bool fragment = false;
  std::uint16_t fragment_offset = 0;  // bytes
  bool more_fragments = false;        // M flag
  std::uint32_t fragment_id = 0;      // identification
  // On a drop: whether an ICMPv6 parameter problem is due (RFC 8200 4,
  // RFC 4443 3.4), its code, and the pointer (bytes from the start of the
  // fixed header to the offending field).
  bool send_param_problem = false;
  std::uint8_t param_code = 0;      // its code (icmpv6_code_*)
  std::uint32_t param_pointer = 0;  // its pointer
};

// A Neighbour Solicitation or Advertisement, parsed (RFC 4861 4.3, 4.4).
struct nd_message {
  std::uint8_t type = 0;  // icmpv6_neighbor_solicitation or icmpv6_neighbor_advertisement
  std::uint8_t flags = 0;  // NA: nd_flag_router | nd_flag_solicited | nd_flag_override
  ip_address target;       // the address asked for, or advertised
  bool has_link_layer = false;  // a source (NS) or target (NA) link-layer option came
  mac_address link_layer;       // ... its MAC
};

// The fixed header from the n bytes at p (its Ethernet header skipped);
// checks the version and that the payload length fits in n (bytes past it
// are link padding).
[[nodiscard]] drop_reason parse_ipv6(const std::byte* p, std::size_t n, ipv6_header& out) noexcept;
// Walks the extension headers of a payload of n bytes at p (the bytes after
// the fixed header), the first being `next` (the fixed header's next
// header), per RFC 8200 4: hop-by-hop only first, routing type 0 dropped,
// another routing type with segments left answered by a parameter problem
// (ignored when none are left), destination options and hop-by-hop options
// with the action their unknown options' two high bits ask for, at most
// ipv6_max_extension_headers headers; stops at a fragment header or the
// upper layer (ip_protocol_tcp, ip_protocol_udp, ip6_next_icmpv6; any other
// value is an unknown next header). `started_at` is how many bytes of the
// payload precede p (for the parameter-problem pointer when walking on
// after a fragment header); dst_multicast: the destination is a group (an
// unknown option of action 11 then gets no ICMPv6).
[[nodiscard]] drop_reason walk_ipv6_extensions(const std::byte* p, std::size_t n, std::uint8_t next,
                                               std::size_t started_at, bool dst_multicast,
                                               ipv6_chain& out) noexcept;
// Whether the extension-header chain in the n bytes at p (`next` first)
// ends in an ICMPv6 error message, or an ICMPv6 message whose type is cut
// off, as far as it can be read: such a packet is never answered with an
// error (RFC 4443 2.4 e.1).
[[nodiscard]] bool chain_ends_in_icmpv6_error(const std::byte* p, std::size_t n, std::uint8_t next) noexcept;
// An ICMPv6 header from the n bytes at p; checks its length only (the
// checksum, with the pseudo-header, is the caller's).
[[nodiscard]] drop_reason parse_icmpv6(const std::byte* p, std::size_t n, icmp_header& out) noexcept;
// A Neighbour Solicitation or Advertisement from the n bytes of ICMPv6
// message at p (checksum already checked): code 0, length, a unicast
// target, every option's length nonzero and inside n (RFC 4861 7.1.1/2).
[[nodiscard]] drop_reason parse_nd(const std::byte* p, std::size_t n, nd_message& out) noexcept;

// Writes the 40-byte fixed header at p.
void write_ipv6(std::byte* p, const ipv6_header& h) noexcept;
// Writes an NS or NA (nd_message_len bytes, plus 8 for the link-layer
// option when m.has_link_layer) at p with a zero checksum; returns its
// length. The caller stores the checksum (pseudo-header included).
std::size_t write_nd(std::byte* p, const nd_message& m) noexcept;
// MLD (RFC 3810; RFC 2710 for version 1 queriers): a host's reports of
// the groups it listens to, so that switches that snoop MLD forward them
// to it (our solicited-node groups: Neighbour Discovery's solicitations).
inline constexpr std::uint8_t icmpv6_mld_query = 130;      // multicast listener query
inline constexpr std::uint8_t icmpv6_mld_v1_report = 131;  // version 1 report (RFC 2710 3)
inline constexpr std::uint8_t icmpv6_mld_v2_report = 143;  // version 2 report (RFC 3810 5.2)
inline constexpr std::size_t mld_v1_len = 24;              // a version 1 query or report
inline constexpr std::size_t mld_v2_query_min_len = 28;    // a version 2 query without sources
inline constexpr std::uint8_t mld_record_is_exclude = 2;   // MODE_IS_EXCLUDE: listening (a query's answer)
inline constexpr std::uint8_t mld_record_to_exclude = 4;   // CHANGE_TO_EXCLUDE_MODE: joining (unsolicited)
inline constexpr std::size_t router_alert_header_len = 8;  // the hop-by-hop header MLD messages carry

// A version 2 report at p: one record of `type`, no sources, per group
// (8 + 20 x n bytes, returned); zero checksum (the caller's, pseudo-header included).
std::size_t write_mld_v2_report(std::byte* p, const ip_address* groups, std::size_t n, std::uint8_t type) noexcept;
// A version 1 report for group at p (mld_v1_len bytes, returned); zero checksum.
std::size_t write_mld_v1_report(std::byte* p, const ip_address& group) noexcept;
// The hop-by-hop header in front of an MLD message (router_alert_header_len
// bytes at p): a router alert option, value 0 (MLD, RFC 2711), then PadN;
// next header ICMPv6.
void write_router_alert_header(std::byte* p) noexcept;
// A query's Maximum Response Delay in milliseconds: version 1's field as it
// is, version 2's code decoded (RFC 3810 5.1.3: exponent and mantissa from
// 32768 up).
[[nodiscard]] std::uint32_t mld_max_response_ms(std::uint16_t code, bool v2) noexcept;
// ff02::16, every MLDv2 router (where version 2 reports go).
[[nodiscard]] ip_address all_mld_routers_group() noexcept;

// The multicast MAC of an IPv6 group (33:33 and its low 32 bits, RFC 2464 7).
[[nodiscard]] mac_address ipv6_multicast_mac(const ip_address& group) noexcept;
// The solicited-node group of an address (ff02::1:ffXX:XXXX, RFC 4291 2.7.1).
[[nodiscard]] ip_address solicited_node_group(const ip_address& a) noexcept;
// ff02::1, the all-nodes group.
[[nodiscard]] ip_address all_nodes_group() noexcept;

}  // namespace sluice::inet
