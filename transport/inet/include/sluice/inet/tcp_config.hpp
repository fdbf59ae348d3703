#pragma once
// The user-space TCP's settings, one set per stack. Defaults favour latency
// (the framework's purpose): no Nagle, an ACK for every burst of segments
// at once instead of a delayed one, a 200 ms minimum RTO. Each is a plain
// field so that apps (--tcp-* flags) and tests set what they need.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "sluice/base/time.hpp"
#include "sluice/inet/congestion_control.hpp"

namespace sluice::inet {

// The user-space TCP's settings, one per stack (see the file comment): RFC
// defaults unless a flag (--tcp-*) or a test says otherwise.
struct tcp_config {
  // Congestion control of new connections (--tcp-cc).
  congestion_algorithm congestion = congestion_algorithm::cubic;
  // Zero (the default): every burst of arriving segments is acknowledged
  // when the burst has been handled (one ACK per connection per burst,
  // piggybacked on the application's answer when it has one), so no
  // round trip waits for a timer. Otherwise RFC 9293 3.8.6.3's delayed ACK:
  // at most this long (it must stay below 500 ms) and at least every second
  // full-sized segment.
  duration delayed_ack = duration::zero();
  // Nagle's algorithm (RFC 9293 3.7.4): off by default, as TCP_NODELAY is
  // on for the kernel transports' sockets.
  bool nagle = false;
  // Keepalive (RFC 9293 3.8.4): off unless keepalive_idle is set.
  duration keepalive_idle = duration::zero();
  duration keepalive_interval = std::chrono::seconds(75);  // between keepalive probes
  unsigned keepalive_probes = 9;                           // unanswered probes before the connection is reset
  // Retransmission timeout (RFC 6298): 1 s before the first sample (2.1),
  // never below min_rto (RFC 6298 asks for 1 s; 200 ms is what deployed
  // stacks use on low-latency paths), never above max_rto.
  duration initial_rto = std::chrono::seconds(1);
  duration min_rto = std::chrono::milliseconds(200);  // RTO floor
  duration max_rto = std::chrono::seconds(60);        // RTO ceiling (after back-off)
  // Give up after this many retransmissions of the same data (RFC 9293
  // 3.8.3's R2), of a SYN, or of a SYN-ACK.
  unsigned max_retransmits = 15;
  // A peer that keeps answering window probes with a zero window would
  // hold the connection (and its send queue) forever: once its window has
  // stayed shut this long with data waiting, the connection is given up
  // (ETIMEDOUT, RST; tcp_persist_timeouts), as Linux gives up a persist
  // state with TCP_USER_TIMEOUT. --tcp-persist-timeout; 1 s to 1 h.
  duration persist_timeout = std::chrono::seconds(300);
  static constexpr duration min_persist_timeout = std::chrono::seconds(1);  // the range --tcp-persist-timeout accepts
  static constexpr duration max_persist_timeout = std::chrono::hours(1);    // (see min_persist_timeout)
  unsigned syn_retries = 6;                                                 // SYN retransmissions before connect fails (connect_timeout)
  unsigned synack_retries = 5;                                              // SYN-ACK retransmissions before a half-open connection is dropped
  // TIME-WAIT lasts 2 MSL (RFC 9293 3.6.1); MSL 30 s.
  duration time_wait = std::chrono::seconds(60);
  // A connection the application closed that waits in FIN-WAIT-2 for the
  // peer's FIN is dropped after this long.
  duration fin_wait_2 = std::chrono::seconds(60);
  // The receive window per connection (bytes); 0: the loop's max_input_bytes.
  std::size_t receive_buffer = 0;
  // Buffer memory one connection's out-of-order queue may hold (bytes of
  // packet buffers, not of payload).
  std::size_t reorder_memory = 512 * 1024;
  // Payloads smaller than this are copied into pool segments on arrival
  // (small messages would otherwise pin a whole device buffer each);
  // larger ones stay in the buffer they came in (zero copy).
  std::uint32_t copy_below = 512;
  // Half-open connections per listener (its SYN queue); beyond it, SYN
  // cookies (RFC 4987 section 3.6) if enabled, else the SYN is dropped.
  unsigned syn_backlog = 1024;
  bool syn_cookies = true;  // SYN cookies beyond syn_backlog
  // Options offered in SYNs and accepted from the peer.
  bool window_scaling = true;
  bool timestamps = true;  // TCP timestamps (RFC 7323: RTT samples and PAWS)
  bool sack = true;        // selective acknowledgments (RFC 2018)
  // RFC 4821 (packetization layer path MTU discovery), for paths that drop
  // our DF segments without an ICMP frag-needed: from the second
  // retransmission timeout in a row, the path MSS steps down (to 984, then
  // 512 bytes) before the segment is resent (section 7.7, black hole
  // detection: tcp_pmtu_blackholes). Every mtu_probe_interval after that, a
  // probe segment one step larger (984, then the full MSS) is sent alone
  // at the end of the flight: acknowledged, the path MSS takes its size
  // (tcp_mtu_probes_ok); lost, the retransmission timeout resends at the
  // old size with no back-off and no congestion response. Interval: 1 s to
  // 1 h (clamped at start), 10 minutes by default (RFC 4821 section 7.7).
  bool mtu_blackhole_detection = true;
  duration mtu_probe_interval = std::chrono::minutes(10);  // how often a stepped-down path MSS is probed upwards
  // RFC 5961 section 7: challenge ACKs per second, per stack.
  unsigned challenge_ack_limit = 1000;
  // The ACKs that answer out-of-window and PAWS-rejected segments: at most
  // one per connection per this interval (Linux's tcp_invalid_ratelimit),
  // so that forged segments cannot turn the stack into an ACK generator.
  // A plausible duplicate (ending within the last receive buffer below
  // RCV.NXT: a retransmission, a keepalive or window probe, a FIN again in
  // TIME-WAIT) is always answered. Clamped to [0, 10 s] at start.
  duration invalid_ack_interval = std::chrono::milliseconds(500);
  // Control blocks per stack (connections, half-open and TIME-WAIT ones);
  // 0: twice the loop's max_connections.
  std::size_t max_control_blocks = 0;
  // The secret behind initial sequence numbers, SYN cookies and timestamp
  // offsets; 0 (the default): random per stack. Tests fix it to replay runs.
  std::uint64_t secret = 0;
  // Tests only: every initial sequence number is this instead of RFC 6528's
  // (to start a connection just below 2^32 and watch it wrap).
  std::optional<std::uint32_t> fixed_isn{};
};

}  // namespace sluice::inet
