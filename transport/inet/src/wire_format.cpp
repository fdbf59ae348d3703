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

}  // namespace sluice::inet
