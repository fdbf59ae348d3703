#pragma once
// Ethernet frames built and read byte by byte for the user-space stack's
// tests, independently of the stack's own parsers and writers (so a bug in
// those cannot hide itself), plus sending and receiving them on a memory
// wire end. Addresses are host order.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet_port.hpp"

namespace sluice::test::frames {

using inet::mac_address;

std::uint32_t ip(std::string_view dotted);

std::string ethernet(const mac_address& dst, const mac_address& src, std::uint16_t type, std::string_view payload);
std::string arp(std::uint16_t op, const mac_address& sender_mac, std::uint32_t sender_ip, const mac_address& target_mac,
                std::uint32_t target_ip);

struct ipv4_fields {
  std::uint16_t id = 1;
  std::uint8_t ttl = 64;
  std::uint16_t fragment_offset = 0;  // bytes
  bool more_fragments = false;
  std::string options{};              // multiple of 4 bytes
  bool bad_checksum = false;
  std::optional<std::uint16_t> total_len{};  // override (malformed tests)
  std::optional<std::uint8_t> version{};
  std::optional<std::uint8_t> ihl{};
  std::uint16_t extra_flags = 0;      // e.g. 0x8000, the reserved bit
};
std::string ipv4(std::uint32_t src, std::uint32_t dst, std::uint8_t protocol, std::string_view payload,
                 const ipv4_fields& f = {});

struct udp_fields {
  bool zero_checksum = false;
  bool bad_checksum = false;
  std::optional<std::uint16_t> length{};
};
// A UDP header and payload (the IP payload).
std::string udp(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                std::string_view payload, const udp_fields& f = {});
// An ICMP message (the IP payload) with a correct checksum unless bad.
std::string icmp(std::uint8_t type, std::uint8_t code, std::uint16_t id, std::uint16_t seq, std::string_view data,
                 bool bad_checksum = false);
// The whole frame: Ethernet + IPv4 + UDP.
std::string udp_frame(const mac_address& dst_mac, const mac_address& src_mac, std::uint32_t src, std::uint32_t dst,
                      std::uint16_t sport, std::uint16_t dport, std::string_view payload);

// TCP (RFC 9293 3.1), byte by byte. Options in their wire form
// (tcp_option_* build them).
struct tcp_fields {
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;  // FIN 1, SYN 2, RST 4, PSH 8, ACK 16
  std::uint16_t window = 65535;
  std::string options{};   // padded by the builder to a multiple of 4
  bool bad_checksum = false;
  std::optional<std::uint8_t> data_offset{};  // words (malformed tests)
};
std::string tcp(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                std::string_view payload, const tcp_fields& f);
std::string tcp_option_mss(std::uint16_t mss);
std::string tcp_option_wscale(std::uint8_t shift);
std::string tcp_option_sack_permitted();
std::string tcp_option_timestamps(std::uint32_t val, std::uint32_t ecr);
std::string tcp_option_sack(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& blocks);

std::uint16_t checksum(std::string_view bytes);

// What a test reads back from a frame.
struct decoded {
  mac_address dst, src;
  std::uint16_t type = 0;
  // ARP
  std::uint16_t arp_op = 0;
  mac_address arp_sender_mac, arp_target_mac;
  std::uint32_t arp_sender_ip = 0, arp_target_ip = 0;
  // IPv4
  bool ip_checksum_ok = false;
  std::uint8_t protocol = 0, ttl = 0;
  std::uint32_t src_ip = 0, dst_ip = 0;
  std::uint16_t ip_id = 0, fragment_offset = 0;
  bool more_fragments = false;
  std::string ip_payload;
  // UDP / ICMP
  std::uint16_t sport = 0, dport = 0;
  bool l4_checksum_ok = false;
  std::string payload;  // UDP payload, or ICMP data after the 8-byte header
  std::uint8_t icmp_type = 0;
  std::uint16_t icmp_id = 0, icmp_seq = 0;
  // TCP (sport, dport, payload and l4_checksum_ok as above)
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::optional<std::uint16_t> mss{};
  std::optional<std::uint8_t> wscale{};
  bool sack_permitted = false;
  std::optional<std::pair<std::uint32_t, std::uint32_t>> timestamps{};
  std::vector<std::pair<std::uint32_t, std::uint32_t>> sacks{};
  [[nodiscard]] bool has(std::uint8_t f) const { return (flags & f) != 0; }
};
decoded decode(std::string_view frame);

// Puts frames on the wire from this end; false if no buffer.
bool send(inet::packet_port& port, std::string_view frame);
// Every frame that has arrived at this end, as bytes.
std::vector<std::string> receive_all(inet::packet_port& port);

}  // namespace sluice::test::frames
