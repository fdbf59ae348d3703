#pragma once
// The user-space stack's counters, one set per loop. Its loop writes them;
// any thread may read them (relaxed atomics, see core/stats.hpp).

#include <array>

#include "sluice/core/stats.hpp"
#include "sluice/inet/drop_reason.hpp"

namespace sluice::inet {

// The counters of one loop's stack (see the file comment), exported as
// "loopN.inet.NAME" metrics; drops as "loopN.inet.drop.REASON".
struct inet_stats {
  // Frames dropped, indexed by drop_reason.
  std::array<counter, drop_reason_count> drops;

  counter rx_frames;  // frames received from the port
  counter rx_bytes;   // bytes of those frames
  counter tx_frames;  // frames handed to the port
  counter tx_bytes;   // bytes of those frames

  counter arp_requests_in;  // ARP requests received
  counter arp_replies_in;   // ARP replies received
  counter arp_requests_out;      // gratuitous announcements included
  counter arp_replies_out;  // ARP replies sent
  counter arp_learned;           // new or changed neighbours (from the wire)
  counter arp_learned_from_peers;  // the same, told by another loop
  counter arp_expired;           // entries found stale and resolved again
  counter arp_conflicts;         // a live neighbour's address claimed by another MAC (probed, not taken)
  counter arp_confirmed;         // ... and the known MAC answered the probe: kept
  counter arp_reassigned;        // ... and the known MAC stayed silent: the claimant taken
  counter arp_pending_evicted;   // held packets given up for another neighbour's (full queue or table)

  // IPv6 Neighbour Discovery (RFC 4861): the neighbour cache's counts as ARP's above.
  counter nd_solicitations_in;     // neighbour solicitations received
  counter nd_solicitations_out;    // neighbour solicitations sent (DAD and NUD included)
  counter nd_advertisements_in;    // neighbour advertisements received
  counter nd_advertisements_out;   // neighbour advertisements sent
  counter nd_learned;              // new or changed IPv6 neighbours
  counter nd_learned_from_peers;   // the same, told by another loop
  counter nd_expired;              // entries found stale and resolved again
  counter nd_conflicts;            // a live neighbour's address claimed by another MAC (probed)
  counter nd_confirmed;            // ... and the known MAC answered: kept
  counter nd_reassigned;           // ... and the known MAC stayed silent: the claimant taken
  counter nd_pending_evicted;      // held packets given up for another neighbour's
  counter nd_dad_probes;           // duplicate address detection solicitations sent
  counter nd_router_adverts_used;  // router advertisements that set the default router (--accept-ra)
  counter mld_reports_out;         // MLD reports sent (joins, their repeat, answers to queries)
  counter mld_queries_in;          // MLD queries for all our groups or one of them

  // IPv6 and ICMPv6 (RFC 4443).
  counter ipv6_in;                 // IPv6 packets accepted for us
  counter ipv6_out;                // IPv6 packets sent (fragments each)
  counter icmp6_in;                // ICMPv6 messages received (checksum good)
  counter icmp6_out;               // ICMPv6 messages sent (ND included)
  counter icmp6_echo_replies;      // ICMPv6 echo replies sent
  counter icmp6_errors_out;        // ICMPv6 errors sent (unreachable, parameter problem)
  counter icmp6_errors_rate_limited;  // ICMPv6 errors not sent: over the rate limit (RFC 4443 2.4 (f))
  counter icmp6_packet_too_big;    // packet too big messages taken: a path MTU recorded
  counter icmp6_errors_in;         // other ICMPv6 errors received (counted, not acted on)

  counter icmp_echo_replies;  // ICMP echo replies sent
  counter udp_in;             // UDP datagrams delivered to sockets
  counter udp_out;            // UDP datagrams sent
  counter fragments_in;       // IPv4 fragments received
  counter reassembled;        // datagrams reassembled from fragments
  counter frag_evictions;        // datagrams in progress evicted to make room (slots or memory)
  counter fragments_out;         // outgoing datagrams cut into fragments (counted per fragment)
  counter tx_in_place;           // replies sent in the buffer the request came in (no copy)
  counter tx_copied;             // outgoing payloads copied into a fresh buffer

  // TCP (RFC 9293's MIB-like counts, plus what this stack does besides).
  counter tcp_segments_in;   // TCP segments received
  counter tcp_segments_out;  // TCP segments sent
  counter tcp_active_opens;      // connect() calls that sent a SYN
  counter tcp_passive_opens;     // handshakes completed on a listener
  counter tcp_established;       // connections that reached ESTABLISHED
  counter tcp_resets_in;         // RSTs that ended a connection
  counter tcp_resets_out;  // RSTs sent
  counter tcp_retransmits;       // segments sent again (any reason)
  counter tcp_fast_retransmits;  // recoveries entered on duplicate ACKs or SACK
  counter tcp_timeouts;          // retransmission timer expiries
  counter tcp_dup_acks;  // duplicate ACKs received
  counter tcp_sack_recoveries;   // recoveries that used the peer's SACK blocks
  counter tcp_ooo_segments;      // segments kept in an out-of-order queue
  counter tcp_challenge_acks;    // RFC 5961 challenge ACKs sent
  counter tcp_invalid_acks_limited;  // ACKs not sent to out-of-window or PAWS segments (rate limit)
  counter tcp_pmtu_updates;      // connections whose path MSS an ICMP frag-needed lowered (RFC 1191)
  counter tcp_pmtu_blackholes;   // path MSS stepped down after timeouts (RFC 4821 7.7: ICMP filtered)
  counter tcp_mtu_probes;        // RFC 4821 probe segments sent to raise a stepped-down path MSS
  counter tcp_mtu_probes_ok;     // ... acknowledged: the path MSS took their size
  counter tcp_persist_timeouts;  // connections given up on: the peer's window stayed shut too long
  counter tcp_syn_cookies_sent;  // SYN-ACKs sent with a SYN cookie (SYN queue full)
  counter tcp_syn_cookies_ok;    // connections made from a valid cookie
  counter tcp_zero_window_probes;  // zero-window probes sent
  counter tcp_keepalive_probes;    // keepalive probes sent
  counter tcp_time_wait;         // connections that entered TIME-WAIT
  counter tcp_zero_copy_in;      // payloads kept in the buffer they came in
  counter tcp_copied_in;         // small payloads copied into pool segments
  counter tcp_steered_out;       // segments forwarded to their owning loop
  counter tcp_steered_in;        // segments another loop forwarded here

  // Adaptive polling: where a loop's time goes. Work: iterations whose poll
  // found packets; idle polling: iterations that found none and did not
  // sleep (the busy-poll spin); sleep: time blocked between polls.
  counter polls_useful;  // polls that found packets
  counter polls_empty;   // polls that found no packets
  counter sleeps;        // sleeps between polls
  counter work_ns;       // ns from a poll that found packets to the next poll
  counter idle_poll_ns;  // ns from a poll that found none to the next (sleep excluded)
  counter sleep_ns;      // ns slept between polls

  // Frames dropped for reason r. Any thread.
  [[nodiscard]] std::uint64_t dropped(drop_reason r) const noexcept { return drops[static_cast<std::size_t>(r)].get(); }
  // Frames dropped for any reason (drop_reason::none excluded). Any thread.
  [[nodiscard]] std::uint64_t dropped_total() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < drop_reason_count; ++i) n += drops[i].get();
    return n;
  }
  // Counts a frame dropped for reason r. Owner loop only.
  void drop(drop_reason r) noexcept { drops[static_cast<std::size_t>(r)].add(); }
};

}  // namespace sluice::inet
