// The user-space stack's IPv6 side in a real loop (loop<memory_transport>)
// on a manual clock, the test playing the Linux host at the other end of a
// memory wire with frames built independently (frames_ipv6.cpp): duplicate
// address detection (success, conflict, withdrawal, defence), Neighbour
// Discovery both ways and every neighbour-cache state (INCOMPLETE with
// retries and failure, REACHABLE, STALE used, DELAY confirmed or expiring,
// PROBE answered or failing, a claimed MAC probed and kept or replaced), ICMPv6 echo, destination unreachable, packet too big
// (path MTU), parameter problems for the extension-header cases, the error
// rate limit and RFC 4443 2.4 (e), router advertisements ignored, UDP over
// IPv6 both ways (checksums, zero checksum), --accept-ra's default router,
// fragment reassembly (in order,
// out of order, overlap, timeout, atomic) and fragmentation on send, and
// loopback to our own address; and the attacker review's findings
// (notes/ip6review.md 1-4, 6, 10): replies from the address a flow uses,
// advertisements by RFC 4861 7.2.5, no eviction of live neighbours or the
// gateway, detection only while detecting, untrusted sources not learned.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "echo_handlers.hpp"
#include "frames.hpp"
#include "frames_ipv6.hpp"
#include "stack_fixture.hpp"
#include "sluice/memory/memory_port.hpp"
#include "sluice/memory/memory_transport.hpp"
#include "sluice/transport/loop.hpp"

namespace sluice::inet {
namespace {

using namespace std::chrono_literals;
namespace fr = test::frames;
namespace f6 = test::frames6;
using memory::memory_port;
using memory::memory_transport;
using memory::memory_wire;
using stack_loop = loop<memory_transport>;

const f6::addr ours = f6::a6("fd00::2");
const f6::addr peer = f6::a6("fd00::1");
const f6::addr peer_ll = f6::a6("fe80::11");
const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x11}};
const mac_address other_mac{{0x02, 0, 0, 0, 0, 0x66}};

ip_address ia(const f6::addr& a) { return ip_address::v6(a.data()); }
endpoint ep(const f6::addr& a, std::uint16_t port) { return ia(a).with_port(port); }

inet_transport_options transport_options(std::vector<std::string> ip6 = {"fd00::2/64"}, std::string gw6 = "") {
  inet_transport_options o;
  o.stack.iface = interface_config::parse("10.0.0.2/24", "", ip6, gw6).value();
  o.transport_name = "memory";
  return o;
}

using recorder = test::datagram_recorder;

struct stack6_test : ::testing::Test, test::memory_stack {
  echo_app::udp_echo_handler echo;

  void make(inet_transport_options to = transport_options()) { make_stack(to); }
  void SetUp() override { make(); }
  void TearDown() override { end_stack(); }
  f6::addr our_ll() { return f6::link_local_of(our_mac()); }
  // The IPv6 frames that came out (ARP left aside, and MLD reports, kept
  // in reports for the tests of MLD).
  std::vector<f6::decoded> reports;
  std::vector<f6::decoded> out() {
    std::vector<f6::decoded> v;
    for (const auto& f : fr::receive_all(*peer_port)) {
      auto d = f6::decode(f);
      if (d.type != 0x86dd) continue;
      if (d.upper == 58 && (d.icmp_type == 143 || d.icmp_type == 131)) {
        reports.push_back(d);
        continue;
      }
      v.push_back(d);
    }
    return v;
  }
  void in(const std::string& frame) { ASSERT_TRUE(fr::send(*peer_port, frame)); }
  // The peer asks for `target` (as Linux does before its first packet):
  // the stack answers and learns the peer's MAC.
  void introduce(const f6::addr& from = peer, const f6::addr& target = ours) {
    step();
    (void)out();
    const f6::addr group = f6::solicited_node(target);
    in(f6::icmpv6_frame(f6::multicast_mac(group), peer_mac, from, group, 135, 0, f6::ns_body(target, peer_mac)));
    step();
    auto na = out();
    ASSERT_EQ(na.size(), 1u);
    ASSERT_EQ(na[0].icmp_type, 136);
  }
  udp_socket* bind_echo(std::uint16_t port) {
    auto r = l->udp_bind(ep(f6::a6("::"), port), echo);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? *r : nullptr;
  }
  std::string udp_in(std::uint16_t sport, std::uint16_t dport, std::string_view payload, const f6::addr& to = ours) {
    return f6::udp_frame(our_mac(), peer_mac, peer, to, sport, dport, payload);
  }
  // An IPv6 frame from the peer to us with this payload (extension headers and all).
  std::string raw_in(std::uint8_t next, const std::string& payload, const f6::addr& to = ours) {
    std::string f = std::string(12, '\0') + "\x86\xdd" + f6::ipv6(peer, to, next, payload);
    our_mac().store(reinterpret_cast<std::byte*>(f.data()));
    peer_mac.store(reinterpret_cast<std::byte*>(f.data()) + 6);
    return f;
  }
};

// ---- duplicate address detection ------------------------------------------------------

TEST_F(stack6_test, probes_each_address_from_the_unspecified_address_at_start) {
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 2u) << "the link-local address and fd00::2";
  const f6::addr targets[] = {our_ll(), ours};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& d = f[i];
    EXPECT_EQ(d.src, f6::a6("::"));
    EXPECT_EQ(d.dst, f6::solicited_node(targets[i]));
    EXPECT_EQ(d.dst_mac, f6::multicast_mac(d.dst));
    EXPECT_EQ(d.hop_limit, 255);
    EXPECT_EQ(d.icmp_type, 135);
    EXPECT_TRUE(d.checksum_ok);
    EXPECT_EQ(d.nd_target, targets[i]);
    EXPECT_FALSE(d.nd_ll.has_value()) << "no link-layer option from ::";
  }
  EXPECT_EQ(stats().nd_dad_probes.get(), 2u);
  step(3);
  EXPECT_TRUE(out().empty()) << "once";
  EXPECT_EQ(st().duplicate_address(), nullptr) << "nobody answered";
}

TEST_F(stack6_test, an_advertisement_for_our_address_is_a_reported_conflict_and_the_address_withdrawn) {
  std::vector<std::pair<ip_address, mac_address>> reports;
  auto to = transport_options({"fd00::2/64", "fd00::3/64"});
  to.stack.on_duplicate_address = [&](const ip_address& a, const mac_address& by) { reports.emplace_back(a, by); };
  make(to);
  step();
  (void)out();
  in(f6::icmpv6_frame(f6::multicast_mac(f6::a6("ff02::1")), other_mac, ours, f6::a6("ff02::1"), 136, 0,
                      f6::na_body(0x20, ours, other_mac)));
  step();
  ASSERT_NE(st().duplicate_address(), nullptr);
  EXPECT_EQ(*st().duplicate_address(), ia(ours));
  EXPECT_EQ(st().duplicate_address_by(), other_mac);
  EXPECT_EQ(stats().dropped(drop_reason::nd_dad_conflict), 1u);
  // Reported once, off the receive path (the maintenance timer).
  clock.advance(10ms);
  step(2);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].first, ia(ours));
  EXPECT_EQ(reports[0].second, other_mac);
  // Withdrawn (RFC 4862 5.4.5): not ours, not defended, not a source; the
  // other address serves.
  EXPECT_FALSE(st().is_our_ip6(ia(ours)));
  EXPECT_TRUE(st().is_our_ip6(ia(f6::a6("fd00::3"))));
  EXPECT_EQ(st().source_for(ia(peer)), ia(f6::a6("fd00::3")));
  const auto not_ours = stats().dropped(drop_reason::nd_not_for_us);
  const f6::addr group = f6::solicited_node(ours);
  in(f6::icmpv6_frame(f6::multicast_mac(group), peer_mac, peer, group, 135, 0, f6::ns_body(ours, peer_mac)));
  step();
  EXPECT_TRUE(out().empty()) << "a solicitation for the withdrawn address goes unanswered";
  EXPECT_EQ(stats().dropped(drop_reason::nd_not_for_us), not_ours + 1);
  introduce(peer, f6::a6("fd00::3"));
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 128, 0, f6::echo_body(1, 1, "x")));
  step();
  EXPECT_TRUE(out().empty()) << "no echo from the withdrawn address";
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, f6::a6("fd00::3"), 128, 0, f6::echo_body(1, 2, "x")));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 129);
  EXPECT_EQ(f[0].src, f6::a6("fd00::3"));
  // A second advertisement changes nothing: reported once.
  in(f6::icmpv6_frame(f6::multicast_mac(f6::a6("ff02::1")), other_mac, ours, f6::a6("ff02::1"), 136, 0,
                      f6::na_body(0x20, ours, other_mac)));
  clock.advance(10ms);
  step(2);
  EXPECT_EQ(reports.size(), 1u);
}

// RFC 4862 5.4.5: a duplicate link-local address sends nothing more: no
// solicitation, no echo reply from it (review finding 2).
TEST_F(stack6_test, a_duplicate_link_local_address_is_never_a_source) {
  step();
  (void)out();
  const f6::addr all = f6::a6("ff02::1");
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, our_ll(), all, 136, 0, f6::na_body(0x20, our_ll(), other_mac)));
  step();
  ASSERT_NE(st().duplicate_address(), nullptr);
  EXPECT_EQ(*st().duplicate_address(), ia(our_ll()));
  EXPECT_TRUE(st().source_for(ia(peer_ll)).is_unspecified());
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(peer_ll, 99), "to a link-local peer"));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::ipv6_no_source), 1u);
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer_ll, our_ll(), 128, 0, f6::echo_body(1, 1, "x")));
  step();
  EXPECT_TRUE(out().empty()) << "not ours any more";
  // The global address still serves.
  introduce();
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 128, 0, f6::echo_body(1, 2, "x")));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].src, ours);
}

TEST_F(stack6_test, another_hosts_probe_is_a_conflict_while_probing_and_defended_after) {
  step();
  (void)out();
  const f6::addr group = f6::solicited_node(ours);
  const auto probe = f6::icmpv6_frame(f6::multicast_mac(group), other_mac, f6::a6("::"), group, 135, 0,
                                      f6::ns_body(ours, std::nullopt));
  in(probe);
  step();
  ASSERT_NE(st().duplicate_address(), nullptr);
  EXPECT_TRUE(out().empty());
  // Once detection is over, a probe for our address is answered to all nodes.
  make();
  step();
  (void)out();
  clock.advance(2s);
  step();  // the loop reads its clock once per iteration
  in(probe);
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 136);
  EXPECT_EQ(f[0].dst, f6::a6("ff02::1"));
  EXPECT_EQ(f[0].nd_target, ours);
  EXPECT_EQ(f[0].nd_flags, 0x20) << "override, not solicited";
  EXPECT_EQ(st().duplicate_address(), nullptr);
}

// ---- MLD ------------------------------------------------------------------------------

// A query's body after the ICMPv6 header: maximum response code, reserved,
// the group (RFC 2710: 24 bytes in all), and for version 2 the flags, QQIC
// and no sources (28).
std::string mld_query_body(std::uint16_t max_resp, const f6::addr& group, bool v2) {
  std::string b = {static_cast<char>(max_resp >> 8), static_cast<char>(max_resp), 0, 0};
  b.append(group.begin(), group.end());
  if (v2) b += std::string("\x02\x7d\x00\x00", 4);
  return b;
}

// RFC 3810 (and 2710 for a version 1 querier): the stack reports its
// solicited-node groups at start and a second later, behind a router
// alert with hop limit 1, and answers queries within their delay.
TEST_F(stack6_test, mld_reports_our_groups_at_start_and_answers_queries) {
  struct report {
    std::string frame;
    f6::decoded d;
  };
  auto raw_reports = [&] {
    std::vector<report> v;
    for (const auto& f : fr::receive_all(*peer_port)) {
      auto d = f6::decode(f);
      if (d.type == 0x86dd && d.upper == 58 && (d.icmp_type == 143 || d.icmp_type == 131)) v.push_back({f, d});
    }
    return v;
  };
  const std::string router_alert("\x3a\x00\x05\x02\x00\x00\x01\x00", 8);
  // Records of a version 2 report: (type, group) each.
  auto records = [](const f6::decoded& d) {
    std::vector<std::pair<int, f6::addr>> v;
    for (std::size_t i = 8; i + 20 <= d.l4.size(); i += 20) {
      f6::addr g;
      std::copy_n(d.l4.begin() + static_cast<std::ptrdiff_t>(i) + 4, 16, g.begin());
      v.emplace_back(static_cast<unsigned char>(d.l4[i]), g);
    }
    return v;
  };
  const std::vector<std::pair<int, f6::addr>> joined = {{4, f6::solicited_node(our_ll())}, {4, f6::solicited_node(ours)}};
  step();
  auto r = raw_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].d.icmp_type, 143);
  EXPECT_EQ(r[0].d.dst, f6::a6("ff02::16"));
  EXPECT_EQ(r[0].d.dst_mac, f6::multicast_mac(f6::a6("ff02::16")));
  EXPECT_EQ(r[0].d.src, our_ll());
  EXPECT_EQ(r[0].d.hop_limit, 1);
  EXPECT_TRUE(r[0].d.checksum_ok);
  EXPECT_EQ(static_cast<unsigned char>(r[0].frame[20]), 0) << "a hop-by-hop header first";
  EXPECT_EQ(r[0].frame.substr(54, 8), router_alert);
  EXPECT_EQ(records(r[0].d), joined);
  // The join again, a second later; then nothing.
  clock.advance(1s);
  step(2);
  r = raw_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(records(r[0].d), joined);
  clock.advance(5s);
  step(2);
  EXPECT_TRUE(raw_reports().empty());
  // A general version 2 query: one report of both groups (MODE_IS_EXCLUDE)
  // within its maximum response delay (1000 ms).
  const f6::addr all = f6::a6("ff02::1");
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 130, 0, mld_query_body(1000, f6::a6("::"), true),
                      1));
  step();
  clock.advance(1s);
  step(2);
  r = raw_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(records(r[0].d), (std::vector<std::pair<int, f6::addr>>{{2, f6::solicited_node(our_ll())},
                                                                    {2, f6::solicited_node(ours)}}));
  EXPECT_EQ(stats().mld_queries_in.get(), 1u);
  // A version 1 querier: version 1 reports, one per group, to the group.
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 130, 0, mld_query_body(500, f6::a6("::"), false),
                      1));
  step();
  clock.advance(1s);
  step(2);
  r = raw_reports();
  ASSERT_EQ(r.size(), 2u);
  for (const auto& x : r) {
    EXPECT_EQ(x.d.icmp_type, 131);
    EXPECT_TRUE(x.d.checksum_ok);
    EXPECT_EQ(x.d.hop_limit, 1);
    EXPECT_EQ(x.d.dst_mac, f6::multicast_mac(x.d.dst));
  }
  EXPECT_EQ(r[0].d.dst, f6::solicited_node(our_ll()));
  EXPECT_EQ(r[1].d.dst, f6::solicited_node(ours));
  // Not answered: another group's query, a hop limit not 1, a global source.
  const f6::addr other_group = f6::solicited_node(f6::a6("fd00::99"));
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 130, 0, mld_query_body(10, other_group, true), 1));
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 130, 0, mld_query_body(10, f6::a6("::"), true)));
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer, all, 130, 0, mld_query_body(10, f6::a6("::"), true), 1));
  step();
  clock.advance(1s);
  step(2);
  EXPECT_TRUE(raw_reports().empty());
  EXPECT_EQ(stats().dropped(drop_reason::mld_not_our_group), 1u);
  EXPECT_EQ(stats().dropped(drop_reason::mld_bad_query), 2u);
  // A flood of queries asking for no delay: one report a second at most.
  clock.advance(300s);  // past the version 1 querier's time
  step();
  (void)raw_reports();
  for (int i = 0; i < 20; ++i) {
    in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 130, 0, mld_query_body(0, f6::a6("::"), true),
                        1));
    step();
    clock.advance(50ms);
    step();
  }
  EXPECT_LE(raw_reports().size(), 2u) << "20 queries in a second";
}

// ---- neighbour discovery --------------------------------------------------------------

TEST_F(stack6_test, answers_solicitations_for_its_addresses_and_learns_the_asker) {
  step();
  (void)out();
  for (const f6::addr& target : {ours, our_ll()}) {
    const f6::addr group = f6::solicited_node(target);
    const f6::addr from = target == ours ? peer : peer_ll;
    in(f6::icmpv6_frame(f6::multicast_mac(group), peer_mac, from, group, 135, 0, f6::ns_body(target, peer_mac)));
    step();
    auto f = out();
    ASSERT_EQ(f.size(), 1u);
    const auto& d = f[0];
    EXPECT_EQ(d.dst_mac, peer_mac);
    EXPECT_EQ(d.src_mac, our_mac());
    EXPECT_EQ(d.src, target);
    EXPECT_EQ(d.dst, from);
    EXPECT_EQ(d.hop_limit, 255);
    EXPECT_TRUE(d.checksum_ok);
    EXPECT_EQ(d.icmp_type, 136);
    EXPECT_EQ(d.nd_flags, 0x60) << "solicited and override";
    EXPECT_EQ(d.nd_target, target);
    ASSERT_TRUE(d.nd_ll.has_value());
    EXPECT_EQ(*d.nd_ll, our_mac());
  }
  EXPECT_EQ(stats().nd_solicitations_in.get(), 2u);
  EXPECT_EQ(stats().nd_advertisements_out.get(), 2u);
  // The asker is known now: a datagram to it goes without asking.
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "known"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].upper, 17);
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  EXPECT_EQ(f[0].payload, "known");
}

TEST_F(stack6_test, ignores_solicitations_for_others_and_nd_with_a_hop_limit_below_255) {
  step();
  (void)out();
  const f6::addr other = f6::a6("fd00::9");
  const f6::addr g1 = f6::solicited_node(other);
  in(f6::icmpv6_frame(f6::multicast_mac(g1), peer_mac, peer, g1, 135, 0, f6::ns_body(other, peer_mac)));
  const f6::addr g2 = f6::solicited_node(ours);
  in(f6::icmpv6_frame(f6::multicast_mac(g2), peer_mac, peer, g2, 135, 0, f6::ns_body(ours, peer_mac), 254));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::ipv6_not_for_us), 1u) << "another host's solicited-node group";
  EXPECT_EQ(stats().dropped(drop_reason::nd_bad_hop_limit), 1u);
  // From outside our prefixes: not learned, not answered.
  const f6::addr far = f6::a6("2001:db8::7");
  in(f6::icmpv6_frame(f6::multicast_mac(g2), peer_mac, far, g2, 135, 0, f6::ns_body(ours, peer_mac)));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::nd_off_link), 1u);
  EXPECT_EQ(stats().nd_learned.get(), 0u);
}

TEST_F(stack6_test, resolves_a_neighbour_and_sends_what_waited) {
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "first"));
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "second"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u) << "one solicitation, both datagrams held";
  EXPECT_EQ(f[0].icmp_type, 135);
  EXPECT_EQ(f[0].dst, f6::solicited_node(peer));
  EXPECT_EQ(f[0].dst_mac, f6::multicast_mac(f6::solicited_node(peer)));
  EXPECT_EQ(f[0].src, ours);
  EXPECT_EQ(f[0].hop_limit, 255);
  EXPECT_EQ(f[0].nd_target, peer);
  ASSERT_TRUE(f[0].nd_ll.has_value());
  EXPECT_EQ(*f[0].nd_ll, our_mac());
  EXPECT_EQ(st().neighbours().pending(), 2u);
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x60, peer, peer_mac)));
  step();
  f = out();
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].payload, "first");
  EXPECT_EQ(f[1].payload, "second");
  EXPECT_EQ(f[1].dst_mac, peer_mac);
  EXPECT_TRUE(f[1].checksum_ok);
  EXPECT_EQ(f[1].src, ours);
  EXPECT_EQ(stats().nd_learned.get(), 1u);
}

TEST_F(stack6_test, solicitations_are_retried_then_what_waited_is_dropped) {
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(f6::a6("fd00::50"), 99), "anyone?"));
  step();
  EXPECT_EQ(out().size(), 1u);
  for (int i = 0; i < 2; ++i) {
    clock.advance(1s);
    step();
    auto f = out();
    ASSERT_EQ(f.size(), 1u) << "retry " << i;
    EXPECT_EQ(f[0].nd_target, f6::a6("fd00::50"));
  }
  clock.advance(1s);
  step();
  EXPECT_TRUE(out().empty()) << "three solicitations, then it gives up";
  EXPECT_EQ(stats().dropped(drop_reason::nd_unresolved), 1u);
  EXPECT_EQ(st().neighbours().pending(), 0u);
}

TEST_F(stack6_test, a_stale_neighbour_is_used_through_delay_and_probe_then_fails_if_silent) {
  auto to = transport_options();
  to.stack.arp.reachable_time = 5s;
  to.stack.arp.delay_first_probe = 3s;
  make(to);
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(1, 7, "a"));
  step();
  EXPECT_EQ(out().size(), 1u);
  // STALE, used: the echo goes at once to the known MAC, and the entry
  // waits in DELAY (no solicitation yet) for a confirmation.
  clock.advance(6s);
  step();
  in(udp_in(1, 7, "b"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "b");
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  EXPECT_EQ(stats().nd_expired.get(), 1u);
  EXPECT_EQ(st().neighbours().delaying(), 1u);
  clock.advance(2s);
  step(2);
  EXPECT_TRUE(out().empty()) << "still in DELAY";
  // Nothing confirmed it: PROBE, a unicast solicitation to the known MAC.
  clock.advance(1s);
  step(2);
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 135);
  EXPECT_EQ(f[0].dst_mac, peer_mac) << "unicast probe";
  EXPECT_EQ(f[0].dst, peer);
  EXPECT_EQ(st().neighbours().delaying(), 0u);
  // It answers: REACHABLE again, no more probes.
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x60, peer, peer_mac)));
  step();
  clock.advance(2s);
  step(2);
  EXPECT_TRUE(out().empty());
  in(udp_in(1, 7, "c"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "c");
  // Stale again; in DELAY a solicited advertisement makes it REACHABLE:
  // no probe follows.
  clock.advance(6s);
  step();
  in(udp_in(1, 7, "c2"));
  step();
  EXPECT_EQ(out().size(), 1u);
  EXPECT_EQ(st().neighbours().delaying(), 1u);
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x60, peer, peer_mac)));
  step();
  EXPECT_EQ(st().neighbours().delaying(), 0u);
  clock.advance(4s);
  step(2);
  EXPECT_TRUE(out().empty()) << "confirmed in DELAY: no probe";
  // Stale again, and this time silent: DELAY, three probes, then the entry
  // fails and the next datagram waits for a multicast solicitation.
  clock.advance(6s);
  step();
  in(udp_in(1, 7, "d"));
  step();
  EXPECT_EQ(out().size(), 1u) << "the echo";
  clock.advance(3s);
  step(2);
  for (int i = 0; i < 3; ++i) {
    f = out();
    ASSERT_EQ(f.size(), 1u) << "probe " << i + 1;
    EXPECT_EQ(f[0].dst_mac, peer_mac);
    clock.advance(1s);
    step();
  }
  EXPECT_TRUE(out().empty());
  in(udp_in(1, 7, "e"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 135);
  EXPECT_EQ(f[0].dst, f6::solicited_node(peer)) << "failed: resolved afresh, by multicast";
  EXPECT_EQ(st().neighbours().pending(), 1u);
}

TEST_F(stack6_test, a_live_neighbours_address_claimed_by_another_mac_is_probed_then_kept_or_taken) {
  introduce();
  // Another MAC claims the peer's address: the known MAC is asked, unicast.
  in(f6::icmpv6_frame(our_mac(), other_mac, peer, ours, 136, 0, f6::na_body(0x20, peer, other_mac)));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 135);
  EXPECT_EQ(f[0].dst_mac, peer_mac) << "a probe of the known MAC";
  EXPECT_EQ(f[0].dst, peer);
  EXPECT_EQ(stats().nd_conflicts.get(), 1u);
  // It answers: it stays.
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x60, peer, peer_mac)));
  step();
  EXPECT_EQ(stats().nd_confirmed.get(), 1u);
  // A second claim that the known MAC never answers: the claimant is taken.
  in(f6::icmpv6_frame(our_mac(), other_mac, peer, ours, 136, 0, f6::na_body(0x20, peer, other_mac)));
  step();
  for (int i = 0; i < 3; ++i) {
    clock.advance(1s);
    step();
  }
  EXPECT_EQ(stats().nd_reassigned.get(), 1u);
  (void)out();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(1, 7, "to whom"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].dst_mac, other_mac);
}

// ---- the attacker review's findings (notes/ip6review.md) -------------------------------

// Finding 2 (RFC 4861 7.2.5): an advertisement for a neighbour we never
// asked for creates nothing, even "solicited" and to our unicast address.
TEST_F(stack6_test, an_advertisement_for_an_unknown_neighbour_creates_no_entry) {
  step();
  (void)out();
  const f6::addr victim = f6::a6("fd00::5");
  in(f6::icmpv6_frame(our_mac(), other_mac, victim, ours, 136, 0, f6::na_body(0x60, victim, other_mac)));
  step();
  EXPECT_EQ(stats().dropped(drop_reason::nd_unknown_target), 1u);
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(victim, 99), "to whom"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 135) << "resolved by solicitation, not sent to the advertiser";
  EXPECT_EQ(f[0].dst, f6::solicited_node(victim));
}

// Finding 2: S=0 gives STALE (verified on next use), O=0 with another MAC
// changes no MAC.
TEST_F(stack6_test, advertisements_follow_the_solicited_and_override_flags) {
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "first"));
  step();
  ASSERT_EQ(out().size(), 1u);  // the solicitation
  // Unsolicited (O=1, S=0): the waiting datagram goes, the entry is STALE.
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x20, peer, peer_mac)));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "first");
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "second"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "second");
  EXPECT_EQ(st().neighbours().delaying(), 1u) << "STALE, not REACHABLE: used, it waits in DELAY";
  clock.advance(5s);
  step(2);
  f = out();
  ASSERT_EQ(f.size(), 1u) << "then a unicast probe";
  EXPECT_EQ(f[0].icmp_type, 135);
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  // The probe's answer (S=1): REACHABLE. It goes stale; then O=0 from another MAC changes nothing.
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 136, 0, f6::na_body(0x60, peer, peer_mac)));
  step();
  clock.advance(61s);
  step();
  in(f6::icmpv6_frame(our_mac(), other_mac, peer, ours, 136, 0, f6::na_body(0x40, peer, other_mac)));
  step();
  (void)out();
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "third"));
  step();
  f = out();
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0].payload, "third");
  EXPECT_EQ(f[0].dst_mac, peer_mac) << "O=0: the known MAC stays";
}

// Finding 1: new neighbours (a scan, a SYN flood from spoofed on-link
// sources) never take a live neighbour's slot nor the gateway6 one, and at
// most a quarter of the table resolves at once.
TEST_F(stack6_test, a_flood_of_new_neighbours_evicts_no_live_one_nor_the_gateway) {
  auto o = transport_options({"fd00::2/64"}, "fd00::1");
  o.stack.arp.capacity = 8;  // one probe window: every address shares it
  make(o);
  introduce();  // the peer (our gateway6) is known
  clock.advance(1s);
  step();
  for (int i = 0; i < 7; ++i) {
    f6::addr from = f6::a6("fd00::200");
    from[15] = static_cast<std::uint8_t>(i);
    const mac_address m{{0x02, 0, 0, 0, 1, static_cast<std::uint8_t>(i)}};
    const f6::addr group = f6::solicited_node(ours);
    in(f6::icmpv6_frame(f6::multicast_mac(group), m, from, group, 135, 0, f6::ns_body(ours, m)));
  }
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  auto flood = [&](int n) {
    for (int i = 0; i < n; ++i) {
      f6::addr to = f6::a6("fd00::1:0");
      to[15] = static_cast<std::uint8_t>(i);
      ASSERT_TRUE((*s)->send_to(ep(to, 99), "x"));
    }
    step();
    (void)out();
  };
  flood(10);
  EXPECT_EQ(stats().dropped(drop_reason::nd_table_full), 10u) << "every slot live: none given up";
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "still known"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "still known");
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  // All stale now: new neighbours take stale slots, but never the gateway's.
  clock.advance(61s);
  step();
  flood(10);
  EXPECT_LE(st().neighbours().incomplete(), 2u) << "a quarter of 8 slots";
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), "gateway"));
  step();
  f = out();
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(f[0].payload, "gateway") << "its MAC still known (STALE, probed)";
  EXPECT_EQ(f[0].dst_mac, peer_mac);
}

// Finding 4: a conflict only while detecting, from a validated
// advertisement of another MAC; never after.
TEST_F(stack6_test, an_advertisement_for_our_address_outside_detection_or_invalid_is_no_conflict) {
  step();
  (void)out();
  const f6::addr all = f6::a6("ff02::1");
  // While detecting: our own MAC (a reflected frame), and a multicast S=1.
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, ours, all, 136, 0, f6::na_body(0x20, ours, our_mac())));
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, ours, all, 136, 0, f6::na_body(0x60, ours, other_mac)));
  step();
  EXPECT_EQ(st().duplicate_address(), nullptr);
  EXPECT_EQ(stats().dropped(drop_reason::nd_bad_message), 1u);
  // After detection: counted, the address kept.
  clock.advance(2s);
  step();
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, ours, all, 136, 0, f6::na_body(0x20, ours, other_mac)));
  step();
  EXPECT_EQ(st().duplicate_address(), nullptr);
  EXPECT_EQ(stats().dropped(drop_reason::nd_address_claimed), 2u);
  EXPECT_EQ(stats().dropped(drop_reason::nd_dad_conflict), 0u);
}

// Findings 6 and 10: a group or our own MAC as sender is dropped (no echo
// reply to the whole link); a solicitation without a source link-layer
// option is answered but learns nothing; a probe from :: to another group
// than the target's solicited-node one is not answered.
TEST_F(stack6_test, group_source_macs_and_solicitations_without_slla_are_not_trusted) {
  step();
  (void)out();
  const std::string ping = f6::icmpv6(peer, ours, 128, 0, f6::echo_body(1, 1, "hi"));
  for (const mac_address& from : {mac_address::broadcast(), f6::multicast_mac(f6::a6("ff02::1"))}) {
    std::string fr6 = std::string(12, '\0') + "\x86\xdd" + f6::ipv6(peer, ours, 58, ping);
    our_mac().store(reinterpret_cast<std::byte*>(fr6.data()));
    from.store(reinterpret_cast<std::byte*>(fr6.data()) + 6);
    in(fr6);
  }
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::eth_bad_source), 2u);
  // A unicast solicitation without SLLA: answered, not learned.
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 135, 0, f6::ns_body(ours, std::nullopt)));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 136);
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  EXPECT_EQ(stats().nd_learned.get(), 0u);
  // After detection, a probe from :: to all nodes is not another host's probe.
  clock.advance(2s);
  step();
  const f6::addr all = f6::a6("ff02::1");
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, f6::a6("::"), all, 135, 0, f6::ns_body(ours, std::nullopt)));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::nd_bad_message), 1u);
}

// Finding 5 (a): a packet to our unicast address in a broadcast or
// multicast frame gets no error back (RFC 4443 2.4 e.4, e.5).
TEST_F(stack6_test, no_error_about_a_packet_that_came_in_a_link_layer_group_frame) {
  introduce();
  for (const mac_address& to : {mac_address::broadcast(), f6::multicast_mac(f6::a6("ff02::1"))}) {
    std::string f = f6::udp_frame(to, peer_mac, peer, ours, 5000, 4444, "closed port");
    in(f);
  }
  step();
  EXPECT_TRUE(out().empty()) << "no port unreachable";
  EXPECT_EQ(stats().dropped(drop_reason::udp_no_socket), 2u);
  in(udp_in(5000, 4444, "closed port, unicast frame"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 1) << "a unicast frame is still answered";
}

TEST_F(stack6_test, router_advertisements_are_counted_and_ignored_unless_asked_for) {
  step();
  (void)out();
  const f6::addr all = f6::a6("ff02::1");
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 134, 0, std::string(12, '\0')));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::nd_router_advert_ignored), 1u);
}

// An RA's body after the ICMPv6 header: hop limit, flags, router lifetime
// (seconds), reachable time, retransmit timer (RFC 4861 4.2), then options.
std::string ra_body(std::uint16_t lifetime_s, const std::string& options = {}) {
  std::string b(12, '\0');
  b[2] = static_cast<char>(lifetime_s >> 8);
  b[3] = static_cast<char>(lifetime_s);
  return b + options;
}

// --accept-ra: the advertising router becomes the default router for its
// lifetime (RFC 4861 6.3.4); a lifetime of 0 withdraws it; invalid ones
// (not from a link-local address, a zero-length option) change nothing.
TEST_F(stack6_test, with_accept_ra_a_router_advertisement_gives_the_default_router_for_its_lifetime) {
  auto to = transport_options();
  to.stack.iface.accept_ra = true;
  make(to);
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  const f6::addr far = f6::a6("2001:db8::1");
  const f6::addr all = f6::a6("ff02::1");
  auto send_far = [&] {
    EXPECT_TRUE((*s)->send_to(ep(far, 99), "far"));
    step();
    return out();
  };
  EXPECT_TRUE(send_far().empty());
  EXPECT_EQ(stats().dropped(drop_reason::no_route), 1u) << "no router yet";
  // Invalid advertisements: from a global address, a zero-length option.
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer, all, 134, 0, ra_body(1800)));
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 134, 0, ra_body(1800, std::string(8, '\0'))));
  step();
  EXPECT_EQ(stats().dropped(drop_reason::nd_bad_message), 2u);
  EXPECT_EQ(st().default_router6(), nullptr);
  // A valid one: off-link datagrams go through the router (resolved first).
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 134, 0, ra_body(30)));
  step();
  EXPECT_EQ(stats().nd_router_adverts_used.get(), 1u);
  ASSERT_NE(st().default_router6(), nullptr);
  EXPECT_EQ(*st().default_router6(), ia(peer_ll));
  auto f = send_far();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].nd_target, peer_ll) << "the router is resolved";
  in(f6::icmpv6_frame(our_mac(), peer_mac, peer_ll, our_ll(), 136, 0, f6::na_body(0xe0, peer_ll, peer_mac)));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].dst, far);
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  EXPECT_EQ(f[0].payload, "far");
  // Another router while ours lives: kept. Lifetime 0 from ours: withdrawn.
  in(f6::icmpv6_frame(f6::multicast_mac(all), other_mac, f6::a6("fe80::66"), all, 134, 0, ra_body(30)));
  step();
  EXPECT_EQ(*st().default_router6(), ia(peer_ll));
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 134, 0, ra_body(0)));
  step();
  EXPECT_EQ(st().default_router6(), nullptr);
  EXPECT_TRUE(send_far().empty());
  EXPECT_EQ(stats().dropped(drop_reason::no_route), 2u);
  // And a lifetime runs out.
  in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer_ll, all, 134, 0, ra_body(2)));
  step();
  ASSERT_NE(st().default_router6(), nullptr);
  clock.advance(3s);
  step();
  EXPECT_EQ(st().default_router6(), nullptr);
  EXPECT_EQ(stats().dropped(drop_reason::nd_router_advert_ignored), 0u);
}

// ---- ICMPv6 --------------------------------------------------------------------------

TEST_F(stack6_test, answers_pings_to_its_addresses_and_groups_from_a_unicast_address) {
  introduce();
  for (const f6::addr& to : {ours, our_ll()}) {
    const f6::addr from = to == ours ? peer : peer_ll;
    in(f6::icmpv6_frame(our_mac(), peer_mac, from, to, 128, 0, f6::echo_body(7, 3, "ping data"), 64));
    step();
    auto f = out();
    ASSERT_EQ(f.size(), 1u);
    const auto& d = f[0];
    EXPECT_EQ(d.icmp_type, 129);
    EXPECT_TRUE(d.checksum_ok);
    EXPECT_EQ(d.src, to);
    EXPECT_EQ(d.dst, from);
    EXPECT_EQ(d.dst_mac, peer_mac);
    EXPECT_EQ(d.icmp_word, (7u << 16) | 3u);
    EXPECT_EQ(d.icmp_rest, "ping data");
  }
  // To all nodes (RFC 4443 4.2): answered from a unicast address of ours,
  // the link-local one for a link-local asker.
  const f6::addr all = f6::a6("ff02::1");
  for (const f6::addr& from : {peer, peer_ll}) {
    in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, from, all, 128, 0, f6::echo_body(1, 1, "x"), 64));
    step();
    auto f = out();
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].icmp_type, 129);
    EXPECT_TRUE(f[0].checksum_ok);
    EXPECT_EQ(f[0].src, from == peer ? ours : our_ll());
    EXPECT_EQ(f[0].dst, from);
    EXPECT_EQ(f[0].dst_mac, peer_mac);
  }
  auto bad = f6::icmpv6_frame(our_mac(), peer_mac, peer, ours, 128, 0, f6::echo_body(1, 1, "x"), 64);
  bad.back() ^= 1;
  in(bad);
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().icmp6_echo_replies.get(), 4u);
  EXPECT_EQ(stats().dropped(drop_reason::icmpv6_bad_checksum), 1u);
}

// Echo to a group shares the errors' rate limit (one spoofed request makes
// every host answer the victim).
TEST_F(stack6_test, echo_requests_to_a_group_are_rate_limited) {
  introduce();
  const f6::addr all = f6::a6("ff02::1");
  for (int i = 0; i < 30; ++i) {
    in(f6::icmpv6_frame(f6::multicast_mac(all), peer_mac, peer, all, 128, 0,
                        f6::echo_body(1, static_cast<std::uint16_t>(i), "x"), 64));
  }
  step(2);
  EXPECT_EQ(out().size(), 10u) << "the burst";
  EXPECT_EQ(stats().icmp6_errors_rate_limited.get(), 20u);
}

// The neighbour cache's slots are keyed by the top bits of a multiply-shift
// hash: addresses that differ only in their last bytes (a sender's choice)
// spread over the table instead of one probe window (review finding 1).
TEST_F(stack6_test, neighbours_differing_only_in_their_last_bytes_spread_over_the_table) {
  step();
  (void)out();
  for (int i = 1; i <= 100; ++i) {
    f6::addr from = peer;  // fd00::1:0:N
    from[11] = 1;
    from[14] = static_cast<std::uint8_t>(i >> 8);
    from[15] = static_cast<std::uint8_t>(i);
    mac_address m = peer_mac;
    m.bytes[5] = static_cast<std::uint8_t>(i);
    const f6::addr group = f6::solicited_node(ours);
    in(f6::icmpv6_frame(f6::multicast_mac(group), m, from, group, 135, 0, f6::ns_body(ours, m)));
    if (i % 16 == 0) step();
  }
  step();
  (void)out();
  EXPECT_EQ(stats().dropped(drop_reason::nd_table_full), 0u);
  EXPECT_EQ(st().neighbours().reachable(clock.now()), 100u);
}

TEST_F(stack6_test, a_datagram_to_an_unbound_port_is_answered_port_unreachable) {
  introduce();
  const std::string frame = udp_in(5000, 4444, "nobody");
  in(frame);
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].icmp_type, 1);
  EXPECT_EQ(f[0].icmp_code, 4);
  EXPECT_TRUE(f[0].checksum_ok);
  EXPECT_EQ(f[0].dst, peer);
  EXPECT_EQ(f[0].icmp_rest, frame.substr(14)) << "the whole invoking packet, quoted";
  EXPECT_EQ(stats().dropped(drop_reason::udp_no_socket), 1u);
  // Not to a group destination (RFC 4443 2.4 (e.3)).
  const f6::addr all = f6::a6("ff02::1");
  in(f6::udp_frame(f6::multicast_mac(all), peer_mac, peer, all, 5000, 4444, "group"));
  step();
  EXPECT_TRUE(out().empty());
}

TEST_F(stack6_test, errors_are_rate_limited) {
  introduce();
  const std::uint32_t burst = st().options().icmp6_error_burst;
  for (std::uint32_t i = 0; i < burst + 5; ++i) in(udp_in(5000, 4444, "x"));
  step();
  EXPECT_EQ(out().size(), burst);
  EXPECT_EQ(stats().icmp6_errors_rate_limited.get(), 5u);
  clock.advance(1s);  // 100 a second refill the bucket
  step();
  in(udp_in(5000, 4444, "x"));
  step();
  EXPECT_EQ(out().size(), 1u);
}

TEST_F(stack6_test, packet_too_big_lowers_the_path_mtu_and_datagrams_are_fragmented_to_it) {
  introduce();
  EXPECT_EQ(st().path_mtu(ia(peer)), 1500u);
  // A router says our 1500-byte packet to fd00::1 did not fit 1400.
  std::string quoted = f6::ipv6(ours, peer, 17, f6::udp(ours, peer, 9, 99, std::string(1000, 'q')));
  quoted.resize(1232);
  std::string body;
  body += std::string("\x00\x00\x05\x78", 4);  // 1400
  body += quoted;
  in(f6::icmpv6_frame(our_mac(), peer_mac, f6::a6("fd00::fe"), ours, 2, 0, body, 64));
  step();
  EXPECT_EQ(st().path_mtu(ia(peer)), 1400u);
  EXPECT_EQ(st().path_mtu(ia(f6::a6("fd00::77"))), 1500u) << "per destination";
  EXPECT_EQ(stats().icmp6_packet_too_big.get(), 1u);
  // Below 1280 counts as 1280; a quote of another source is not used.
  std::string low = std::string("\x00\x00\x02\x00", 4) + quoted;
  in(f6::icmpv6_frame(our_mac(), peer_mac, f6::a6("fd00::fe"), ours, 2, 0, low, 64));
  std::string forged_q = f6::ipv6(f6::a6("fd00::3"), f6::a6("fd00::99"), 17, std::string(8, 'x'));
  in(f6::icmpv6_frame(our_mac(), peer_mac, f6::a6("fd00::fe"), ours, 2, 0,
                      std::string("\x00\x00\x05\x00", 4) + forged_q, 64));
  step();
  EXPECT_EQ(st().path_mtu(ia(peer)), 1280u);
  EXPECT_EQ(st().path_mtu(ia(f6::a6("fd00::99"))), 1500u);
  EXPECT_EQ(stats().dropped(drop_reason::icmpv6_error_unusable), 1u);
  // A datagram over 1280 goes in fragments that fit.
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  std::string payload(3000, '\0');
  std::mt19937 rng(5);
  for (auto& c : payload) c = static_cast<char>(rng());
  ASSERT_TRUE((*s)->send_to(ep(peer, 99), payload));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 3u);
  std::map<std::uint16_t, std::string> by_offset;
  for (const auto& d : f) {
    EXPECT_TRUE(d.fragment);
    EXPECT_LE(40u + 8u + d.l4.size(), 1280u);
    EXPECT_EQ(d.fragment_id, f[0].fragment_id);
    EXPECT_EQ(d.more_fragments, d.fragment_offset != f.back().fragment_offset);
    by_offset[d.fragment_offset] = d.l4;
  }
  std::string whole;
  for (auto& [off, bytes] : by_offset) {
    EXPECT_EQ(off, whole.size());
    whole += bytes;
  }
  // Put back together as the kernel would: a valid UDP datagram, checksum and all.
  auto d = f6::decode(std::string(12, '\0') + "\x86\xdd" + f6::ipv6(ours, peer, 17, whole));
  EXPECT_TRUE(d.checksum_ok);
  EXPECT_EQ(d.payload, payload);
  EXPECT_EQ(stats().fragments_out.get(), 3u);
  // Forgotten after pmtu_lifetime (RFC 8201 4): the link MTU again (without
  // a scan of the table from then on), and a new report is taken again.
  clock.advance(stack::pmtu_lifetime + 1s);
  step();
  EXPECT_EQ(st().path_mtu(ia(peer)), 1500u);
  in(f6::icmpv6_frame(our_mac(), peer_mac, f6::a6("fd00::fe"), ours, 2, 0, body, 64));
  step();
  EXPECT_EQ(st().path_mtu(ia(peer)), 1400u);
}

// ---- extension headers through the stack -----------------------------------------------

TEST_F(stack6_test, extension_headers_are_walked_and_bad_ones_answered_with_parameter_problems) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  const std::string udp = f6::udp(peer, ours, 1, 7, "through");
  // Hop-by-hop and destination options that say skip: delivered.
  in(raw_in(0, f6::options_header(60, std::string("\x05\x02\x00\x00", 4)) +
                   f6::options_header(17, std::string("\x1e\x01\x00", 3)) + udp));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].payload, "through");
  struct bad_case {
    std::uint8_t first;
    std::string payload;
    drop_reason why;
    int code;        // -1: no ICMPv6 error expected
    std::uint32_t pointer;
  };
  const bad_case cases[] = {
      {43, f6::routing_header(17, 0, 1) + udp, drop_reason::ipv6_routing_type0, -1, 0},
      {43, f6::routing_header(17, 4, 1) + udp, drop_reason::ipv6_routing_unknown, 0, 42},
      {60, f6::options_header(17, std::string("\x9e\x01\x00", 3)) + udp, drop_reason::ipv6_unknown_option, 2, 42},
      {60, f6::options_header(17, std::string("\x5e\x01\x00", 3)) + udp, drop_reason::ipv6_unknown_option, -1, 0},
      {253, udp, drop_reason::ipv6_unknown_next_header, 1, 6},
      {60, f6::options_header(0, "") + udp, drop_reason::ipv6_hbh_not_first, 1, 40},
  };
  for (const auto& c : cases) {
    const auto before = stats().dropped(c.why);
    const std::string frame = raw_in(c.first, c.payload);
    in(frame);
    step();
    f = out();
    EXPECT_EQ(stats().dropped(c.why), before + 1) << to_string(c.why);
    if (c.code < 0) {
      EXPECT_TRUE(f.empty()) << to_string(c.why);
      continue;
    }
    ASSERT_EQ(f.size(), 1u) << to_string(c.why);
    EXPECT_EQ(f[0].icmp_type, 4);
    EXPECT_EQ(f[0].icmp_code, c.code);
    EXPECT_EQ(f[0].icmp_word, c.pointer) << to_string(c.why);
    EXPECT_TRUE(f[0].checksum_ok);
    EXPECT_EQ(f[0].icmp_rest, frame.substr(14));
    clock.advance(1s);  // keep clear of the rate limit
    step();
  }
  // A chain longer than the bound.
  std::string chain;
  for (unsigned i = 0; i < ipv6_max_extension_headers; ++i) chain += f6::options_header(60, "");
  in(raw_in(60, chain + f6::options_header(17, "") + udp));
  step();
  EXPECT_EQ(stats().dropped(drop_reason::ipv6_chain_too_long), 1u);
  // Errors about packets to groups: only for an option that asks (code 2, action 10).
  const f6::addr all = f6::a6("ff02::1");
  std::string to_group = raw_in(253, udp, all);
  f6::multicast_mac(all).store(reinterpret_cast<std::byte*>(to_group.data()));
  in(to_group);
  step();
  EXPECT_TRUE(out().empty()) << "no parameter problem about a packet to a group";
}

// ---- UDP over IPv6 -------------------------------------------------------------------

TEST_F(stack6_test, echoes_udp_over_ipv6_in_the_buffer_it_came_in) {
  introduce();
  ASSERT_NE(bind_echo(7), nullptr);
  in(udp_in(5000, 7, "hello, six"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].dst_mac, peer_mac);
  EXPECT_EQ(f[0].src, ours);
  EXPECT_EQ(f[0].dst, peer);
  EXPECT_TRUE(f[0].checksum_ok);
  EXPECT_EQ(f[0].sport, 7);
  EXPECT_EQ(f[0].dport, 5000);
  EXPECT_EQ(f[0].payload, "hello, six");
  EXPECT_EQ(stats().tx_copied.get(), 0u) << "zero copy";
}

TEST_F(stack6_test, udp_checksums_are_checked_and_zero_ones_dropped) {
  introduce();
  recorder rec;
  ASSERT_TRUE(l->udp_bind(ep(f6::a6("::"), 7), rec).ok());
  in(raw_in(17, f6::udp(peer, ours, 1, 7, "zero", true)));
  in(raw_in(17, f6::udp(peer, ours, 1, 7, "bad", false, true)));
  in(raw_in(17, f6::udp(peer, ours, 1, 7, "good")));
  step();
  ASSERT_EQ(rec.got.size(), 1u);
  EXPECT_EQ(rec.got[0].second, "good");
  EXPECT_EQ(rec.got[0].first, ep(peer, 1));
  EXPECT_EQ(stats().dropped(drop_reason::udp6_zero_checksum), 1u);
  EXPECT_EQ(stats().dropped(drop_reason::udp_bad_checksum), 1u);
  // The IPv6 counters are exported with the others.
  metric_list m;
  st().metrics("loop0.", m);
  auto value = [&](const std::string& name) -> std::optional<std::uint64_t> {
    for (const auto& x : m)
      if (x.name == name) return x.value;
    return std::nullopt;
  };
  EXPECT_EQ(value("loop0.inet.drop.udp6_zero_checksum"), 1u);
  EXPECT_EQ(value("loop0.inet.nd_solicitations_in"), 1u);
  EXPECT_EQ(value("loop0.inet.nd_advertisements_out"), 1u);
  EXPECT_EQ(value("loop0.inet.ipv6_in"), 4u);
  EXPECT_TRUE(value("loop0.inet.icmp6_errors_rate_limited").has_value());
  EXPECT_TRUE(value("loop0.inet.drop.ipv6_routing_type0").has_value());
}

TEST_F(stack6_test, sockets_take_their_family_and_address) {
  introduce();
  recorder v4, ll;
  ASSERT_TRUE(l->udp_bind(endpoint::ipv4(0, 7), v4).ok());
  ASSERT_TRUE(l->udp_bind(ep(our_ll(), 8), ll).ok());
  in(udp_in(1, 7, "to v4 socket"));
  in(udp_in(1, 8, "to fd00::2"));
  in(f6::udp_frame(our_mac(), peer_mac, peer_ll, our_ll(), 1, 8, "to link-local"));
  step();
  EXPECT_TRUE(v4.got.empty());
  ASSERT_EQ(ll.got.size(), 1u);
  EXPECT_EQ(ll.got[0].second, "to link-local");
  EXPECT_EQ(stats().dropped(drop_reason::udp_no_socket), 2u);
  EXPECT_EQ(out().size(), 2u) << "port unreachable, both";
  recorder r;
  auto foreign = l->udp_bind(ep(f6::a6("fd00::99"), 9), r);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.err().message.find("not this interface's IPv6 address"), std::string::npos);
}

TEST_F(stack6_test, fragments_are_reassembled_in_any_order_and_overlaps_and_stragglers_dropped) {
  introduce();
  recorder rec;
  ASSERT_TRUE(l->udp_bind(ep(f6::a6("::"), 7), rec).ok());
  std::string payload(3000, '\0');
  std::mt19937 rng(3);
  for (auto& c : payload) c = static_cast<char>(rng());
  const std::string l4 = f6::udp(peer, ours, 1, 7, payload);
  auto frag = [&](std::uint32_t id, std::size_t off, std::size_t n, bool more) {
    return raw_in(44, f6::fragment_header(17, static_cast<std::uint16_t>(off), more, id) + l4.substr(off, n));
  };
  // In order, then out of order.
  for (std::uint32_t id : {1u, 2u}) {
    std::vector<std::string> pieces = {frag(id, 0, 1232, true), frag(id, 1232, 1232, true),
                                       frag(id, 2464, l4.size() - 2464, false)};
    if (id == 2) std::reverse(pieces.begin(), pieces.end());
    for (const auto& p : pieces) in(p);
    step();
  }
  ASSERT_EQ(rec.got.size(), 2u);
  EXPECT_EQ(rec.got[0].second, payload);
  EXPECT_EQ(rec.got[1].second, payload);
  EXPECT_EQ(stats().reassembled.get(), 2u);
  // Overlapping: the datagram goes (RFC 5722), and what comes after it too.
  in(frag(3, 0, 1232, true));
  in(frag(3, 1224, 1232, true));
  in(frag(3, 2464, l4.size() - 2464, false));
  step();
  EXPECT_EQ(rec.got.size(), 2u);
  EXPECT_GE(stats().dropped(drop_reason::frag_overlap), 2u);
  (void)out();
  // Never completed: dropped when its time is up, and the sender told
  // (Time Exceeded code 1, RFC 8200 4.5) since the first fragment came.
  const std::string first = frag(4, 0, 1232, true);
  in(first);
  in(frag(6, 1232, 1232, true));  // no first fragment: nothing to tell
  step();
  clock.advance(11s);
  step();
  EXPECT_EQ(stats().dropped(drop_reason::frag_timeout), 2u);
  EXPECT_EQ(st().reassembler().held_packets(), 0u);
  auto te = out();
  ASSERT_EQ(te.size(), 1u);
  EXPECT_EQ(te[0].icmp_type, 3);
  EXPECT_EQ(te[0].icmp_code, 1);
  EXPECT_EQ(te[0].dst, peer);
  EXPECT_TRUE(te[0].checksum_ok);
  EXPECT_EQ(te[0].icmp_rest, first.substr(14, 1232));
  // An atomic fragment (offset 0, no more) is a whole datagram (RFC 6946).
  in(raw_in(44, f6::fragment_header(17, 0, false, 5) + f6::udp(peer, ours, 1, 7, "atomic")));
  step();
  ASSERT_EQ(rec.got.size(), 3u);
  EXPECT_EQ(rec.got[2].second, "atomic");
  EXPECT_EQ(stats().reassembled.get(), 2u);
}

// RFC 7112 (review finding 9): a first fragment must hold the whole header
// chain and the upper-layer header; one that does not is dropped at once
// and answered with a parameter problem, code 3, never held.
TEST_F(stack6_test, a_first_fragment_without_the_whole_header_chain_is_dropped_and_answered) {
  introduce();
  recorder rec;
  ASSERT_TRUE(l->udp_bind(ep(f6::a6("::"), 7), rec).ok());
  const std::string l4 = f6::udp(peer, ours, 1, 7, std::string(100, 'u'));
  const std::string opts = f6::options_header(17, std::string(4, '\0'));  // PadN, 8 bytes in all
  struct cut_case {
    std::string after_fragment_header;  // what the first fragment carries
    bool whole;
  };
  const cut_case cases[] = {
      {opts.substr(0, 4), false},             // the destination options header cut
      {opts + l4.substr(0, 6), false},        // the UDP header cut
      {opts + l4.substr(0, 16), true},        // all of it: held for reassembly
  };
  std::uint32_t id = 40;
  for (const auto& c : cases) {
    const auto before = stats().dropped(drop_reason::ipv6_incomplete_chain);
    const std::string frame = raw_in(44, f6::fragment_header(60, 0, true, ++id) + c.after_fragment_header);
    in(frame);
    step();
    auto f = out();
    if (c.whole) {
      EXPECT_TRUE(f.empty());
      EXPECT_EQ(stats().dropped(drop_reason::ipv6_incomplete_chain), before);
      EXPECT_EQ(st().reassembler().held_packets(), 1u);
      continue;
    }
    EXPECT_EQ(stats().dropped(drop_reason::ipv6_incomplete_chain), before + 1);
    EXPECT_EQ(st().reassembler().held_packets(), 0u) << "not held";
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].icmp_type, 4);
    EXPECT_EQ(f[0].icmp_code, 3);
    EXPECT_EQ(f[0].icmp_word, 0u);
    EXPECT_TRUE(f[0].checksum_ok);
    EXPECT_EQ(f[0].icmp_rest, frame.substr(14));
    clock.advance(1s);  // keep clear of the rate limit
    step();
  }
  // The held one completes.
  in(raw_in(44, f6::fragment_header(60, 24, false, id) + (opts + l4).substr(24)));
  step();
  ASSERT_EQ(rec.got.size(), 1u);
  EXPECT_EQ(rec.got[0].second, std::string(100, 'u'));
}

// RFC 7739 (review finding 7): fragment ids are not a
// counter a receiver can read the next one off, and each destination's
// differ from another's.
TEST_F(stack6_test, fragment_ids_differ_per_destination_and_do_not_follow_one_counter) {
  introduce();
  introduce(f6::a6("fd00::9"));
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  auto send_big = [&](const f6::addr& to) {
    EXPECT_TRUE((*s)->send_to(ep(to, 99), std::string(3000, 'b')));
    step();
    std::uint32_t id = 0;
    int firsts = 0;
    for (const auto& d : out()) {
      if (d.fragment && d.fragment_offset == 0 && d.dst == to) {
        id = d.fragment_id;
        ++firsts;
      }
    }
    EXPECT_EQ(firsts, 1);
    return id;
  };
  const std::uint32_t a1 = send_big(peer);
  const std::uint32_t b1 = send_big(f6::a6("fd00::9"));
  const std::uint32_t a2 = send_big(peer);
  EXPECT_NE(a1, a2) << "one destination's ids stay apart";
  EXPECT_NE(b1, a1 + 1) << "another destination's id is not the next of a counter";
  EXPECT_GT(std::max(a1, b1) - std::min(a1, b1), 1000u) << a1 << " " << b1;
}

TEST_F(stack6_test, a_big_ping_is_reassembled_and_answered_in_fragments) {
  introduce();
  const std::string data(2000, 'p');
  const std::string icmp = f6::icmpv6(peer, ours, 128, 0, f6::echo_body(9, 1, data));
  in(raw_in(44, f6::fragment_header(58, 0, true, 77) + icmp.substr(0, 1232)));
  in(raw_in(44, f6::fragment_header(58, 1232, false, 77) + icmp.substr(1232)));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 2u);
  std::map<std::uint16_t, std::string> parts;
  for (const auto& d : f) parts[d.fragment_offset] = d.l4;
  std::string whole;
  for (auto& [o, b] : parts) whole += b;
  auto d = f6::decode(std::string(12, '\0') + "\x86\xdd" + f6::ipv6(ours, peer, 58, whole));
  EXPECT_TRUE(d.checksum_ok);
  EXPECT_EQ(d.icmp_type, 129);
  EXPECT_EQ(d.icmp_rest, data);
}

// Replies leave from the address the peer sent to (review finding 3): a
// socket bound to a second --ip6 address answers from it, both the zero-copy
// echo and a copied datagram, and a reassembled ping to it is answered from
// it, each checksummed over that source (a different source would make the
// peer drop them).
TEST_F(stack6_test, replies_to_a_second_address_leave_from_it) {
  const f6::addr second = f6::a6("fd00::3");
  make(transport_options({"fd00::2/64", "fd00::3/64"}));
  introduce();
  auto s = l->udp_bind(ep(second, 7), echo);
  ASSERT_TRUE(s.ok()) << s.err().message;
  in(udp_in(5000, 7, "to the second address", second));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].src, second);
  EXPECT_TRUE(f[0].checksum_ok);
  EXPECT_EQ(f[0].payload, "to the second address");
  // The copying path: a datagram the application writes.
  recorder rec;
  auto c = l->udp_bind(ep(second, 8), rec);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->send_to(ep(peer, 6000), "written"));
  step();
  f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].src, second);
  EXPECT_TRUE(f[0].checksum_ok);
  EXPECT_EQ(f[0].payload, "written");
  // A reassembled ping: copied into fresh buffers, fragmented again.
  const std::string icmp = f6::icmpv6(peer, second, 128, 0, f6::echo_body(9, 1, std::string(2000, 'p')));
  in(raw_in(44, f6::fragment_header(58, 0, true, 78) + icmp.substr(0, 1232), second));
  in(raw_in(44, f6::fragment_header(58, 1232, false, 78) + icmp.substr(1232), second));
  step();
  f = out();
  ASSERT_EQ(f.size(), 2u);
  std::map<std::uint16_t, std::string> parts;
  for (const auto& d : f) {
    EXPECT_EQ(d.src, second);
    parts[d.fragment_offset] = d.l4;
  }
  std::string whole;
  for (auto& [o, b] : parts) whole += b;
  auto d = f6::decode(std::string(12, '\0') + "\x86\xdd" + f6::ipv6(second, peer, 58, whole));
  EXPECT_TRUE(d.checksum_ok);
  EXPECT_EQ(d.icmp_type, 129);
}

TEST_F(stack6_test, datagrams_to_our_own_address_loop_back) {
  step();
  (void)out();
  recorder a, b;
  auto sa = l->udp_bind(ep(ours, 20), a);
  auto sb = l->udp_bind(ep(f6::a6("::"), 21), b);
  ASSERT_TRUE(sa.ok() && sb.ok());
  ASSERT_TRUE((*sa)->send_to(ep(ours, 21), "to myself"));
  step(3);
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].second, "to myself");
  EXPECT_EQ(b.got[0].first, ep(ours, 20));
  EXPECT_TRUE(out().empty()) << "nothing on the wire";
}

TEST_F(stack6_test, off_link_destinations_go_through_gateway6) {
  make(transport_options({"fd00::2/64"}, "fe80::1"));
  step();
  (void)out();
  recorder rec;
  auto s = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->send_to(ep(f6::a6("2001:db8::1"), 99), "far"));
  step();
  auto f = out();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].nd_target, f6::a6("fe80::1")) << "the gateway is resolved";
  EXPECT_EQ(f[0].src, our_ll()) << "link-local asks link-local";
  // Without a gateway: a counted drop.
  make();
  step();
  (void)out();
  auto s2 = l->udp_bind(ep(f6::a6("::"), 9), rec);
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE((*s2)->send_to(ep(f6::a6("2001:db8::1"), 99), "far"));
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::no_route), 1u);
}

}  // namespace
}  // namespace sluice::inet
