// The ARP cache on a manual clock: learning by RFC 826's merge rule, expiry,
// resolution with retries and failure, held packets and their bounds, and
// eviction. Packet buffers come from a memory wire's pool, which also shows
// that every held buffer is given back.

#include <gtest/gtest.h>

#include <vector>

#include "sluice/inet/arp_cache.hpp"
#include "sluice/memory/memory_wire.hpp"

namespace sluice::inet {
namespace {

using namespace std::chrono_literals;
using side = memory::memory_wire::side;

struct arp_cache_test : ::testing::Test {
  memory::memory_wire wire{memory::memory_wire::options{}};
  inet_stats stats;
  time_point t0{100s};
  const mac_address m1{{2, 0, 0, 0, 0, 1}};
  const mac_address m2{{2, 0, 0, 0, 0, 2}};

  packet* buffer(std::uint8_t tag) {
    packet* p = nullptr;
    EXPECT_EQ(wire.allocate(side::a, &p, 1), 1u);
    p->data()[0] = std::byte{tag};
    p->seg.end = p->seg.begin + 1;
    return p;
  }
  std::size_t free_buffers() const { return wire.free_buffers(side::a); }
};

TEST_F(arp_cache_test, learns_a_neighbour_only_when_asked_for_us_and_forgets_it_after_reachable_time) {
  arp_options o;
  o.reachable_time = 30s;
  arp_cache c(o, stats);
  auto none = [](packet*) { FAIL() << "nothing was held"; };
  // Not for us and not known: RFC 826 does not add it.
  EXPECT_FALSE(c.learn(10, m1, t0, false, none));
  EXPECT_EQ(c.lookup(10, t0), nullptr);
  EXPECT_TRUE(c.learn(10, m1, t0, true, none));
  ASSERT_NE(c.lookup(10, t0), nullptr);
  EXPECT_EQ(*c.lookup(10, t0), m1);
  // Known: updated even when not addressed to us; the same MAC is no news.
  EXPECT_FALSE(c.learn(10, m1, t0 + 1s, false, none));
  EXPECT_TRUE(c.learn(10, m2, t0 + 2s, false, none));
  EXPECT_EQ(*c.lookup(10, t0 + 2s), m2);
  EXPECT_NE(c.lookup(10, t0 + 31s), nullptr);
  EXPECT_EQ(c.lookup(10, t0 + 32s), nullptr) << "stale after reachable_time";
  EXPECT_EQ(c.reachable(t0 + 32s), 0u);
}

TEST_F(arp_cache_test, holds_packets_while_resolving_and_releases_them_in_order) {
  arp_cache c(arp_options{}, stats);
  const std::size_t before = free_buffers();
  auto r1 = c.hold(20, buffer(1), t0);
  EXPECT_TRUE(r1.held);
  EXPECT_TRUE(r1.send_request);
  auto r2 = c.hold(20, buffer(2), t0);
  EXPECT_TRUE(r2.held);
  EXPECT_FALSE(r2.send_request) << "one request per resolution, not per packet";
  (void)c.hold(21, buffer(9), t0);
  EXPECT_EQ(c.pending(), 3u);
  std::vector<int> released;
  EXPECT_TRUE(c.learn(20, m1, t0 + 10ms, false, [&](packet* p) {
    released.push_back(std::to_integer<int>(p->data()[0]));
    segment_unref(&p->seg);
  }));
  EXPECT_EQ(released, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.pending(), 1u);
  ASSERT_NE(c.lookup(20, t0 + 10ms), nullptr);
  // The cache's destructor gives back what it still holds.
  EXPECT_EQ(free_buffers(), before - 1);
}

TEST_F(arp_cache_test, retries_then_drops_what_waited_for_a_silent_neighbour) {
  arp_options o;
  o.retry_interval = 1s;
  o.max_requests = 3;
  arp_cache c(o, stats);
  const std::size_t before = free_buffers();
  ASSERT_TRUE(c.hold(30, buffer(1), t0).send_request);
  (void)c.hold(30, buffer(2), t0);
  EXPECT_EQ(c.next_due(), t0 + 1s);
  std::vector<std::uint32_t> asked;
  auto ask = [&](std::uint32_t ip) { asked.push_back(ip); };
  c.tick(t0 + 999ms, ask);
  EXPECT_TRUE(asked.empty()) << "never early";
  c.tick(t0 + 1s, ask);
  c.tick(t0 + 2s, ask);
  EXPECT_EQ(asked, (std::vector<std::uint32_t>{30, 30})) << "requests 2 and 3";
  EXPECT_EQ(c.pending(), 2u);
  c.tick(t0 + 3s, ask);
  EXPECT_EQ(asked.size(), 2u) << "no fourth request";
  EXPECT_EQ(c.pending(), 0u);
  EXPECT_EQ(stats.dropped(drop_reason::arp_unresolved), 2u);
  EXPECT_EQ(free_buffers(), before);
  EXPECT_EQ(c.next_due(), time_point::max());
  // A failed neighbour is tried afresh on the next packet.
  EXPECT_TRUE(c.hold(30, buffer(3), t0 + 10s).send_request);
}

TEST_F(arp_cache_test, a_stale_entry_is_resolved_again_and_counted) {
  arp_options o;
  o.reachable_time = 5s;
  arp_cache c(o, stats);
  ASSERT_TRUE(c.learn(40, m1, t0, true, [](packet*) {}));
  EXPECT_EQ(c.lookup(40, t0 + 6s), nullptr);
  EXPECT_TRUE(c.hold(40, buffer(1), t0 + 6s).send_request);
  EXPECT_EQ(stats.arp_expired.get(), 1u);
}

TEST_F(arp_cache_test, bounds_held_packets_in_all_and_per_neighbour) {
  arp_options o;
  o.max_pending = 5;
  o.max_pending_per_neighbour = 3;
  arp_cache c(o, stats);
  const std::size_t before = free_buffers();
  int held = 0;
  for (int i = 0; i < 5; ++i) held += c.hold(50, buffer(1), t0).held ? 1 : 0;
  EXPECT_EQ(held, 3);
  for (int i = 0; i < 5; ++i) held += c.hold(51, buffer(1), t0).held ? 1 : 0;
  EXPECT_EQ(held, 6) << "at the total bound, 51's third took the place of 50's oldest (50 held more)";
  EXPECT_EQ(c.pending(), 5u) << "the total bound";
  EXPECT_EQ(stats.arp_pending_evicted.get(), 1u);
  EXPECT_EQ(stats.dropped(drop_reason::arp_pending_full), 5u) << "two refused by each bound, one evicted";
  EXPECT_EQ(free_buffers(), before - 5) << "the refused ones went back at once";
}

TEST_F(arp_cache_test, a_full_table_evicts_the_stalest_entry_and_a_resolving_one_only_once_it_waited_longest) {
  arp_options o;
  o.capacity = 8;  // one probe window: every address competes for it
  arp_cache c(o, stats);
  auto none = [](packet*) {};
  for (std::uint32_t ip = 1; ip <= 8; ++ip) ASSERT_TRUE(c.learn(ip, m1, t0 + std::chrono::seconds(ip), true, none));
  EXPECT_TRUE(c.learn(100, m2, t0 + 20s, true, none));
  EXPECT_EQ(c.lookup(1, t0 + 20s), nullptr) << "the oldest went";
  EXPECT_NE(c.lookup(2, t0 + 20s), nullptr);
  EXPECT_NE(c.lookup(100, t0 + 20s), nullptr);
  // Fill the table with neighbours that are resolving: nothing can go.
  arp_cache busy(o, stats);
  for (std::uint32_t ip = 1; ip <= 8; ++ip) (void)busy.hold(ip, buffer(1), t0);
  EXPECT_FALSE(busy.learn(200, m1, t0, true, none));
  EXPECT_EQ(stats.dropped(drop_reason::arp_table_full), 1u) << "not one that started this instant";
  // Later, the neighbour asked most (then longest) without an answer gives
  // way, with what it held (a flood's sources never answer).
  busy.tick(t0 + 1s, [](std::uint32_t) {});  // every one asked a second time
  ASSERT_TRUE(busy.hold(3, buffer(1), t0 + 1500ms).held);  // 3 is resolving already
  EXPECT_TRUE(busy.learn(200, m1, t0 + 2s, true, none));
  EXPECT_NE(busy.lookup(200, t0 + 2s), nullptr);
  EXPECT_EQ(stats.arp_pending_evicted.get(), 1u);
  EXPECT_EQ(stats.dropped(drop_reason::arp_unresolved), 1u);
  EXPECT_EQ(busy.pending(), 8u) << "one neighbour (with one packet) gave way";
}

// With several loops, the known MAC's answer to one loop's probe may arrive
// on another loop's queue (found as a flaky dpdk_attack check): that loop
// says so to its peers (at most once per retry interval), and the probing
// loop's cache takes the peer's word as the confirmation; without it, the
// probing loop would give the address to the claimant after max_requests.
TEST_F(arp_cache_test, regression_a_probe_answered_on_another_loop_is_confirmed_by_the_peer) {
  arp_options o;
  o.retry_interval = 1s;
  o.max_requests = 3;
  inet_stats other_stats;
  arp_cache probing(o, stats);
  arp_cache other(o, other_stats);
  auto none = [](packet*) {};
  ASSERT_TRUE(probing.learn_from_wire(10, m1, t0, true, none).changed);
  ASSERT_TRUE(other.learn(10, m1, t0, true, none));  // told by the peer
  ASSERT_TRUE(probing.learn_from_wire(10, m2, t0 + 1s, false, none).probe);
  // The answer lands on the other loop: it is to tell its peers, once.
  auto r = other.learn_from_wire(10, m1, t0 + 1100ms, false, none);
  EXPECT_FALSE(r.changed);
  EXPECT_TRUE(r.confirm_peers);
  EXPECT_FALSE(other.learn_from_wire(10, m1, t0 + 1200ms, false, none).confirm_peers) << "once per retry interval";
  EXPECT_TRUE(other.learn_from_wire(10, m1, t0 + 2100ms, false, none).confirm_peers);
  // The peer's word ends the probe as the answer itself would have.
  EXPECT_FALSE(probing.learn(10, m1, t0 + 1100ms, true, none));
  EXPECT_EQ(stats.arp_confirmed.get(), 1u);
  int probes = 0;
  probing.tick(t0 + 10s, [](std::uint32_t) {}, [&](std::uint32_t, const mac_address&) { ++probes; },
               [](std::uint32_t, const mac_address&) { ADD_FAILURE() << "reassigned to the claimant"; });
  EXPECT_EQ(probes, 0);
  EXPECT_EQ(*probing.lookup(10, t0 + 10s), m1);
}

// Issue 20 item 3: one unsolicited reply rewrote a live neighbour's entry
// for 60 s. A changed MAC for a live entry is now only a claim: counted, the
// known MAC is probed, and only its silence lets the claimant in.
TEST_F(arp_cache_test, regression_a_forged_reply_does_not_redirect_a_live_neighbour) {
  arp_options o;
  o.retry_interval = 1s;
  o.max_requests = 3;
  arp_cache c(o, stats);
  auto none = [](packet*) {};
  ASSERT_TRUE(c.learn_from_wire(10, m1, t0, true, none).changed);
  // The forger's reply: not taken; the known MAC is to be asked.
  auto r = c.learn_from_wire(10, m2, t0 + 1s, false, none);
  EXPECT_FALSE(r.changed);
  ASSERT_TRUE(r.probe);
  EXPECT_EQ(r.probe_to, m1);
  EXPECT_EQ(*c.lookup(10, t0 + 1s), m1);
  EXPECT_EQ(stats.arp_conflicts.get(), 1u);
  EXPECT_FALSE(c.learn_from_wire(10, m2, t0 + 1100ms, false, none).probe) << "one probe series at a time";
  EXPECT_EQ(stats.arp_conflicts.get(), 2u);
  // The real neighbour answers: it stays, the claim is forgotten.
  EXPECT_FALSE(c.learn_from_wire(10, m1, t0 + 1200ms, false, none).changed);
  EXPECT_EQ(stats.arp_confirmed.get(), 1u);
  int probes = 0;
  auto ask = [](std::uint32_t) {};
  auto probe = [&](std::uint32_t, const mac_address&) { ++probes; };
  auto taken = [&](std::uint32_t, const mac_address&) { ADD_FAILURE() << "nothing to take"; };
  for (int s = 2; s < 8; ++s) c.tick(t0 + std::chrono::seconds(s), ask, probe, taken);
  EXPECT_EQ(probes, 0);
  EXPECT_EQ(*c.lookup(10, t0 + 8s), m1);
  // A host that really changed its NIC: the old MAC stays silent through
  // max_requests probes, then the new one is taken.
  r = c.learn_from_wire(10, m2, t0 + 10s, false, none);
  ASSERT_TRUE(r.probe);
  std::vector<mac_address> reassigned;
  auto took = [&](std::uint32_t ip, const mac_address& m) {
    EXPECT_EQ(ip, 10u);
    reassigned.push_back(m);
  };
  EXPECT_EQ(c.next_due(), t0 + 11s);
  for (int s = 11; s <= 13; ++s) c.tick(t0 + std::chrono::seconds(s), ask, probe, took);
  EXPECT_EQ(probes, 2) << "probes 2 and 3 (the first went with the claim)";
  ASSERT_EQ(reassigned.size(), 1u);
  EXPECT_EQ(reassigned[0], m2);
  EXPECT_EQ(*c.lookup(10, t0 + 13s), m2);
  EXPECT_EQ(stats.arp_reassigned.get(), 1u);
  // An entry not in use (expired) takes a new MAC at once, as before.
  EXPECT_TRUE(c.learn_from_wire(10, m1, t0 + 200s, false, none).changed);
}

// Issue 20 item 4: the shared queue of packets waiting for ARP filled with
// answers to sources that never answer (a SYN flood's SYN-ACKs), and the
// first packet to any new neighbour was dropped. The flood's packets go first.
TEST_F(arp_cache_test, regression_a_flood_of_silent_neighbours_does_not_keep_a_new_neighbours_packet_out) {
  arp_options o;
  arp_cache c(o, stats);
  const std::size_t before = free_buffers();
  for (std::uint32_t ip = 1000; ip < 1200; ++ip) (void)c.hold(ip, buffer(1), t0 + (ip - 1000) * 1ms);
  EXPECT_EQ(c.pending(), o.max_pending);
  // A SYN-ACK retransmission to one of them: it holds as many as the others.
  (void)c.hold(1150, buffer(2), t0 + 1s);
  auto r = c.hold(7, buffer(7), t0 + 1s);
  EXPECT_TRUE(r.held) << "the first packet to a new neighbour";
  EXPECT_TRUE(r.send_request);
  EXPECT_EQ(c.pending(), o.max_pending);
  std::vector<int> released;
  EXPECT_TRUE(c.learn(7, m1, t0 + 1001ms, false, [&](packet* p) {
    released.push_back(std::to_integer<int>(p->data()[0]));
    segment_unref(&p->seg);
  }));
  EXPECT_EQ(released, (std::vector<int>{7}));
  EXPECT_GE(stats.arp_pending_evicted.get(), 1u);
  EXPECT_EQ(free_buffers(), before - c.pending());
}

}  // namespace
}  // namespace sluice::inet
