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

inline constexpr std::size_t tcp_min_header_len = 20;  // bytes of a header without options
inline constexpr std::size_t tcp_max_header_len = 60;  // bytes of a header with the most options
inline constexpr std::size_t tcp_max_sack_blocks = 4;  // SACK blocks one segment may carry

// The control bits (RFC 9293 3.1; CWR and ECE from RFC 3168 are parsed but
// not acted on: this stack does not negotiate ECN).
enum tcp_flag : std::uint8_t {
  tcp_fin = 0x01,  // no more data from the sender
  tcp_syn = 0x02,  // synchronize sequence numbers
  tcp_rst = 0x04,  // reset the connection
  tcp_psh = 0x08,  // push
  tcp_ack = 0x10,  // the acknowledgment field is significant
  tcp_urg = 0x20,  // the urgent pointer is significant
  tcp_ece = 0x40,  // ECN echo (RFC 3168)
  tcp_cwr = 0x80,  // congestion window reduced (RFC 3168)
};

// One SACK block (RFC 2018): a range of sequence numbers the receiver holds.
struct sack_block {
  std::uint32_t left = 0;   // first sequence number of the block
  std::uint32_t right = 0;  // the one after its last
};

// The options of one segment, as parsed (has_* false: absent).
struct tcp_options {
  bool has_mss = false;     // an MSS option was present
  std::uint16_t mss = 0;    // maximum segment size the sender can receive (bytes)
  bool has_wscale = false;  // a window scale option was present
  std::uint8_t wscale = 0;  // as sent; RFC 7323 2.3 caps its use at 14
  bool sack_permitted = false;                          // SACK-permitted was present (SYNs only)
  bool has_timestamps = false;                          // a timestamps option was present
  std::uint32_t ts_val = 0;                             // TSval: the sender's timestamp clock
  std::uint32_t ts_ecr = 0;                             // TSecr: the TSval being echoed
  std::uint8_t sack_count = 0;                          // SACK blocks present in sacks
  std::array<sack_block, tcp_max_sack_blocks> sacks{};  // the SACK blocks, sack_count of them
};

// A TCP header, parsed (or to write), with its options.
struct tcp_header {
  std::uint16_t src_port = 0;  // source port, host order
  std::uint16_t dst_port = 0;  // destination port, host order
  std::uint32_t seq = 0;       // sequence number
  std::uint32_t ack = 0;       // acknowledgment number (meaningful with tcp_ack)
  std::uint8_t header_len = tcp_min_header_len;  // data offset x 4
  std::uint8_t flags = 0;  // tcp_flag bits
  std::uint16_t window = 0;  // as on the wire (unscaled)
  std::uint16_t checksum = 0;  // as on the wire
  std::uint16_t urgent = 0;    // urgent pointer (not acted on)
  tcp_options opt;             // the options (parsing fills them in; write_tcp takes tcp_out_options)

  // Whether flag f is set.
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
  bool sack_permitted = false;        // offer or accept SACK (SYNs only)
  bool timestamps = false;            // send a timestamps option
  std::uint32_t ts_val = 0;           // TSval to send
  std::uint32_t ts_ecr = 0;           // TSecr to send
  std::uint8_t sack_count = 0;        // SACK blocks to send
  const sack_block* sacks = nullptr;  // the blocks (sack_count of them; not owned)
};

// Bytes the options take, padded to a multiple of 4 (at most 40).
[[nodiscard]] std::size_t tcp_options_len(const tcp_out_options& o) noexcept;
// Writes the header and options at p (tcp_min_header_len + tcp_options_len
// bytes) with a zero checksum; returns the header length written. SACK
// blocks that do not fit the 40 option bytes are left out.
std::size_t write_tcp(std::byte* p, const tcp_header& h, const tcp_out_options& o) noexcept;

}  // namespace sluice::inet
