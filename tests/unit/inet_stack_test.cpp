// The user-space stack in a real loop (loop<memory_transport>) on a manual
// clock, with the test playing the kernel on the other end of a memory wire:
// ARP both ways (announcement, requests, replies, retries, expiry, what
// waits meanwhile), ICMP echo, UDP sockets with sluice-echo's handler (zero
// copy: the reply leaves in the request's buffer), fragments both ways,
// malformed frames as counted drops while the stack keeps serving, two
// stacks over an impaired wire, and ARP knowledge shared between loops.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "echo_handlers.hpp"
#include "frames.hpp"
#include "stack_fixture.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/mail_hub.hpp"
#include "sluice/memory/memory_port.hpp"
#include "sluice/memory/memory_transport.hpp"

namespace sluice::inet {
namespace {

using namespace std::chrono_literals;
namespace fr = test::frames;
using memory::memory_port;
using memory::memory_transport;
using memory::memory_wire;
using stack_loop = loop<memory_transport>;

const std::uint32_t our_ip = fr::ip("10.0.0.2");
const std::uint32_t peer_ip = fr::ip("10.0.0.1");
const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x11}};

inet_transport_options transport_options(std::string_view ip = "10.0.0.2/24", std::string_view gw = "") {
  inet_transport_options o;
  o.stack.iface = interface_config::parse(ip, gw).value();
  o.transport_name = "memory";
  return o;
}

using recorder = test::datagram_recorder;

struct stack_test : ::testing::Test, test::memory_stack {
  echo_app::udp_echo_handler echo;

  void make(memory_wire::options wo = {}, inet_transport_options to = transport_options()) { make_stack(to, wo); }
  void SetUp() override { make(); }
  void TearDown() override { end_stack(); }
  // What the stack sent over IPv4 and ARP (its IPv6 chatter, duplicate
  // address detection and MLD reports, read and left aside).
  std::vector<std::string> out() {
    auto v = fr::receive_all(*peer_port);
    std::erase_if(v, [](const std::string& f) {
      return f.size() >= 14 && static_cast<unsigned char>(f[12]) == 0x86 && static_cast<unsigned char>(f[13]) == 0xdd;
    });
    return v;
  }
  void in(const std::string& frame) { ASSERT_TRUE(fr::send(*peer_port, frame)); }
  // Starts the stack (its announcement) and teaches it the peer's MAC by an
  // ARP request from the peer, as a kernel would send before its first datagram.
  void introduce() {
    step();
    (void)out();
    in(fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806,
                    fr::arp(1, peer_mac, peer_ip, mac_address{}, our_ip)));
    step();
    auto replies = out();
    ASSERT_EQ(replies.size(), 1u);
  }
  udp_socket* bind_echo(std::uint16_t port) {
    auto r = l->udp_bind(endpoint::ipv4(0, port), echo);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? *r : nullptr;
  }
  std::string udp_in(std::uint16_t sport, std::uint16_t dport, std::string_view payload) {
    return fr::udp_frame(our_mac(), peer_mac, peer_ip, our_ip, sport, dport, payload);
  }
};

TEST_F(stack_test, announces_its_address_with_a_gratuitous_arp_at_start) {
  step();
  auto f = out();
  // Besides IPv6's duplicate address detection (inet_stack6_test).
  std::erase_if(f, [](const std::string& frame) { return fr::decode(frame).type == 0x86dd; });
  ASSERT_EQ(f.size(), 1u);
  auto d = fr::decode(f[0]);
  EXPECT_TRUE(d.dst.is_broadcast());
  EXPECT_EQ(d.type, 0x0806);
  EXPECT_EQ(d.arp_op, 1);
  EXPECT_EQ(d.arp_sender_mac, our_mac());
  EXPECT_EQ(d.arp_sender_ip, our_ip);
  EXPECT_EQ(d.arp_target_ip, our_ip);
  step(3);
  EXPECT_TRUE(out().empty()) << "once";
}

TEST_F(stack_test, answers_arp_requests_for_its_address_and_only_those) {
  step();
  (void)out();
  in(fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806, fr::arp(1, peer_mac, peer_ip, mac_address{}, our_ip)));
  in(fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806,
                  fr::arp(1, peer_mac, peer_ip, mac_address{}, fr::ip("10.0.0.3"))));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  auto d = fr::decode(f[0]);
  EXPECT_EQ(d.dst, peer_mac);
  EXPECT_EQ(d.src, our_mac());
  EXPECT_EQ(d.arp_op, 2);
  EXPECT_EQ(d.arp_sender_mac, our_mac());
  EXPECT_EQ(d.arp_sender_ip, our_ip);
  EXPECT_EQ(d.arp_target_mac, peer_mac);
  EXPECT_EQ(d.arp_target_ip, peer_ip);
  EXPECT_EQ(stats().dropped(drop_reason::arp_not_for_us), 1u);
  EXPECT_EQ(stats().tx_in_place.get(), 1u) << "the reply reused the request's buffer";
  // It learned the asker: a datagram to it needs no request of its own.
  EXPECT_NE(st().arp().lookup(peer_ip, l->now()), nullptr);
}

TEST_F(stack_test, answers_pings_byte_for_byte_and_ignores_bad_or_broadcast_ones) {
  introduce();
  const std::string data = "0123456789abcdefghijklmnopqrstuvwxyz";
  in(fr::ethernet(our_mac(), peer_mac, 0x0800, fr::ipv4(peer_ip, our_ip, 1, fr::icmp(8, 0, 0x77, 3, data))));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  auto d = fr::decode(f[0]);
  EXPECT_EQ(d.dst, peer_mac);
  EXPECT_EQ(d.src_ip, our_ip);
  EXPECT_EQ(d.dst_ip, peer_ip);
  EXPECT_TRUE(d.ip_checksum_ok);
  EXPECT_EQ(d.ttl, 64);
  EXPECT_EQ(d.icmp_type, 0);
  EXPECT_EQ(d.icmp_id, 0x77);
  EXPECT_EQ(d.icmp_seq, 3);
  EXPECT_TRUE(d.l4_checksum_ok);
  EXPECT_EQ(d.payload, data);

  in(fr::ethernet(our_mac(), peer_mac, 0x0800, fr::ipv4(peer_ip, our_ip, 1, fr::icmp(8, 0, 1, 1, data, true))));
  in(fr::ethernet(mac_address::broadcast(), peer_mac, 0x0800,
                  fr::ipv4(peer_ip, fr::ip("10.0.0.255"), 1, fr::icmp(8, 0, 1, 1, data))));
  in(fr::ethernet(our_mac(), peer_mac, 0x0800, fr::ipv4(peer_ip, our_ip, 1, fr::icmp(0, 0, 1, 1, data))));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::icmp_bad_checksum), 1u);
  EXPECT_EQ(stats().dropped(drop_reason::icmp_ignored), 2u);
  EXPECT_EQ(stats().icmp_echo_replies.get(), 1u);
}

TEST_F(stack_test, echoes_udp_in_the_buffer_it_came_in) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(5000, 7, "hello, stack"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  auto d = fr::decode(f[0]);
  EXPECT_EQ(d.dst, peer_mac);
  EXPECT_EQ(d.src, our_mac());
  EXPECT_TRUE(d.ip_checksum_ok);
  EXPECT_TRUE(d.l4_checksum_ok);
  EXPECT_EQ(d.sport, 7);
  EXPECT_EQ(d.dport, 5000);
  EXPECT_EQ(d.payload, "hello, stack");
  EXPECT_EQ(stats().tx_in_place.get(), 2u) << "the ARP reply and the echo, no copy";
  EXPECT_EQ(stats().tx_copied.get(), 0u);
  EXPECT_EQ(l->stats().datagrams_in.get(), 1u);
  EXPECT_EQ(l->stats().datagrams_out.get(), 1u);
}

TEST_F(stack_test, a_reply_to_an_unknown_neighbour_waits_for_arp_and_then_goes) {
  step();
  (void)out();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(5000, 7, "first"));
  in(udp_in(5001, 7, "second"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u) << "one request, both replies held";
  auto req = fr::decode(f[0]);
  EXPECT_EQ(req.arp_op, 1);
  EXPECT_TRUE(req.dst.is_broadcast());
  EXPECT_EQ(req.arp_target_ip, peer_ip);
  EXPECT_EQ(st().arp().pending(), 2u);
  in(fr::ethernet(our_mac(), peer_mac, 0x0806, fr::arp(2, peer_mac, peer_ip, our_mac(), our_ip)));
  step();
  f = out();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(fr::decode(f[0]).payload, "first");
  EXPECT_EQ(fr::decode(f[1]).payload, "second");
  EXPECT_EQ(fr::decode(f[1]).dst, peer_mac);
}

TEST_F(stack_test, arp_requests_are_retried_then_what_waited_is_dropped) {
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(endpoint::ipv4(0, 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(endpoint::ipv4(fr::ip("10.0.0.50"), 99), "anyone?"));
  step();
  EXPECT_EQ(out().size(), 1u);
  for (int i = 0; i < 2; ++i) {
    clock.advance(1s);
    step();
    auto f = out();
    ASSERT_EQ(f.size(), 1u) << "retry " << i;
    EXPECT_EQ(fr::decode(f[0]).arp_target_ip, fr::ip("10.0.0.50"));
  }
  clock.advance(1s);
  step();
  EXPECT_TRUE(out().empty()) << "three requests, then it gives up";
  EXPECT_EQ(stats().dropped(drop_reason::arp_unresolved), 1u);
  EXPECT_EQ(st().arp().pending(), 0u);
}

TEST_F(stack_test, a_neighbour_is_asked_again_once_its_entry_is_stale) {
  memory_wire::options wo;
  auto to = transport_options();
  to.stack.arp.reachable_time = 5s;
  make(wo, to);
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(1, 7, "a"));
  step();
  EXPECT_EQ(out().size(), 1u);
  clock.advance(6s);
  in(udp_in(1, 7, "b"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(fr::decode(f[0]).arp_op, 1) << "the echo waits for a fresh answer";
  EXPECT_EQ(stats().arp_expired.get(), 1u);
}

// Issue 20 item 3, through the stack: a forged reply (another MAC claiming
// the live peer's address) redirected the peer's traffic for 60 s. Now the
// echo keeps going to the real MAC, the real MAC is probed by unicast, and
// its answer ends the matter.
TEST_F(stack_test, regression_a_forged_arp_reply_does_not_redirect_a_live_neighbour) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  const mac_address forger{{0x02, 0, 0, 0, 0, 0x66}};
  in(fr::ethernet(our_mac(), forger, 0x0806, fr::arp(2, forger, peer_ip, our_mac(), our_ip)));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u) << "a probe of the known MAC";
  auto probe = fr::decode(f[0]);
  EXPECT_EQ(probe.arp_op, 1);
  EXPECT_EQ(probe.dst, peer_mac) << "unicast to the MAC we know";
  EXPECT_EQ(probe.arp_target_ip, peer_ip);
  EXPECT_EQ(stats().arp_conflicts.get(), 1u);
  in(udp_in(5000, 7, "still you?"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(fr::decode(f[0]).dst, peer_mac) << "the echo is not redirected";
  // The real peer answers the probe.
  in(fr::ethernet(our_mac(), peer_mac, 0x0806, fr::arp(2, peer_mac, peer_ip, our_mac(), our_ip)));
  step();
  EXPECT_EQ(stats().arp_confirmed.get(), 1u);
  clock.advance(5s);
  step(2);
  EXPECT_TRUE(out().empty()) << "no more probes once confirmed";
  in(udp_in(5000, 7, "and now?"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(fr::decode(f[0]).dst, peer_mac);
  EXPECT_EQ(stats().arp_reassigned.get(), 0u);
}

// Issue 20 item 3: requests from 2004 senders off our subnet were learned
// into a 256-slot cache. Only on-subnet senders (or the gateway) count.
TEST_F(stack_test, regression_arp_from_off_subnet_senders_is_not_learned) {
  introduce();
  for (std::uint32_t i = 0; i < 300; ++i) {
    const std::uint32_t sender = fr::ip("192.168.0.0") + i;
    const mac_address m{{0x02, 1, 0, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)}};
    in(fr::ethernet(mac_address::broadcast(), m, 0x0806, fr::arp(1, m, sender, mac_address{}, our_ip)));
    if (i % 32 == 31) step();
  }
  step();
  EXPECT_TRUE(out().empty()) << "not answered either";
  EXPECT_EQ(stats().dropped(drop_reason::arp_off_subnet), 300u);
  EXPECT_EQ(st().arp().reachable(l->now()), 1u) << "the peer only";
}

// Issue 20 item 4, through the stack: answers to 100 sources on the link
// that never answer ARP (a flood with forged sources) filled the shared
// queue, and the first reply to a real new neighbour was dropped.
TEST_F(stack_test, regression_a_flood_of_silent_sources_does_not_keep_a_new_neighbours_reply_out) {
  step();
  (void)out();
  ASSERT_NE(bind_echo(7), nullptr);
  for (std::uint32_t i = 0; i < 100; ++i) {
    const std::uint32_t src = fr::ip("10.0.0.100") + i;
    in(fr::udp_frame(our_mac(), peer_mac, src, our_ip, 1000, 7, "flood"));
    if (i % 32 == 31) step();
  }
  step();
  (void)out();
  EXPECT_EQ(st().arp().pending(), arp_options{}.max_pending) << "the queue is full of the flood's answers";
  clock.advance(1ms);
  step();
  in(udp_in(5000, 7, "real"));
  step();
  (void)out();  // the request for the peer (among the flood's retries)
  in(fr::ethernet(our_mac(), peer_mac, 0x0806, fr::arp(2, peer_mac, peer_ip, our_mac(), our_ip)));
  step();
  bool echoed = false;
  for (const auto& frame : out()) {
    auto d = fr::decode(frame);
    if (d.type == 0x0800 && d.payload == "real" && d.dst == peer_mac) echoed = true;
  }
  EXPECT_TRUE(echoed) << "the new neighbour's reply waited and went";
  EXPECT_GE(stats().arp_pending_evicted.get(), 1u);
  // The flood's answers are dropped when their sources stay silent.
  for (int s = 0; s < 4; ++s) {
    clock.advance(1s);
    step(2);
  }
  (void)out();
  EXPECT_EQ(st().arp().pending(), 0u);
}

TEST_F(stack_test, off_link_destinations_go_through_the_gateway) {
  memory_wire::options wo;
  make(wo, transport_options("10.0.0.2/24", "10.0.0.1"));
  introduce();  // the peer is the gateway
  recorder rec;
  auto s = l->udp_bind(endpoint::ipv4(0, 0), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(endpoint::ipv4(fr::ip("192.0.2.7"), 53), "far away"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  auto d = fr::decode(f[0]);
  EXPECT_EQ(d.dst, peer_mac) << "to the gateway's MAC";
  EXPECT_EQ(d.dst_ip, fr::ip("192.0.2.7"));
  EXPECT_EQ(d.payload, "far away");
  EXPECT_EQ(stats().tx_copied.get(), 1u);
}

TEST_F(stack_test, a_datagram_too_big_for_ipv4_is_a_counted_drop) {
  introduce();
  recorder rec;
  auto s = l->udp_bind(endpoint::ipv4(0, 0), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(endpoint::ipv4(peer_ip, 9), std::string(65508, 'x')));
  ASSERT_TRUE((*s)->send_to(endpoint::ipv4(peer_ip, 9), std::string(65507, 'y')));
  step();
  EXPECT_EQ(stats().dropped(drop_reason::too_big), 1u);
  auto f = out();
  EXPECT_EQ(f.size(), 45u) << "the largest UDP datagram, in 1480-byte fragments";
  EXPECT_EQ(l->stats().datagrams_dropped.get(), 1u);
}

TEST_F(stack_test, without_a_gateway_off_link_is_a_counted_drop) {
  introduce();
  recorder rec;
  auto s = l->udp_bind(endpoint::ipv4(0, 0), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(endpoint::ipv4(fr::ip("192.0.2.7"), 53), "x"));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::no_route), 1u);
}

TEST_F(stack_test, fragmented_datagrams_are_reassembled_and_echoed_fragmented) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  std::string payload(5000, '\0');
  std::mt19937 rng(11);
  for (auto& c : payload) c = static_cast<char>(rng());
  const std::string l4 = fr::udp(peer_ip, our_ip, 4242, 7, payload);
  std::vector<std::string> pieces;
  for (std::size_t off = 0; off < l4.size(); off += 1480) {
    const std::size_t n = std::min<std::size_t>(1480, l4.size() - off);
    pieces.push_back(fr::ethernet(our_mac(), peer_mac, 0x0800,
                                  fr::ipv4(peer_ip, our_ip, 17, l4.substr(off, n),
                                           {.id = 99, .fragment_offset = static_cast<std::uint16_t>(off),
                                            .more_fragments = off + n < l4.size()})));
  }
  std::shuffle(pieces.begin(), pieces.end(), rng);
  for (const auto& p : pieces) in(p);
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 4u) << "5008 bytes of UDP in 1480-byte fragments";
  // Put the answer together the way the kernel would.
  std::map<std::uint16_t, std::string> by_offset;
  std::uint16_t id = 0;
  for (const auto& frame : f) {
    auto d = fr::decode(frame);
    EXPECT_TRUE(d.ip_checksum_ok);
    EXPECT_EQ(d.dst, peer_mac);
    id = d.ip_id;
    by_offset[d.fragment_offset] = d.ip_payload;
    EXPECT_EQ(d.more_fragments, d.fragment_offset != 4440);
  }
  std::string back;
  for (auto& [off, bytes] : by_offset) {
    EXPECT_EQ(off, back.size());
    back += bytes;
  }
  ASSERT_EQ(back.size(), 8 + payload.size());
  auto whole = fr::decode(fr::ethernet(peer_mac, our_mac(), 0x0800, fr::ipv4(our_ip, peer_ip, 17, back, {.id = id})));
  EXPECT_TRUE(whole.l4_checksum_ok);
  EXPECT_EQ(whole.payload, payload);
  EXPECT_EQ(stats().reassembled.get(), 1u);
  EXPECT_EQ(stats().fragments_out.get(), 4u);
}

// Issue 20 item 2, through the stack: 40 junk first fragments (never
// completed, from one forged source on the link) used to hold all 32
// reassembly slots for 10 s; the fragmented echo right after them must work.
TEST_F(stack_test, regression_junk_first_fragments_do_not_stop_a_fragmented_echo) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  const std::string junk(1480, 'j');
  for (std::uint16_t id = 0; id < 40; ++id) {
    in(fr::ethernet(our_mac(), peer_mac, 0x0800,
                    fr::ipv4(fr::ip("10.0.0.66"), our_ip, 17, junk, {.id = static_cast<std::uint16_t>(500 + id),
                                                                       .more_fragments = true})));
    if (id % 16 == 15) step();
  }
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(st().reassembler().in_progress(), 32u);
  const std::string payload(3000, 'r');
  const std::string l4 = fr::udp(peer_ip, our_ip, 4242, 7, payload);
  for (std::size_t off = 0; off < l4.size(); off += 1480) {
    const std::size_t n = std::min<std::size_t>(1480, l4.size() - off);
    in(fr::ethernet(our_mac(), peer_mac, 0x0800,
                    fr::ipv4(peer_ip, our_ip, 17, l4.substr(off, n),
                             {.id = 99, .fragment_offset = static_cast<std::uint16_t>(off),
                              .more_fragments = off + n < l4.size()})));
  }
  clock.advance(1ms);
  step();
  EXPECT_EQ(out().size(), 3u) << "the echo, fragmented again";
  EXPECT_EQ(stats().reassembled.get(), 1u);
  EXPECT_EQ(stats().frag_evictions.get(), 9u) << "8 junk beyond the table, and one for the echo";
  EXPECT_EQ(stats().dropped(drop_reason::frag_evicted), 9u);
  EXPECT_EQ(stats().dropped(drop_reason::frag_table_full), 0u);
  // The junk times out; nothing is leaked (TearDown counts the buffers).
  clock.advance(11s);
  step(2);
  EXPECT_EQ(st().reassembler().in_progress(), 0u);
}

TEST_F(stack_test, a_big_ping_is_reassembled_and_answered) {
  introduce();
  std::string data(3000, 'p');
  const std::string l4 = fr::icmp(8, 0, 5, 6, data);
  for (std::size_t off = 0; off < l4.size(); off += 1480) {
    const std::size_t n = std::min<std::size_t>(1480, l4.size() - off);
    in(fr::ethernet(our_mac(), peer_mac, 0x0800,
                    fr::ipv4(peer_ip, our_ip, 1, l4.substr(off, n),
                             {.id = 3, .fragment_offset = static_cast<std::uint16_t>(off), .more_fragments = off + n < l4.size()})));
  }
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 3u);
  std::string back;
  for (const auto& frame : f) back += fr::decode(frame).ip_payload;
  EXPECT_EQ(back.size(), l4.size());
  EXPECT_EQ(back[0], 0) << "an echo reply";
  EXPECT_EQ(fr::checksum(back), 0);
  EXPECT_EQ(back.substr(8), data);
}

TEST_F(stack_test, malformed_frames_are_counted_drops_and_the_stack_keeps_serving) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  const mac_address us = our_mac();
  auto ip_frame = [&](std::string ip) { return fr::ethernet(us, peer_mac, 0x0800, std::move(ip)); };
  const std::string good_udp = fr::udp(peer_ip, our_ip, 1, 7, "x");
  struct bad {
    std::string frame;
    drop_reason why;
  };
  std::vector<bad> cases = {
      {std::string(10, 'x'), drop_reason::eth_truncated},
      {fr::ethernet(mac_address{{2, 9, 9, 9, 9, 9}}, peer_mac, 0x0800, ""), drop_reason::eth_not_for_us},
      {fr::ethernet(mac_address{{1, 0, 0x5e, 0, 0, 1}}, peer_mac, 0x0800, ""), drop_reason::eth_not_for_us},
      {fr::ethernet(us, peer_mac, 0x88cc, std::string(40, 0)), drop_reason::eth_unsupported_type},
      {fr::ethernet(us, peer_mac, 0x86dd, std::string(40, 0)), drop_reason::ipv6_bad_version},
      {fr::ethernet(us, peer_mac, 0x0806, std::string(20, 1)), drop_reason::arp_truncated},
      {fr::ethernet(us, peer_mac, 0x0806, std::string(28, 1)), drop_reason::arp_bad_format},
      {fr::ethernet(us, peer_mac, 0x0806, fr::arp(7, peer_mac, peer_ip, mac_address{}, our_ip)), drop_reason::arp_bad_op},
      {fr::ethernet(us, peer_mac, 0x0806, fr::arp(1, mac_address::broadcast(), peer_ip, mac_address{}, our_ip)),
       drop_reason::arp_bad_sender},
      {fr::ethernet(us, peer_mac, 0x0806, fr::arp(1, peer_mac, our_ip, mac_address{}, our_ip)), drop_reason::arp_conflict},
      {ip_frame(std::string(12, 'x')), drop_reason::ipv4_truncated},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.version = 5})), drop_reason::ipv4_bad_version},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.ihl = 3})), drop_reason::ipv4_bad_header_length},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.total_len = 400})), drop_reason::ipv4_truncated},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.total_len = 10})), drop_reason::ipv4_bad_total_length},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.bad_checksum = true})), drop_reason::ipv4_bad_checksum},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.ttl = 0})), drop_reason::ipv4_ttl_zero},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, good_udp, {.extra_flags = 0x8000})), drop_reason::ipv4_bad_flags},
      {ip_frame(fr::ipv4(fr::ip("224.0.0.1"), our_ip, 17, good_udp)), drop_reason::ipv4_bad_source},
      {ip_frame(fr::ipv4(peer_ip, fr::ip("10.0.0.9"), 17, good_udp)), drop_reason::ipv4_not_for_us},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 47, "gre")), drop_reason::ipv4_unsupported_protocol},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 6, std::string(20, 0))), drop_reason::tcp_bad_offset},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, "short")), drop_reason::udp_truncated},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, fr::udp(peer_ip, our_ip, 1, 7, "x", {.length = 50}))), drop_reason::udp_bad_length},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, fr::udp(peer_ip, our_ip, 1, 7, "x", {.bad_checksum = true}))),
       drop_reason::udp_bad_checksum},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, fr::udp(peer_ip, our_ip, 1, 8, "x"))), drop_reason::udp_no_socket},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 1, "abc")), drop_reason::icmp_truncated},
      {ip_frame(fr::ipv4(peer_ip, our_ip, 17, std::string(12, 'f'), {.more_fragments = true})), drop_reason::frag_bad_length},
  };
  for (const bad& b : cases) {
    const std::uint64_t before = stats().dropped(b.why);
    in(b.frame);
    step();
    EXPECT_EQ(stats().dropped(b.why), before + 1) << to_string(b.why);
    EXPECT_TRUE(out().empty()) << to_string(b.why) << ": nothing is answered";
  }
  // Still serving; options are skipped; a zero UDP checksum means none.
  in(ip_frame(fr::ipv4(peer_ip, our_ip, 17, fr::udp(peer_ip, our_ip, 1, 7, "still here", {.zero_checksum = true}),
                       {.options = std::string("\x01\x01\x01\x00", 4)})));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(fr::decode(f[0]).payload, "still here");
}

TEST_F(stack_test, foreign_binds_and_listens_say_what_is_wrong) {
  struct nop final : handler {
    void on_data(connection&) noexcept override {}
    void on_close(connection&, close_reason r) noexcept override { closed = r; }
    close_reason closed = close_reason::none;
  } h;
  auto v6l = l->listen(endpoint::loopback_v6(80), h);
  ASSERT_FALSE(v6l.ok());
  EXPECT_NE(v6l.err().message.find("cannot listen on [::1]:80: not this interface's address"), std::string::npos)
      << v6l.err().message;
  auto foreign = l->listen(endpoint::ipv4(fr::ip("127.0.0.1"), 80), h);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.err().message.find("not this interface's address (10.0.0.2/24)"), std::string::npos);
  ASSERT_TRUE(l->listen(endpoint::ipv4(0, 80), h).ok());
  auto busy = l->listen(endpoint::ipv4(our_ip, 80), h);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.err().message, "cannot listen on 10.0.0.2:80: Address already in use");
  // An IPv6 destination the stack has no route to fails as unreachable
  // (not refused up front: the connection exists and closes).
  ASSERT_TRUE(l->connect(endpoint::loopback_v6(80), h).ok());
  step();
  EXPECT_EQ(h.closed, close_reason::unreachable);
  (void)out();  // the stack's announcement
  EXPECT_FALSE(l->connect(endpoint::ipv4(0, 80), h).ok()) << "0.0.0.0 is no destination";
  recorder rec;
  auto v6 = l->udp_bind(endpoint::loopback_v6(7), rec);
  ASSERT_FALSE(v6.ok());
  EXPECT_NE(v6.err().message.find("not this interface's IPv6 address"), std::string::npos);
  auto other = l->udp_bind(endpoint::ipv4(fr::ip("127.0.0.1"), 7), rec);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.err().message.find("not this interface's address (10.0.0.2/24)"), std::string::npos);
  ASSERT_TRUE(l->udp_bind(endpoint::ipv4(our_ip, 7), rec).ok());
  auto twice = l->udp_bind(endpoint::ipv4(0, 7), rec);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.err().message.find("already bound"), std::string::npos);
  auto eph = l->udp_bind(endpoint::ipv4(0, 0), rec);
  ASSERT_TRUE(eph.ok());
  EXPECT_GE((*eph)->local().port(), 49152);
}

// Two stacks (two loops, one thread) over a wire that loses, duplicates and
// reorders: every echo that comes back is byte-exact, and the run is the same
// for the same seed.
std::vector<std::string> impaired_exchange(std::uint64_t seed, double loss) {
  manual_clock clock;
  memory_wire::options wo;
  wo.clock = {&clock};
  wo.seed = seed;
  wo.a_to_b = {.loss = loss, .duplicate = 0.05, .reorder = 0.2, .delay = 100us};
  wo.b_to_a = wo.a_to_b;
  memory_wire wire(wo);
  loop_options lo;
  lo.clock = {&clock};
  stack_loop client(lo, 0, std::make_unique<memory_port>(wire, memory_wire::side::a), transport_options("10.0.0.1/24"));
  stack_loop server(lo, 0, std::make_unique<memory_port>(wire, memory_wire::side::b), transport_options("10.0.0.2/24"));
  echo_app::udp_echo_handler echo;
  recorder rec;
  EXPECT_TRUE(server.udp_bind(endpoint::ipv4(0, 7), echo).ok());
  auto s = client.udp_bind(endpoint::ipv4(0, 5555), rec);
  EXPECT_TRUE(s.ok());
  std::set<std::string> sent;
  for (int i = 0; i < 200; ++i) {
    std::string msg = "datagram #" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 50), 'z');
    sent.insert(msg);
    EXPECT_TRUE((*s)->send_to(endpoint::ipv4(our_ip, 7), msg));
    if (i % 16 == 15) {
      client.run_once();
      server.run_once();
      clock.advance(1ms);
    }
  }
  // Long enough for ARP retries (1 s apart) to get through the losses.
  for (int i = 0; i < 5000; ++i) {
    client.run_once();
    server.run_once();
    clock.advance(1ms);
  }
  std::vector<std::string> got;
  for (auto& [from, payload] : rec.got) {
    EXPECT_EQ(from, endpoint::ipv4(our_ip, 7));
    EXPECT_TRUE(sent.count(payload) == 1) << "not byte-exact: " << payload;
    got.push_back(payload);
  }
  return got;
}

TEST(inet_stack_pair, echoes_over_an_impaired_wire_are_exact_and_deterministic) {
  auto first = impaired_exchange(7, 0.05);
  auto again = impaired_exchange(7, 0.05);
  EXPECT_EQ(first, again);
  EXPECT_GT(first.size(), 100u);
  // Without loss (duplicates and reordering only), every datagram comes back.
  auto lossless = impaired_exchange(9, 0.0);
  std::set<std::string> distinct(lossless.begin(), lossless.end());
  EXPECT_EQ(distinct.size(), 200u);
}

// Loop 0 learns a neighbour from the wire; loop 1 (its own port) learns it
// through the mailbox, without asking.
TEST(inet_stack_pair, arp_learned_by_one_loop_is_told_to_the_others) {
  manual_clock clock;
  memory_wire::options wo;
  wo.clock = {&clock};
  memory_wire w0(wo), w1(wo);
  memory_port kernel(w0, memory_wire::side::b);
  mail_hub hub(2);
  stack_group group(2);
  loop_options lo;
  lo.clock = {&clock};
  auto to = transport_options();
  to.stack.group = &group;
  stack_loop l0(lo, 0, std::make_unique<memory_port>(w0, memory_wire::side::a), to);
  to.stack.announce = false;
  stack_loop l1(lo, 1, std::make_unique<memory_port>(w1, memory_wire::side::a), to);
  l0.attach_mail(&hub);
  l1.attach_mail(&hub);
  l0.run_once();
  l1.run_once();
  ASSERT_TRUE(fr::send(kernel, fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806,
                                            fr::arp(1, peer_mac, peer_ip, mac_address{}, our_ip))));
  l0.run_once();
  EXPECT_EQ(l1.transport().ip().arp().lookup(peer_ip, l1.now()), nullptr);
  l1.run_once();
  const mac_address* m = l1.transport().ip().arp().lookup(peer_ip, l1.now());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(*m, peer_mac);
  EXPECT_EQ(l1.transport().ip().stats().arp_learned_from_peers.get(), 1u);
  EXPECT_EQ(l0.transport().ip().stats().arp_learned.get(), 1u);
  (void)fr::receive_all(kernel);
}

}  // namespace
}  // namespace sluice::inet
