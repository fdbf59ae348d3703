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

  counter icmp_echo_replies;
  counter udp_in;
  counter udp_out;
  counter fragments_in;
  counter reassembled;
  counter fragments_out;         // outgoing datagrams cut into fragments (counted per fragment)
  counter tx_in_place;           // replies sent in the buffer the request came in (no copy)
  counter tx_copied;             // outgoing payloads copied into a fresh buffer

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
