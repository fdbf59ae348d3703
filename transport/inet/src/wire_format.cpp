#include "sluice/inet/wire_format.hpp"

#include "sluice/inet/checksum.hpp"

namespace sluice::inet {

drop_reason parse_ethernet(const std::byte* p, std::size_t n, ethernet_header& out) noexcept {
  if (n < ethernet_header_len) return drop_reason::eth_truncated;
  out.dst = mac_address::from(p);
  out.src = mac_address::from(p + 6);
  out.type = load_be16(p + 12);
  return drop_reason::none;
}

drop_reason parse_arp(const std::byte* p, std::size_t n, arp_message& out) noexcept {
  if (n < arp_message_len) return drop_reason::arp_truncated;
  // Ethernet (1) hardware, IPv4 protocol, 6- and 4-byte addresses: the only
  // shape this stack resolves.
  if (load_be16(p) != 1 || load_be16(p + 2) != ethertype_ipv4 || p[4] != std::byte{6} || p[5] != std::byte{4}) {
    return drop_reason::arp_bad_format;
  }
  out.op = load_be16(p + 6);
  if (out.op != arp_op_request && out.op != arp_op_reply) return drop_reason::arp_bad_op;
  out.sender_mac = mac_address::from(p + 8);
  out.sender_ip = load_be32(p + 14);
  out.target_mac = mac_address::from(p + 18);
  out.target_ip = load_be32(p + 24);
  return drop_reason::none;
}

drop_reason parse_ipv4(const std::byte* p, std::size_t n, bool verify_checksum, ipv4_header& out) noexcept {
  if (n < ipv4_min_header_len) return drop_reason::ipv4_truncated;
  const unsigned v_ihl = std::to_integer<unsigned>(p[0]);
  if ((v_ihl >> 4) != 4) return drop_reason::ipv4_bad_version;
  const unsigned header_len = (v_ihl & 0xf) * 4;
  if (header_len < ipv4_min_header_len) return drop_reason::ipv4_bad_header_length;
  if (header_len > n) return drop_reason::ipv4_truncated;
  const std::uint16_t total = load_be16(p + 2);
  if (total < header_len) return drop_reason::ipv4_bad_total_length;
  if (total > n) return drop_reason::ipv4_truncated;
  // Options (IHL > 5) are covered by the checksum and otherwise skipped.
  if (verify_checksum && checksum_of(p, header_len) != 0) return drop_reason::ipv4_bad_checksum;
  const std::uint16_t frag = load_be16(p + 6);
  if ((frag & 0x8000) != 0) return drop_reason::ipv4_bad_flags;
  out.header_len = static_cast<std::uint8_t>(header_len);
  out.tos = std::to_integer<std::uint8_t>(p[1]);
  out.total_len = total;
  out.id = load_be16(p + 4);
  out.dont_fragment = (frag & 0x4000) != 0;
  out.more_fragments = (frag & 0x2000) != 0;
  out.fragment_offset = static_cast<std::uint16_t>((frag & 0x1fff) * 8);
  out.ttl = std::to_integer<std::uint8_t>(p[8]);
  out.protocol = std::to_integer<std::uint8_t>(p[9]);
  out.src = load_be32(p + 12);
  out.dst = load_be32(p + 16);
  if (out.ttl == 0) return drop_reason::ipv4_ttl_zero;
  return drop_reason::none;
}

drop_reason parse_udp(const std::byte* p, std::size_t n, udp_header& out) noexcept {
  if (n < udp_header_len) return drop_reason::udp_truncated;
  out.src_port = load_be16(p);
  out.dst_port = load_be16(p + 2);
  out.length = load_be16(p + 4);
  out.checksum = load_be16(p + 6);
  if (out.length < udp_header_len || out.length > n) return drop_reason::udp_bad_length;
  return drop_reason::none;
}

drop_reason parse_icmp(const std::byte* p, std::size_t n, icmp_header& out) noexcept {
  if (n < icmp_header_len) return drop_reason::icmp_truncated;
  out.type = std::to_integer<std::uint8_t>(p[0]);
  out.code = std::to_integer<std::uint8_t>(p[1]);
  return drop_reason::none;
}

void write_ethernet(std::byte* p, const mac_address& dst, const mac_address& src, std::uint16_t type) noexcept {
  dst.store(p);
  src.store(p + 6);
  store_be16(p + 12, type);
}

void write_arp(std::byte* p, const arp_message& m) noexcept {
  store_be16(p, 1);
  store_be16(p + 2, ethertype_ipv4);
  p[4] = std::byte{6};
  p[5] = std::byte{4};
  store_be16(p + 6, m.op);
  m.sender_mac.store(p + 8);
  store_be32(p + 14, m.sender_ip);
  m.target_mac.store(p + 18);
  store_be32(p + 24, m.target_ip);
}

void write_ipv4(std::byte* p, const ipv4_header& h, bool compute_checksum) noexcept {
  p[0] = std::byte{0x45};
  p[1] = static_cast<std::byte>(h.tos);
  store_be16(p + 2, h.total_len);
  store_be16(p + 4, h.id);
  std::uint16_t frag = static_cast<std::uint16_t>(h.fragment_offset / 8);
  if (h.dont_fragment) frag |= 0x4000;
  if (h.more_fragments) frag |= 0x2000;
  store_be16(p + 6, frag);
  p[8] = static_cast<std::byte>(h.ttl);
  p[9] = static_cast<std::byte>(h.protocol);
  p[10] = p[11] = std::byte{0};
  store_be32(p + 12, h.src);
  store_be32(p + 16, h.dst);
  if (compute_checksum) {
    store_checksum(p + 10, checksum_of(p, ipv4_min_header_len));
  }
}

void write_udp(std::byte* p, const udp_header& h) noexcept {
  store_be16(p, h.src_port);
  store_be16(p + 2, h.dst_port);
  store_be16(p + 4, h.length);
  store_be16(p + 6, 0);
}

// ---- IPv6 ---------------------------------------------------------------------------

drop_reason parse_ipv6(const std::byte* p, std::size_t n, ipv6_header& out) noexcept {
  if (n < ipv6_header_len) return drop_reason::ipv6_truncated;
  const std::uint32_t first = load_be32(p);
  if ((first >> 28) != 6) return drop_reason::ipv6_bad_version;
  out.traffic_class = static_cast<std::uint8_t>(first >> 20);
  out.flow_label = first & 0xfffff;
  out.payload_len = load_be16(p + 4);
  if (out.payload_len > n - ipv6_header_len) return drop_reason::ipv6_truncated;
  out.next_header = std::to_integer<std::uint8_t>(p[6]);
  out.hop_limit = std::to_integer<std::uint8_t>(p[7]);
  out.src = ip_address::v6(p + 8);
  out.dst = ip_address::v6(p + 24);
  return drop_reason::none;
}

namespace {

// The options of a hop-by-hop or destination options header: `begin` and
// `end` index the header's option area in p; `base` is p's offset from the
// fixed header's start (for the parameter-problem pointer).
drop_reason walk_options(const std::byte* p, std::size_t begin, std::size_t end, std::size_t base,
                         bool dst_multicast, ipv6_chain& out) noexcept {
  std::size_t i = begin;
  while (i < end) {
    const unsigned type = std::to_integer<unsigned>(p[i]);
    if (type == 0) {  // Pad1
      ++i;
      continue;
    }
    if (i + 2 > end) return drop_reason::ipv6_bad_option;
    const std::size_t len = std::to_integer<std::size_t>(p[i + 1]);
    if (i + 2 + len > end) return drop_reason::ipv6_bad_option;
    if (type != 1) {
      // Not PadN: no other option is acted on here (a router alert, 0x05,
      // says skip by its own type bits). The two high bits say what to do
      // with one we do not know (RFC 8200 4.2).
      switch (type >> 6) {
        case 0:
          break;
        case 1:
          return drop_reason::ipv6_unknown_option;
        case 3:
          if (dst_multicast) return drop_reason::ipv6_unknown_option;
          [[fallthrough]];
        default:
          out.send_param_problem = true;
          out.param_code = icmpv6_code_unknown_option;
          out.param_pointer = static_cast<std::uint32_t>(base + i);
          return drop_reason::ipv6_unknown_option;
      }
    }
    i += 2 + len;
  }
  return drop_reason::none;
}

// Whether the rest of a chain (n bytes at p, `next` first) ends in an
// ICMPv6 error message (type below 128), as far as it can be read: such a
// message is never answered with an error (RFC 4443 2.4 e.1), whatever
// its extension headers ask for.
bool ends_in_icmpv6_error(const std::byte* p, std::size_t n, std::uint8_t next, unsigned count) noexcept {
  std::size_t at = 0;
  for (; count <= ipv6_max_extension_headers; ++count) {
    // (A message whose type is cut off may be an error too.)
    if (next == ip6_next_icmpv6) return at >= n || std::to_integer<unsigned>(p[at]) < 128;
    if (next == ip6_next_fragment) {
      // Only a first fragment shows what follows.
      if (n - at < ipv6_fragment_header_len || (load_be16(p + at + 2) & 0xfff8) != 0) return false;
      next = std::to_integer<std::uint8_t>(p[at]);
      at += ipv6_fragment_header_len;
      continue;
    }
    if (next != ip6_next_hop_by_hop && next != ip6_next_dest_options && next != ip6_next_routing) return false;
    if (n - at < 8) return false;
    const std::size_t len = (std::to_integer<std::size_t>(p[at + 1]) + 1) * 8;
    if (len > n - at) return false;
    next = std::to_integer<std::uint8_t>(p[at]);
    at += len;
  }
  return false;
}

}  // namespace

bool chain_ends_in_icmpv6_error(const std::byte* p, std::size_t n, std::uint8_t next) noexcept {
  return ends_in_icmpv6_error(p, n, next, 0);
}

drop_reason walk_ipv6_extensions(const std::byte* p, std::size_t n, std::uint8_t next, std::size_t started_at,
                                 bool dst_multicast, ipv6_chain& out) noexcept {
  // Where the field naming `next` is, from the fixed header's start: its
  // own next header field, or the first byte of the header before.
  std::size_t next_field = started_at == 0 ? 6 : ipv6_header_len + started_at - ipv6_fragment_header_len;
  const std::size_t base = ipv6_header_len + started_at;
  std::size_t at = 0;
  for (unsigned count = 0;; ++count) {
    if (next == ip_protocol_tcp || next == ip_protocol_udp || next == ip6_next_icmpv6) {
      out.upper = next;
      out.upper_at = static_cast<std::uint16_t>(started_at + at);
      return drop_reason::none;
    }
    if (next == ip6_next_none) return drop_reason::ipv6_no_next_header;
    const bool known = next == ip6_next_hop_by_hop || next == ip6_next_dest_options || next == ip6_next_routing ||
                       next == ip6_next_fragment;
    if (!known || (next == ip6_next_hop_by_hop && (count != 0 || started_at != 0))) {
      out.send_param_problem = !ends_in_icmpv6_error(p + at, n - at, next, count);
      out.param_code = icmpv6_code_unknown_next_header;
      out.param_pointer = static_cast<std::uint32_t>(next_field);
      return known ? drop_reason::ipv6_hbh_not_first : drop_reason::ipv6_unknown_next_header;
    }
    if (count == ipv6_max_extension_headers) return drop_reason::ipv6_chain_too_long;
    if (next == ip6_next_fragment) {
      if (n - at < ipv6_fragment_header_len) return drop_reason::ipv6_ext_truncated;
      const std::uint16_t off = load_be16(p + at + 2);
      out.fragment = true;
      out.fragment_offset = static_cast<std::uint16_t>(off & 0xfff8);
      out.more_fragments = (off & 1) != 0;
      out.fragment_id = load_be32(p + at + 4);
      out.upper = std::to_integer<std::uint8_t>(p[at]);
      out.upper_at = static_cast<std::uint16_t>(started_at + at + ipv6_fragment_header_len);
      return drop_reason::none;
    }
    if (n - at < 8) return drop_reason::ipv6_ext_truncated;
    const std::size_t len = (std::to_integer<std::size_t>(p[at + 1]) + 1) * 8;
    if (len > n - at) return drop_reason::ipv6_ext_truncated;
    const auto following = std::to_integer<std::uint8_t>(p[at]);
    // An error about this header is due unless the packet is itself an ICMPv6 error.
    auto answerable = [&] { return !ends_in_icmpv6_error(p + at + len, n - at - len, following, count + 1); };
    if (next == ip6_next_routing) {
      const unsigned type = std::to_integer<unsigned>(p[at + 2]);
      const unsigned segments_left = std::to_integer<unsigned>(p[at + 3]);
      if (type == 0) return drop_reason::ipv6_routing_type0;  // RFC 5095
      if (segments_left != 0) {
        // We route by no routing type (RFC 8200 4.4).
        out.send_param_problem = answerable();
        out.param_code = icmpv6_code_bad_header_field;
        out.param_pointer = static_cast<std::uint32_t>(base + at + 2);
        return drop_reason::ipv6_routing_unknown;
      }
    } else if (auto r = walk_options(p + at, 2, len, base + at, dst_multicast, out); r != drop_reason::none) {
      out.send_param_problem = out.send_param_problem && answerable();
      return r;
    }
    next_field = base + at;
    next = following;
    at += len;
  }
}

drop_reason parse_icmpv6(const std::byte* p, std::size_t n, icmp_header& out) noexcept {
  if (n < icmpv6_header_len) return drop_reason::icmpv6_truncated;
  out.type = std::to_integer<std::uint8_t>(p[0]);
  out.code = std::to_integer<std::uint8_t>(p[1]);
  return drop_reason::none;
}

drop_reason parse_nd(const std::byte* p, std::size_t n, nd_message& out) noexcept {
  if (n < nd_message_len) return drop_reason::nd_bad_message;
  out.type = std::to_integer<std::uint8_t>(p[0]);
  if (p[1] != std::byte{0}) return drop_reason::nd_bad_message;
  out.flags = out.type == icmpv6_neighbor_advertisement ? std::to_integer<std::uint8_t>(p[4]) : 0;
  out.target = ip_address::v6(p + 8);
  if (out.target.is_v6_multicast()) return drop_reason::nd_bad_message;
  out.has_link_layer = false;
  const std::uint8_t wanted = out.type == icmpv6_neighbor_solicitation ? nd_option_source_ll : nd_option_target_ll;
  std::size_t i = nd_message_len;
  while (i < n) {
    if (n - i < 2) return drop_reason::nd_bad_message;
    const std::size_t len = std::to_integer<std::size_t>(p[i + 1]) * 8;
    if (len == 0 || len > n - i) return drop_reason::nd_bad_message;
    if (std::to_integer<std::uint8_t>(p[i]) == wanted) {
      out.has_link_layer = true;
      out.link_layer = mac_address::from(p + i + 2);
    }
    i += len;
  }
  return drop_reason::none;
}

void write_ipv6(std::byte* p, const ipv6_header& h) noexcept {
  store_be32(p, (6u << 28) | (std::uint32_t{h.traffic_class} << 20) | (h.flow_label & 0xfffff));
  store_be16(p + 4, h.payload_len);
  p[6] = static_cast<std::byte>(h.next_header);
  p[7] = static_cast<std::byte>(h.hop_limit);
  std::memcpy(p + 8, h.src.data(), 16);
  std::memcpy(p + 24, h.dst.data(), 16);
}

std::size_t write_nd(std::byte* p, const nd_message& m) noexcept {
  std::memset(p, 0, nd_message_len);
  p[0] = static_cast<std::byte>(m.type);
  p[4] = static_cast<std::byte>(m.flags);
  std::memcpy(p + 8, m.target.data(), 16);
  if (!m.has_link_layer) return nd_message_len;
  p[24] = static_cast<std::byte>(m.type == icmpv6_neighbor_solicitation ? nd_option_source_ll : nd_option_target_ll);
  p[25] = std::byte{1};
  m.link_layer.store(p + 26);
  return nd_message_len + 8;
}

std::size_t write_mld_v2_report(std::byte* p, const ip_address* groups, std::size_t n, std::uint8_t type) noexcept {
  std::memset(p, 0, 8);
  p[0] = std::byte{icmpv6_mld_v2_report};
  store_be16(p + 6, static_cast<std::uint16_t>(n));
  std::byte* r = p + 8;
  for (std::size_t i = 0; i < n; ++i, r += 20) {
    // Record type, aux data length 0, no sources, the group.
    std::memset(r, 0, 4);
    r[0] = static_cast<std::byte>(type);
    std::memcpy(r + 4, groups[i].data(), 16);
  }
  return 8 + 20 * n;
}

std::size_t write_mld_v1_report(std::byte* p, const ip_address& group) noexcept {
  std::memset(p, 0, 8);
  p[0] = std::byte{icmpv6_mld_v1_report};
  std::memcpy(p + 8, group.data(), 16);
  return mld_v1_len;
}

void write_router_alert_header(std::byte* p) noexcept {
  const unsigned char h[router_alert_header_len] = {ip6_next_icmpv6, 0, 5, 2, 0, 0, 1, 0};
  std::memcpy(p, h, sizeof h);
}

std::uint32_t mld_max_response_ms(std::uint16_t code, bool v2) noexcept {
  if (!v2 || code < 32768) return code;
  const unsigned exp = (code >> 12) & 7;
  const unsigned mant = code & 0xfff;
  return (mant | 0x1000u) << (exp + 3);
}

namespace {

// ff02::id, a link-scope group of the well-known ones.
ip_address link_scope_group(std::uint8_t id) noexcept {
  ip_address g;
  g.bytes[0] = 0xff;
  g.bytes[1] = 0x02;
  g.bytes[15] = id;
  return g;
}

}  // namespace

ip_address all_mld_routers_group() noexcept { return link_scope_group(0x16); }

mac_address ipv6_multicast_mac(const ip_address& group) noexcept {
  return mac_address{{0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]}};
}

ip_address solicited_node_group(const ip_address& a) noexcept {
  ip_address g;
  g.bytes[0] = 0xff;
  g.bytes[1] = 0x02;
  g.bytes[11] = 0x01;
  g.bytes[12] = 0xff;
  g.bytes[13] = a.bytes[13];
  g.bytes[14] = a.bytes[14];
  g.bytes[15] = a.bytes[15];
  return g;
}

ip_address all_nodes_group() noexcept { return link_scope_group(0x01); }

}  // namespace sluice::inet
