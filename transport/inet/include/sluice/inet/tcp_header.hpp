#pragma once
// The TCP header (RFC 9293 section 3.1) and the options this stack speaks:
// MSS (RFC 9293 3.7.1), window scale and timestamps (RFC 7323), SACK
// permitted and SACK blocks (RFC 2018). Parsed and written in place.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   |          Source Port          |       Destination Port        |
//   |                        Sequence Number                        |
//   |                    Acknowledgment Number                      |
//   |  DOff |  Rsrvd|C|E|U|A|P|R|S|F|            Window             |
//   |           Checksum            |         Urgent Pointer        |
//   |                           [Options]                           |
//
// The parser reads only inside the bytes it is given and never trusts the
// data offset before checking it against them; unknown options are skipped
// by their length (RFC 9293 3.2: a receiver must ignore options it does not
// implement), a malformed option list is a counted drop. Plain functions of
// bytes: any thread, no allocation.

#include <array>
#include <cstddef>
#include <cstdint>

#include "sluice/inet/drop_reason.hpp"

namespace sluice::inet {

inline constexpr std::size_t tcp_min_header_len = 20;
inline constexpr std::size_t tcp_max_header_len = 60;
inline constexpr std::size_t tcp_max_sack_blocks = 4;

// The control bits (RFC 9293 3.1; CWR and ECE from RFC 3168 are parsed but
// not acted on: this stack does not negotiate ECN).
enum tcp_flag : std::uint8_t {
  tcp_fin = 0x01,
  tcp_syn = 0x02,
  tcp_rst = 0x04,
  tcp_psh = 0x08,
  tcp_ack = 0x10,
  tcp_urg = 0x20,
  tcp_ece = 0x40,
  tcp_cwr = 0x80,
};

struct sack_block {
  std::uint32_t left = 0;   // first sequence number of the block
  std::uint32_t right = 0;  // the one after its last
};

// The options of one segment, as parsed (has_* false: absent).
struct tcp_options {
  bool has_mss = false;
  std::uint16_t mss = 0;
  bool has_wscale = false;
  std::uint8_t wscale = 0;  // as sent; RFC 7323 2.3 caps its use at 14
  bool sack_permitted = false;
  bool has_timestamps = false;
  std::uint32_t ts_val = 0;
  std::uint32_t ts_ecr = 0;
  std::uint8_t sack_count = 0;
  std::array<sack_block, tcp_max_sack_blocks> sacks{};
};

struct tcp_header {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t header_len = tcp_min_header_len;  // data offset x 4
  std::uint8_t flags = 0;
  std::uint16_t window = 0;  // as on the wire (unscaled)
  std::uint16_t checksum = 0;
  std::uint16_t urgent = 0;
  tcp_options opt;

  [[nodiscard]] bool has(std::uint8_t f) const noexcept { return (flags & f) != 0; }
};

// Parses the header and its options from n bytes at p (the whole TCP
// segment: n is the IP payload length). The checksum is verified
// separately (it covers the pseudo-header and the payload).
[[nodiscard]] drop_reason parse_tcp(const std::byte* p, std::size_t n, tcp_header& out) noexcept;

// What an outgoing segment carries besides the fixed header.
struct tcp_out_options {
  std::uint16_t mss = 0;       // 0: none (only SYNs carry it)
  int wscale = -1;             // -1: none
  bool sack_permitted = false;
  bool timestamps = false;
  std::uint32_t ts_val = 0;
  std::uint32_t ts_ecr = 0;
  std::uint8_t sack_count = 0;
  const sack_block* sacks = nullptr;
};

// Bytes the options take, padded to a multiple of 4 (at most 40).
[[nodiscard]] std::size_t tcp_options_len(const tcp_out_options& o) noexcept;
// Writes the header and options at p (tcp_min_header_len + tcp_options_len
// bytes) with a zero checksum; returns the header length written. SACK
// blocks that do not fit the 40 option bytes are left out.
std::size_t write_tcp(std::byte* p, const tcp_header& h, const tcp_out_options& o) noexcept;

}  // namespace sluice::inet
