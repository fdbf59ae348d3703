// IPv4 reassembly on a manual clock: every order of fragments, duplicates,
// overlaps (the datagram is dropped and its key poisoned until its time is
// up), contradictory lengths, endless fragments and every limit; buffers
// held are never leaked.

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sluice/inet/ipv4_reassembler.hpp"
#include "sluice/memory/memory_wire.hpp"

namespace sluice::inet {
namespace {

using namespace std::chrono_literals;
using side = memory::memory_wire::side;

struct reassembler_test : ::testing::Test {
  memory::memory_wire wire{[] {
    memory::memory_wire::options o;
    o.buffers_per_end = 2048;
    return o;
  }()};
  inet_stats stats;
  time_point t0{50s};

  // A fragment of datagram `id` holding payload[off, off + len).
  packet* frag(const std::string& payload, std::uint16_t off, std::uint16_t len, bool more, std::uint16_t id,
               ipv4_header& h) {
    packet* p = nullptr;
    EXPECT_EQ(wire.allocate(side::a, &p, 1), 1u);
    std::copy_n(reinterpret_cast<const std::byte*>(payload.data()) + off, len, p->data());
    p->seg.end = p->seg.begin + len;
    h = ipv4_header{};
    h.id = id;
    h.protocol = 17;
    h.src = 0x0a000001;
    h.dst = 0x0a000002;
    h.fragment_offset = off;
    h.more_fragments = more;
    h.total_len = static_cast<std::uint16_t>(20 + len);
    return p;
  }
  static std::string joined(const ipv4_reassembler::datagram& d) {
    std::string s;
    for (std::size_t i = 0; i < d.count; ++i) {
      s.append(reinterpret_cast<const char*>(d.fragments[i].p->data()), d.fragments[i].p->size());
    }
    return s;
  }
  static void release(const ipv4_reassembler::datagram& d) {
    for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.fragments[i].p->seg);
  }
  std::size_t in_use() const { return 2048 - wire.free_buffers(side::a); }
};

TEST_F(reassembler_test, any_order_of_fragments_gives_the_datagram_back_in_order) {
  std::string payload(4000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  std::vector<std::uint16_t> offs;
  for (std::uint16_t o = 0; o < 4000; o += 800) offs.push_back(o);
  std::mt19937 rng(3);
  for (int round = 0; round < 20; ++round) {
    ipv4_reassembler r(reassembly_options{}, stats);
    std::shuffle(offs.begin(), offs.end(), rng);
    ipv4_reassembler::datagram d;
    int completed = 0;
    for (std::size_t k = 0; k < offs.size(); ++k) {
      ipv4_header h;
      const std::uint16_t o = offs[k];
      packet* p = frag(payload, o, 800, o + 800 < 4000, 7, h);
      if (r.add(p, h, t0, d)) {
        ++completed;
        EXPECT_EQ(k, offs.size() - 1) << "complete only with the last missing piece";
      }
    }
    ASSERT_EQ(completed, 1);
    EXPECT_EQ(d.count, 5u);
    EXPECT_EQ(joined(d), payload);
    EXPECT_EQ(d.header.total_len, 20 + 4000);
    EXPECT_FALSE(d.header.is_fragment());
    EXPECT_EQ(r.held_packets(), 0u);
    EXPECT_EQ(r.in_progress(), 0u);
    release(d);
  }
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(reassembler_test, an_exact_duplicate_is_dropped_alone) {
  const std::string payload(24, 'x');
  ipv4_reassembler r(reassembly_options{}, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  EXPECT_FALSE(r.add(frag(payload, 0, 16, true, 1, h), h, t0, d));
  EXPECT_FALSE(r.add(frag(payload, 0, 16, true, 1, h), h, t0, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_duplicate), 1u);
  ASSERT_TRUE(r.add(frag(payload, 16, 8, false, 1, h), h, t0, d));
  EXPECT_EQ(joined(d), payload);
  release(d);
}

TEST_F(reassembler_test, overlapping_fragments_drop_the_datagram_and_poison_it_until_its_timeout) {
  const std::string payload(64, 'o');
  reassembly_options o;
  o.timeout = 2s;
  ipv4_reassembler r(o, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  EXPECT_FALSE(r.add(frag(payload, 0, 32, true, 5, h), h, t0, d));
  EXPECT_FALSE(r.add(frag(payload, 24, 16, true, 5, h), h, t0, d));  // overlaps [24, 32)
  EXPECT_EQ(stats.dropped(drop_reason::frag_overlap), 2u) << "both pieces";
  EXPECT_EQ(r.held_packets(), 0u);
  // The rest of that datagram, even pieces that would fit, is refused...
  EXPECT_FALSE(r.add(frag(payload, 32, 32, false, 5, h), h, t0 + 1s, d));
  EXPECT_FALSE(r.add(frag(payload, 0, 32, true, 5, h), h, t0 + 1s, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_overlap), 4u);
  // ...until its time is up; then the key is free again.
  r.expire(t0 + 2s);
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_FALSE(r.add(frag(payload, 0, 32, true, 5, h), h, t0 + 3s, d));
  ASSERT_TRUE(r.add(frag(payload, 32, 32, false, 5, h), h, t0 + 3s, d));
  EXPECT_EQ(joined(d), payload);
  release(d);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(reassembler_test, lengths_that_contradict_each_other_are_counted_drops) {
  const std::string payload(64, 'l');
  ipv4_reassembler r(reassembly_options{}, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  // Not a multiple of 8 in a non-last fragment, and an empty one.
  EXPECT_FALSE(r.add(frag(payload, 0, 12, true, 1, h), h, t0, d));
  EXPECT_FALSE(r.add(frag(payload, 0, 0, true, 1, h), h, t0, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_bad_length), 2u);
  // A last fragment, then data beyond it.
  EXPECT_FALSE(r.add(frag(payload, 16, 8, false, 2, h), h, t0, d));
  EXPECT_FALSE(r.add(frag(payload, 24, 16, true, 2, h), h, t0, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_bad_length), 4u) << "the piece and the one held";
  // Beyond 65535 bytes.
  std::string big(64, 'b');
  packet* p = frag(big, 0, 16, true, 3, h);
  h.fragment_offset = 65528;
  EXPECT_FALSE(r.add(p, h, t0, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_too_big), 1u);
  r.expire(t0 + 1h);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(reassembler_test, endless_fragments_are_bounded_by_count_memory_slots_and_time) {
  std::string payload(65528, 'e');
  reassembly_options o;
  o.max_datagrams = 4;
  o.max_fragments = 10;
  o.max_held_packets = 25;
  o.timeout = 5s;
  ipv4_reassembler r(o, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  // One datagram that never ends: its 11th fragment poisons it.
  for (std::uint16_t i = 0; i < 12; ++i) EXPECT_FALSE(r.add(frag(payload, i * 8, 8, true, 100, h), h, t0, d));
  EXPECT_EQ(stats.dropped(drop_reason::frag_too_many), 11u) << "the 11th and the ten held";
  EXPECT_EQ(stats.dropped(drop_reason::frag_overlap), 1u) << "the 12th hit the poisoned key";
  // New ids fill the slots; at the memory bound the oldest datagram that
  // holds buffers is evicted (one source here: its oldest).
  for (std::uint16_t id = 1; id <= 3; ++id) {
    for (std::uint16_t i = 0; i < 9; ++i) (void)r.add(frag(payload, i * 8, 8, true, id, h), h, t0 + id * 1ms, d);
  }
  EXPECT_EQ(r.held_packets(), 18u) << "25 reached on id 3's 8th: id 1's 9 went";
  EXPECT_EQ(stats.frag_evictions.get(), 1u);
  EXPECT_EQ(stats.dropped(drop_reason::frag_evicted), 9u);
  EXPECT_EQ(stats.dropped(drop_reason::frag_memory), 0u);
  // A full table: the oldest slot (the poisoned key, holding nothing) goes.
  EXPECT_FALSE(r.add(frag(payload, 0, 8, true, 99, h), h, t0 + 4ms, d));
  EXPECT_EQ(r.in_progress(), 4u);
  EXPECT_FALSE(r.add(frag(payload, 0, 8, true, 98, h), h, t0 + 5ms, d));
  EXPECT_EQ(r.in_progress(), 4u);
  EXPECT_EQ(stats.frag_evictions.get(), 2u);
  EXPECT_EQ(stats.dropped(drop_reason::frag_table_full), 0u);
  EXPECT_FALSE(r.add(frag(payload, 8, 8, true, 100, h), h, t0 + 6ms, d)) << "id 100 is no longer poisoned";
  EXPECT_EQ(stats.dropped(drop_reason::frag_overlap), 1u);
  EXPECT_EQ(stats.frag_evictions.get(), 3u) << "it took id 2's slot, the oldest";
  EXPECT_EQ(r.held_packets(), 12u) << "id 3's 9, and one each for 99, 98 and 100";
  // Time runs out for all of them.
  EXPECT_EQ(r.next_expiry(), t0 + 3ms + 5s);
  r.expire(t0 + 3ms + 4999ms);
  EXPECT_EQ(r.held_packets(), 12u) << "never early";
  r.expire(t0 + 6ms + 5s);
  EXPECT_EQ(r.held_packets(), 0u);
  EXPECT_EQ(r.in_progress(), 0u);
  EXPECT_EQ(stats.dropped(drop_reason::frag_timeout), 12u);
  // One datagram alone at the memory bound: the newcomer is refused.
  o.max_held_packets = 5;
  ipv4_reassembler small(o, stats);
  for (std::uint16_t i = 0; i < 8; ++i) (void)small.add(frag(payload, i * 8, 8, true, 7, h), h, t0, d);
  EXPECT_EQ(small.held_packets(), 5u);
  EXPECT_EQ(stats.dropped(drop_reason::frag_memory), 3u);
  small.expire(t0 + 5s);
  EXPECT_EQ(in_use(), 0u);
}

// Issue 20 item 2: 32 junk first fragments (never completed) took every
// slot for 10 s, so ~3 packets a second kept all fragmented UDP and ICMP
// out. Now a newcomer evicts the oldest datagram of the source holding the
// most, and a real datagram completes.
TEST_F(reassembler_test, regression_junk_first_fragments_do_not_keep_real_datagrams_out) {
  const std::string junk(1480, 'j');
  std::string real(3000, '\0');
  for (std::size_t i = 0; i < real.size(); ++i) real[i] = static_cast<char>(i * 13);
  for (const bool many_sources : {false, true}) {
    ipv4_reassembler r(reassembly_options{}, stats);
    const std::uint64_t evictions = stats.frag_evictions.get();
    ipv4_reassembler::datagram d;
    ipv4_header h;
    for (std::uint16_t id = 0; id < 40; ++id) {
      packet* p = frag(junk, 0, 1480, true, static_cast<std::uint16_t>(1000 + id), h);
      h.src = many_sources ? 0x0b000000u + id : 0x0b000001u;
      EXPECT_FALSE(r.add(p, h, t0 + id * 1ms, d));
    }
    EXPECT_EQ(r.in_progress(), 32u);
    EXPECT_EQ(stats.frag_evictions.get() - evictions, 8u) << "the 8 beyond the table evicted the oldest";
    // A real datagram from another host, in three fragments, arrives now.
    int completed = 0;
    for (std::uint16_t off = 0; off < 3000; off += 1480) {
      const std::uint16_t len = static_cast<std::uint16_t>(std::min<int>(1480, 3000 - off));
      packet* p = frag(real, off, len, off + len < 3000, 77, h);
      h.src = 0x0a000005;
      if (r.add(p, h, t0 + 100ms, d)) {
        ++completed;
        EXPECT_EQ(joined(d), real);
        release(d);
      }
    }
    EXPECT_EQ(completed, 1) << (many_sources ? "junk from 40 sources" : "junk from one source");
    r.expire(t0 + 20s);
  }
  EXPECT_EQ(stats.dropped(drop_reason::frag_table_full), 0u);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(reassembler_test, the_source_holding_the_most_slots_is_evicted_first) {
  const std::string junk(8, 'j');
  reassembly_options o;
  o.max_datagrams = 8;
  ipv4_reassembler r(o, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  // Source B came first (older) with 3 slots, source A later with 5.
  for (std::uint16_t id = 0; id < 8; ++id) {
    packet* p = frag(junk, 0, 8, true, id, h);
    h.src = id < 3 ? 0x0b00000bu : 0x0a00000au;
    (void)r.add(p, h, t0 + id * 1ms, d);
  }
  // A third source's datagram: A's oldest goes (id 3), not B's older ones.
  packet* p = frag(junk, 0, 8, true, 50, h);
  h.src = 0x0c00000cu;
  (void)r.add(p, h, t0 + 10ms, d);
  EXPECT_EQ(stats.frag_evictions.get(), 1u);
  // B's first datagram is still there: its second fragment completes it.
  p = frag(std::string(16, 'j'), 8, 8, false, 0, h);
  h.src = 0x0b00000bu;
  ASSERT_TRUE(r.add(p, h, t0 + 11ms, d)) << "B's oldest was kept";
  release(d);
  // A's id 3 was the one evicted: its second fragment opens a new datagram.
  p = frag(std::string(16, 'j'), 8, 8, false, 3, h);
  h.src = 0x0a00000au;
  EXPECT_FALSE(r.add(p, h, t0 + 12ms, d));
  r.expire(t0 + 1min);
  EXPECT_EQ(in_use(), 0u);
}

TEST_F(reassembler_test, fragments_of_different_datagrams_do_not_mix) {
  const std::string a(16, 'a'), b(16, 'b');
  ipv4_reassembler r(reassembly_options{}, stats);
  ipv4_reassembler::datagram d;
  ipv4_header h;
  EXPECT_FALSE(r.add(frag(a, 0, 8, true, 1, h), h, t0, d));
  EXPECT_FALSE(r.add(frag(b, 0, 8, true, 2, h), h, t0, d));
  packet* other_src = frag(b, 8, 8, false, 1, h);
  h.src = 0x0a000009;  // same id, other sender
  EXPECT_FALSE(r.add(other_src, h, t0, d));
  ASSERT_TRUE(r.add(frag(b, 8, 8, false, 2, h), h, t0, d));
  EXPECT_EQ(joined(d), b);
  release(d);
  ASSERT_TRUE(r.add(frag(a, 8, 8, false, 1, h), h, t0, d));
  EXPECT_EQ(joined(d), a);
  release(d);
  EXPECT_EQ(r.in_progress(), 1u) << "the other sender's piece still waits";
}

}  // namespace
}  // namespace sluice::inet
