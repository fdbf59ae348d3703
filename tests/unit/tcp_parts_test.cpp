// The TCP's parts on their own: header and option parsing and writing
// (against the test's own byte-by-byte frames), sequence arithmetic across
// 2^32, SipHash-2-4 and the Toeplitz hash against their published vectors,
// the RFC 6298 estimator, NewReno's and CUBIC's windows, the out-of-order
// queue and the SACK scoreboard.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "frames.hpp"
#include "sluice/inet/congestion_control.hpp"
#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/rtt_estimator.hpp"
#include "sluice/inet/siphash.hpp"
#include "sluice/inet/tcp_header.hpp"
#include "sluice/inet/tcp_reorder_queue.hpp"
#include "sluice/inet/tcp_seq.hpp"

namespace sluice::inet {
namespace {

namespace fr = test::frames;
using namespace std::chrono_literals;

const std::byte* bytes(const std::string& s) { return reinterpret_cast<const std::byte*>(s.data()); }

TEST(tcp_header, parses_every_field_and_option_the_stack_uses) {
  const std::string opts = fr::tcp_option_mss(1460) + fr::tcp_option_sack_permitted() +
                           fr::tcp_option_timestamps(0x11223344, 0x55667788) + fr::tcp_option_wscale(7);
  const std::string seg = fr::tcp(1, 2, 40000, 80, "data", {.seq = 0xfffffff0, .ack = 7, .flags = 0x12, .window = 1234,
                                                           .options = opts});
  tcp_header h;
  ASSERT_EQ(parse_tcp(bytes(seg), seg.size(), h), drop_reason::none);
  EXPECT_EQ(h.src_port, 40000);
  EXPECT_EQ(h.dst_port, 80);
  EXPECT_EQ(h.seq, 0xfffffff0u);
  EXPECT_EQ(h.ack, 7u);
  EXPECT_TRUE(h.has(tcp_syn));
  EXPECT_TRUE(h.has(tcp_ack));
  EXPECT_FALSE(h.has(tcp_fin));
  EXPECT_EQ(h.window, 1234);
  EXPECT_EQ(h.header_len, seg.size() - 4);
  EXPECT_TRUE(h.opt.has_mss);
  EXPECT_EQ(h.opt.mss, 1460);
  EXPECT_TRUE(h.opt.sack_permitted);
  EXPECT_TRUE(h.opt.has_timestamps);
  EXPECT_EQ(h.opt.ts_val, 0x11223344u);
  EXPECT_EQ(h.opt.ts_ecr, 0x55667788u);
  EXPECT_TRUE(h.opt.has_wscale);
  EXPECT_EQ(h.opt.wscale, 7);

  const std::string sacks = fr::tcp_option_sack({{100, 200}, {300, 400}, {500, 600}});
  const std::string seg2 = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .options = sacks});
  ASSERT_EQ(parse_tcp(bytes(seg2), seg2.size(), h), drop_reason::none);
  ASSERT_EQ(h.opt.sack_count, 3);
  EXPECT_EQ(h.opt.sacks[1].left, 300u);
  EXPECT_EQ(h.opt.sacks[2].right, 600u);
}

TEST(tcp_header, malformed_headers_are_named_drops) {
  tcp_header h;
  const std::string good = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10});
  EXPECT_EQ(parse_tcp(bytes(good), 19, h), drop_reason::tcp_truncated);
  const std::string small = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .data_offset = 4});
  EXPECT_EQ(parse_tcp(bytes(small), small.size(), h), drop_reason::tcp_bad_offset);
  const std::string past = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .data_offset = 15});
  EXPECT_EQ(parse_tcp(bytes(past), past.size(), h), drop_reason::tcp_truncated);
  const std::string port0 = fr::tcp(1, 2, 0, 2, "", {.flags = 0x10});
  EXPECT_EQ(parse_tcp(bytes(port0), port0.size(), h), drop_reason::tcp_bad_port);
  const std::string synfin = fr::tcp(1, 2, 1, 2, "", {.flags = 0x03});
  EXPECT_EQ(parse_tcp(bytes(synfin), synfin.size(), h), drop_reason::tcp_bad_flags);
  // An option whose length runs past the header, one with a wrong size.
  const std::string runs = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .options = std::string("\x08\x0c\x00\x00", 4)});
  EXPECT_EQ(parse_tcp(bytes(runs), runs.size(), h), drop_reason::tcp_bad_options);
  const std::string wrong = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .options = std::string("\x02\x03\x05\x00", 4)});
  EXPECT_EQ(parse_tcp(bytes(wrong), wrong.size(), h), drop_reason::tcp_bad_options);
  // Unknown options are skipped by their length.
  const std::string unknown = fr::tcp(1, 2, 1, 2, "", {.flags = 0x10, .options = std::string("\x22\x04\xaa\xbb", 4) +
                                                                                    fr::tcp_option_mss(1000)});
  ASSERT_EQ(parse_tcp(bytes(unknown), unknown.size(), h), drop_reason::none);
  EXPECT_EQ(h.opt.mss, 1000);
}

TEST(tcp_header, written_headers_read_back_through_an_independent_decoder) {
  tcp_header h;
  h.src_port = 5555;
  h.dst_port = 80;
  h.seq = 0x80000001;
  h.ack = 42;
  h.flags = tcp_ack | tcp_psh;
  h.window = 999;
  const sack_block blocks[4] = {{10, 20}, {30, 40}, {50, 60}, {70, 80}};
  tcp_out_options o;
  o.timestamps = true;
  o.ts_val = 123;
  o.ts_ecr = 456;
  o.sack_count = 4;
  o.sacks = blocks;
  EXPECT_EQ(tcp_options_len(o), 40u) << "timestamps leave room for three SACK blocks";
  std::byte buf[64] = {};
  const std::size_t n = write_tcp(buf, h, o);
  ASSERT_EQ(n, 60u);
  std::string seg(reinterpret_cast<const char*>(buf), n);
  // The decoder wants a whole frame: wrap it (checksum not filled: ignored).
  auto d = fr::decode(fr::ethernet({}, {}, 0x0800, fr::ipv4(1, 2, 6, seg)));
  EXPECT_EQ(d.sport, 5555);
  EXPECT_EQ(d.seq, 0x80000001u);
  EXPECT_EQ(d.ack, 42u);
  EXPECT_EQ(d.flags, tcp_ack | tcp_psh);
  EXPECT_EQ(d.window, 999);
  ASSERT_TRUE(d.timestamps);
  EXPECT_EQ(d.timestamps->first, 123u);
  EXPECT_EQ(d.timestamps->second, 456u);
  ASSERT_EQ(d.sacks.size(), 3u);
  EXPECT_EQ(d.sacks[2], std::make_pair(50u, 60u));

  tcp_out_options syn;
  syn.mss = 1460;
  syn.wscale = 3;
  syn.sack_permitted = true;
  syn.timestamps = true;
  std::byte sbuf[64] = {};
  const std::size_t sn = write_tcp(sbuf, h, syn);
  auto sd = fr::decode(fr::ethernet({}, {}, 0x0800, fr::ipv4(1, 2, 6, std::string(reinterpret_cast<char*>(sbuf), sn))));
  EXPECT_EQ(sd.mss, 1460);
  EXPECT_EQ(sd.wscale, 3);
  EXPECT_TRUE(sd.sack_permitted);
  EXPECT_TRUE(sd.timestamps);
}

TEST(tcp_seq, comparisons_hold_across_the_wrap) {
  EXPECT_TRUE(seq_lt(0xffffff00u, 0x100u));
  EXPECT_TRUE(seq_gt(0x100u, 0xffffff00u));
  EXPECT_TRUE(seq_in(0u, 0xfffffff0u, 0x10u));
  EXPECT_FALSE(seq_in(0x10u, 0xfffffff0u, 0x10u));
  EXPECT_EQ(seq_max(0xfffffffeu, 3u), 3u);
  EXPECT_EQ(seq_min(0xfffffffeu, 3u), 0xfffffffeu);
}

TEST(siphash, matches_the_reference_vector) {
  // The paper's appendix A: key 00..0f, message 00..0e.
  siphash_key k;
  unsigned char key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<unsigned char>(i);
  std::memcpy(&k.k0, key, 8);
  std::memcpy(&k.k1, key + 8, 8);
  unsigned char msg[15];
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(siphash24(k, msg, sizeof msg), 0xa129ca6149be45e5ull);
  // Keyed: another key, another value.
  siphash_key other{k.k0 ^ 1, k.k1};
  EXPECT_NE(siphash24(other, msg, sizeof msg), 0xa129ca6149be45e5ull);
}

TEST(flow_steering, toeplitz_matches_the_rss_verification_table) {
  // Microsoft's "Verifying the RSS Hash Calculation" (IPv4, TCP ports):
  // source address and port first, as a NIC hashes a received packet.
  flow_steering s(4);
  struct vec {
    const char *src, *dst;
    std::uint16_t sport, dport;
    std::uint32_t ip_only, with_ports;
  };
  const vec table[] = {
      {"66.9.149.187", "161.142.100.80", 2794, 1766, 0x323e8fc2, 0x51ccc178},
      {"199.92.111.2", "65.69.140.83", 14230, 4739, 0xd718262a, 0xc626b0ea},
      {"24.19.198.95", "12.22.207.184", 12898, 38024, 0xd2d0a5de, 0x5c2b394a},
      {"38.27.205.30", "209.142.163.6", 48228, 2217, 0x82989176, 0xafc7327f},
      {"153.39.163.191", "202.188.127.2", 44251, 1303, 0x5d1809c5, 0x10e828a2},
  };
  for (const vec& v : table) {
    EXPECT_EQ(s.hash(fr::ip(v.src), fr::ip(v.dst)), v.ip_only) << v.src;
    EXPECT_EQ(s.hash(fr::ip(v.src), fr::ip(v.dst), v.sport, v.dport), v.with_ports) << v.src;
  }
}

TEST(flow_steering, toeplitz_matches_the_rss_verification_table_for_ipv6) {
  // The same table's IPv6 rows: the 36-byte input (16-byte addresses, then
  // ports), source first; and the 32-byte address-only input.
  flow_steering s(4);
  struct vec {
    const char *src, *dst;
    std::uint16_t sport, dport;
    std::uint32_t ip_only, with_ports;
  };
  const vec table[] = {
      {"3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766, 0x2cc18cd5, 0x40207d3d},
      {"3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739, 0x0f0c461c, 0xdde51bbf},
      {"3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf", 44251, 38024, 0x4b61e985, 0x02d1feef},
  };
  for (const vec& v : table) {
    const ip_address src = *ip_address::parse(v.src), dst = *ip_address::parse(v.dst);
    EXPECT_EQ(s.hash6(src, dst), v.ip_only) << v.src;
    EXPECT_EQ(s.hash6(src, dst, v.sport, v.dport), v.with_ports) << v.src;
    EXPECT_EQ(s.hash(src, dst, v.sport, v.dport), v.with_ports) << "the family dispatch: " << v.src;
  }
  // A mapped IPv4 pair is hashed as IPv4 (the 12-byte input), so a flow's
  // owner is the same whichever type carries its addresses.
  const ip_address a4 = *ip_address::parse("66.9.149.187"), b4 = *ip_address::parse("161.142.100.80");
  EXPECT_EQ(s.hash(a4, b4, 2794, 1766), 0x51ccc178u);
  EXPECT_EQ(s.owner(a4, b4, 2794, 1766), s.owner(fr::ip("66.9.149.187"), fr::ip("161.142.100.80"), 2794, 1766));
}

TEST(flow_steering, ipv6_flows_spread_over_every_loop) {
  flow_steering s(3);
  const ip_address peer = *ip_address::parse("fd00::1"), us = *ip_address::parse("fd00::2");
  int owned[3] = {};
  for (std::uint16_t p = 49152; p < 49152 + 3000; ++p) ++owned[s.owner(peer, us, 80, p)];
  for (int n : owned) EXPECT_GT(n, 700) << "RETA entries i % 3: roughly a third each";
  EXPECT_EQ(flow_steering(1).owner(peer, us, 80, 1234), 0u);
}

TEST(flow_steering, every_loop_owns_a_share_and_a_port_can_be_picked_for_each) {
  flow_steering s(3);
  const std::uint32_t peer = fr::ip("10.0.0.1"), us = fr::ip("10.0.0.2");
  int owned[3] = {};
  for (std::uint16_t p = 49152; p < 49152 + 3000; ++p) ++owned[s.owner(peer, us, 80, p)];
  for (int n : owned) EXPECT_GT(n, 700) << "RETA entries i % 3: roughly a third each";
  EXPECT_EQ(flow_steering(1).owner(peer, us, 80, 1234), 0u);
}

TEST(rtt_estimator, follows_rfc_6298) {
  rtt_estimator r(1s, 200ms, 60s, 1ms);
  EXPECT_EQ(r.rto(), 1s) << "before any sample";
  r.sample(100ms);
  EXPECT_EQ(r.srtt(), 100ms);
  EXPECT_EQ(r.rttvar(), 50ms);
  EXPECT_EQ(r.rto(), 300ms) << "SRTT + 4 RTTVAR";
  r.sample(200ms);
  // RTTVAR = 3/4 50 + 1/4 |100 - 200| = 62.5; SRTT = 7/8 100 + 1/8 200 = 112.5
  EXPECT_EQ(r.rttvar(), 62500us);
  EXPECT_EQ(r.srtt(), 112500us);
  EXPECT_EQ(r.rto(), 362500us);
  r.back_off();
  EXPECT_EQ(r.rto(), 725ms);
  for (int i = 0; i < 10; ++i) r.back_off();
  EXPECT_EQ(r.rto(), 60s) << "capped";
  for (int i = 0; i < 20; ++i) r.sample(1ms);
  EXPECT_EQ(r.rto(), 200ms) << "floored";
}

TEST(congestion_control, newreno_slow_start_avoidance_loss_and_timeout) {
  const std::uint32_t mss = 1000;
  congestion_control cc(congestion_algorithm::newreno, mss);
  EXPECT_EQ(cc.cwnd(), 10 * mss) << "RFC 6928's initial window";
  const time_point t0{};
  cc.on_ack(mss, true, t0, 10ms);
  EXPECT_EQ(cc.cwnd(), 11 * mss);
  cc.on_ack(5 * mss, true, t0, 10ms);
  EXPECT_EQ(cc.cwnd(), 13 * mss) << "at most two segments per ACK (RFC 3465 L=2)";
  cc.on_ack(mss, false, t0, 10ms);
  EXPECT_EQ(cc.cwnd(), 13 * mss) << "no growth while application-limited";
  cc.on_loss(12 * mss, t0);
  EXPECT_EQ(cc.ssthresh(), 6 * mss) << "half the flight";
  EXPECT_EQ(cc.cwnd(), 6 * mss);
  // Avoidance: one segment per window acknowledged.
  for (int i = 0; i < 6; ++i) cc.on_ack(mss, true, t0, 10ms);
  EXPECT_EQ(cc.cwnd(), 7 * mss);
  cc.on_timeout(7 * mss, t0);
  EXPECT_EQ(cc.cwnd(), mss);
  EXPECT_EQ(cc.ssthresh(), 3500u);
}

TEST(congestion_control, cubic_reduces_by_beta_and_climbs_back_along_the_curve) {
  const std::uint32_t mss = 1000;
  congestion_control cc(congestion_algorithm::cubic, mss);
  time_point t{};
  // A 100 ms path: long enough that CUBIC's curve, not its Reno-friendly
  // estimate, sets the window.
  for (int i = 0; i < 90; ++i) cc.on_ack(mss, true, t, 100ms);  // slow start to 100 segments
  ASSERT_EQ(cc.cwnd(), 100 * mss);
  cc.on_loss(100 * mss, t);
  EXPECT_EQ(cc.cwnd(), 70 * mss) << "beta_cubic 0.7";
  EXPECT_DOUBLE_EQ(cc.cubic_w_max(), 100.0);
  // Avoidance: the first ACK starts the epoch; K = cbrt(30 / 0.4) ~ 4.2 s.
  cc.on_ack(mss, true, t, 100ms);
  EXPECT_NEAR(cc.cubic_k(), std::cbrt(30.0 / 0.4), 1e-9);
  // Well before K the window grows, but stays below W_max; near K it is
  // about W_max; after K it grows beyond (convex region).
  const auto run_for = [&](duration d) {
    const time_point end = t + d;
    while (t < end) {
      t += 100ms;
      for (std::uint32_t i = 0, n = cc.cwnd() / mss; i < n; ++i) cc.on_ack(mss, true, t, 100ms);
    }
  };
  run_for(2s);
  EXPECT_GT(cc.cwnd(), 70 * mss);
  EXPECT_LT(cc.cwnd(), 100 * mss);
  run_for(2200ms);
  EXPECT_NEAR(static_cast<double>(cc.cwnd()) / mss, 100.0, 3.0) << "the plateau at W_max";
  run_for(3s);
  EXPECT_GT(cc.cwnd(), 105 * mss) << "probing beyond W_max";
  // Fast convergence: a loss below the old W_max remembers less of it.
  const double before = static_cast<double>(cc.cwnd()) / mss;
  cc.on_loss(cc.cwnd(), t);
  EXPECT_NEAR(cc.cubic_w_max(), before, 1e-6);
  cc.set_window(50 * mss);
  cc.on_loss(50 * mss, t);
  EXPECT_NEAR(cc.cubic_w_max(), 50.0 * 1.7 / 2, 1e-6);
}

// Packets for the queue tests: fresh buffers of a memory wire.
struct buffers {
  std::vector<std::unique_ptr<packet>> own;
  std::vector<std::unique_ptr<std::byte[]>> mem;
  static void release(segment*) noexcept {}
  packet* make(std::uint32_t len) {
    own.push_back(std::make_unique<packet>());
    mem.push_back(std::make_unique<std::byte[]>(2048));
    packet* p = own.back().get();
    p->reset(mem.back().get(), 2048, 0, &release, nullptr);
    p->seg.end = len;
    return p;
  }
};

TEST(tcp_reorder_queue, keeps_order_trims_overlaps_and_reports_sack_blocks) {
  buffers b;
  tcp_reorder_queue q;
  const std::uint32_t base = 0xfffffc00;  // wraps inside the test
  EXPECT_EQ(q.insert(b.make(100), base + 1000, 1 << 20), tcp_reorder_queue::insert_result::stored);
  EXPECT_EQ(q.insert(b.make(100), base + 1200, 1 << 20), tcp_reorder_queue::insert_result::stored);
  EXPECT_EQ(q.insert(b.make(100), base + 1050, 1 << 20), tcp_reorder_queue::insert_result::stored)
      << "overlaps [1000,1100): its front is cut";
  EXPECT_EQ(q.bytes(), 250u);
  EXPECT_EQ(q.insert(b.make(50), base + 1010, 1 << 20), tcp_reorder_queue::insert_result::duplicate);
  sack_block s[4];
  ASSERT_EQ(q.sack_blocks(s, 4), 2u);
  EXPECT_EQ(s[0].left, base + 1000) << "the block of the latest arrival first";
  EXPECT_EQ(s[0].right, base + 1150);
  EXPECT_EQ(s[1].left, base + 1200);
  std::uint32_t seq = 0;
  EXPECT_EQ(q.pop_ready(base + 999, &seq), nullptr) << "a gap remains";
  packet* p = q.pop_ready(base + 1000, &seq);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(seq, base + 1000);
  EXPECT_EQ(p->size(), 100u);
  p = q.pop_ready(base + 1100, &seq);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(seq, base + 1100);
  EXPECT_EQ(p->size(), 50u) << "the trimmed piece";
  EXPECT_EQ(q.pop_ready(base + 1150, &seq), nullptr);
  // A segment covering everything supersedes what it covers.
  EXPECT_EQ(q.insert(b.make(400), base + 1150, 1 << 20), tcp_reorder_queue::insert_result::stored);
  EXPECT_EQ(q.segments(), 1u);
  // The memory limit counts buffer capacity.
  EXPECT_EQ(q.insert(b.make(10), base + 2000, 3000), tcp_reorder_queue::insert_result::no_room);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST(sack_scoreboard, merges_blocks_finds_holes_and_forgets_what_is_acked) {
  sack_scoreboard sb;
  const std::uint32_t una = 0xfffffff0;
  const sack_block a[] = {{una + 100, una + 200}, {una + 300, una + 400}};
  sb.update(a, 2, una, una + 1000);
  EXPECT_EQ(sb.sacked_bytes(), 200u);
  EXPECT_EQ(sb.high(), una + 400);
  std::uint32_t hs = 0, hl = 0;
  ASSERT_TRUE(sb.next_hole(una, &hs, &hl));
  EXPECT_EQ(hs, una);
  EXPECT_EQ(hl, 100u);
  ASSERT_TRUE(sb.next_hole(una + 150, &hs, &hl));
  EXPECT_EQ(hs, una + 200);
  EXPECT_EQ(hl, 100u);
  EXPECT_FALSE(sb.next_hole(una + 400, &hs, &hl)) << "nothing known above the highest SACK";
  EXPECT_EQ(sb.hole_bytes(una, una + 400), 200u);
  const sack_block join[] = {{una + 200, una + 300}, {una + 5000, una + 6000}};
  sb.update(join, 2, una, una + 1000);
  EXPECT_EQ(sb.ranges(), 1u) << "joined; the block beyond SND.MAX is ignored";
  EXPECT_TRUE(sb.contains(una + 250));
  sb.update(nullptr, 0, una + 250, una + 1000);
  EXPECT_EQ(sb.sacked_bytes(), 150u);
  sb.update(nullptr, 0, una + 400, una + 1000);
  EXPECT_TRUE(sb.empty());
}

}  // namespace
}  // namespace sluice::inet
