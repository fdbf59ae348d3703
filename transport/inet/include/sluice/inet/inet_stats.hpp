#pragma once
// The user-space stack's counters, one set per loop. Its loop writes them;
// any thread may read them (relaxed atomics, see core/stats.hpp).

#include <array>

#include "sluice/core/stats.hpp"
#include "sluice/inet/drop_reason.hpp"

namespace sluice::inet {

struct inet_stats {
  std::array<counter, drop_reason_count> drops;

  counter rx_frames;
  counter rx_bytes;
  counter tx_frames;
  counter tx_bytes;

  counter arp_requests_in;
  counter arp_replies_in;
  counter arp_requests_out;      // gratuitous announcements included
  counter arp_replies_out;
  counter arp_learned;           // new or changed neighbours (from the wire)
  counter arp_learned_from_peers;  // the same, told by another loop
  counter arp_expired;           // entries found stale and resolved again
  counter arp_conflicts;         // a live neighbour's address claimed by another MAC (probed, not taken)
  counter arp_confirmed;         // ... and the known MAC answered the probe: kept
  counter arp_reassigned;        // ... and the known MAC stayed silent: the claimant taken
  counter arp_pending_evicted;   // held packets given up for another neighbour's (full queue or table)

  counter icmp_echo_replies;
  counter udp_in;
  counter udp_out;
  counter fragments_in;
  counter reassembled;
  counter frag_evictions;        // datagrams in progress evicted to make room (slots or memory)
  counter fragments_out;         // outgoing datagrams cut into fragments (counted per fragment)
  counter tx_in_place;           // replies sent in the buffer the request came in (no copy)
  counter tx_copied;             // outgoing payloads copied into a fresh buffer

  // TCP (RFC 9293's MIB-like counts, plus what this stack does besides).
  counter tcp_segments_in;
  counter tcp_segments_out;
  counter tcp_active_opens;      // connect() calls that sent a SYN
  counter tcp_passive_opens;     // handshakes completed on a listener
  counter tcp_established;       // connections that reached ESTABLISHED
  counter tcp_resets_in;         // RSTs that ended a connection
  counter tcp_resets_out;
  counter tcp_retransmits;       // segments sent again (any reason)
  counter tcp_fast_retransmits;  // recoveries entered on duplicate ACKs or SACK
  counter tcp_timeouts;          // retransmission timer expiries
  counter tcp_dup_acks;
  counter tcp_sack_recoveries;   // recoveries that used the peer's SACK blocks
  counter tcp_ooo_segments;      // segments kept in an out-of-order queue
  counter tcp_challenge_acks;    // RFC 5961 challenge ACKs sent
  counter tcp_invalid_acks_limited;  // ACKs not sent to out-of-window or PAWS segments (rate limit)
  counter tcp_pmtu_updates;      // connections whose path MSS an ICMP frag-needed lowered (RFC 1191)
  counter tcp_pmtu_blackholes;   // path MSS stepped down after timeouts (RFC 4821 7.7: ICMP filtered)
  counter tcp_mtu_probes;        // RFC 4821 probe segments sent to raise a stepped-down path MSS
  counter tcp_mtu_probes_ok;     // ... acknowledged: the path MSS took their size
  counter tcp_persist_timeouts;  // connections given up on: the peer's window stayed shut too long
  counter tcp_syn_cookies_sent;
  counter tcp_syn_cookies_ok;    // connections made from a valid cookie
  counter tcp_zero_window_probes;
  counter tcp_keepalive_probes;
  counter tcp_time_wait;         // connections that entered TIME-WAIT
  counter tcp_zero_copy_in;      // payloads kept in the buffer they came in
  counter tcp_copied_in;         // small payloads copied into pool segments
  counter tcp_steered_out;       // segments forwarded to their owning loop
  counter tcp_steered_in;        // segments another loop forwarded here

  // Adaptive polling: where a loop's time goes. Work: iterations whose poll
  // found packets; idle polling: iterations that found none and did not
  // sleep (the busy-poll spin); sleep: time blocked between polls.
  counter polls_useful;
  counter polls_empty;
  counter sleeps;
  counter work_ns;
  counter idle_poll_ns;
  counter sleep_ns;

  [[nodiscard]] std::uint64_t dropped(drop_reason r) const noexcept { return drops[static_cast<std::size_t>(r)].get(); }
  [[nodiscard]] std::uint64_t dropped_total() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < drop_reason_count; ++i) n += drops[i].get();
    return n;
  }
  void drop(drop_reason r) noexcept { drops[static_cast<std::size_t>(r)].add(); }
};

}  // namespace sluice::inet
