// The IPv6 side of the stack's wire format (RFC 8200, RFC 4443, RFC 4861)
// against frames built independently (tests/support/frames_ipv6.cpp): the
// fixed header, every extension-header case of the walker (hop-by-hop,
// routing type 0 and others with and without segments left, destination
// options with each unknown-option action, fragment headers, unknown next
// headers, a chain too long), ND messages and their options, and the
// ICMPv6/UDP checksum over the IPv6 pseudo-header.

#include <gtest/gtest.h>

#include <string>

#include "frames_ipv6.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {
namespace {

namespace f6 = test::frames6;

const std::byte* bytes(const std::string& s) { return reinterpret_cast<const std::byte*>(s.data()); }
ip_address addr(const char* t) { return ip_address::v6(f6::a6(t).data()); }

const f6::addr src = f6::a6("fd00::1");
const f6::addr dst = f6::a6("fd00::2");

TEST(ipv6_wire, parses_the_fixed_header) {
  std::string pkt = f6::ipv6(src, dst, 17, std::string(12, 'x'), 7);
  pkt += "pad";  // link padding past the payload length is allowed
  ipv6_header h;
  ASSERT_EQ(parse_ipv6(bytes(pkt), pkt.size(), h), drop_reason::none);
  EXPECT_EQ(h.payload_len, 12);
  EXPECT_EQ(h.next_header, 17);
  EXPECT_EQ(h.hop_limit, 7);
  EXPECT_EQ(h.src, addr("fd00::1"));
  EXPECT_EQ(h.dst, addr("fd00::2"));
}

TEST(ipv6_wire, rejects_short_headers_bad_versions_and_lengths_past_the_bytes) {
  ipv6_header h;
  std::string pkt = f6::ipv6(src, dst, 17, "abcd");
  EXPECT_EQ(parse_ipv6(bytes(pkt), 39, h), drop_reason::ipv6_truncated);
  std::string v4 = pkt;
  v4[0] = 0x45;
  EXPECT_EQ(parse_ipv6(bytes(v4), v4.size(), h), drop_reason::ipv6_bad_version);
  std::string longer = f6::ipv6(src, dst, 17, "abcd", 64, 5);
  EXPECT_EQ(parse_ipv6(bytes(longer), longer.size(), h), drop_reason::ipv6_truncated);
}

TEST(ipv6_wire, writes_a_header_its_parser_and_an_independent_decoder_agree_on) {
  std::string buf(40, '\0');
  ipv6_header h;
  h.payload_len = 0;
  h.next_header = 58;
  h.hop_limit = 255;
  h.src = addr("fe80::1");
  h.dst = addr("ff02::1");
  write_ipv6(reinterpret_cast<std::byte*>(buf.data()), h);
  auto d = f6::decode(std::string(14, '\0').replace(12, 2, "\x86\xdd") + buf);
  EXPECT_EQ(d.hop_limit, 255);
  EXPECT_EQ(d.src, f6::a6("fe80::1"));
  EXPECT_EQ(d.dst, f6::a6("ff02::1"));
  EXPECT_EQ(d.upper, 58);
}

// Walks the payload of an IPv6 packet whose first next header is `first`.
drop_reason walk(const std::string& payload, std::uint8_t first, ipv6_chain& c, bool multicast = false) {
  return walk_ipv6_extensions(bytes(payload), payload.size(), first, 0, multicast, c);
}

TEST(ipv6_wire, walks_hop_by_hop_routing_with_no_segments_left_and_destination_options_to_the_upper_layer) {
  const std::string udp = f6::udp(src, dst, 1, 2, "x");
  std::string payload = f6::options_header(43, std::string("\x05\x02\x00\x00", 4)) +  // router alert: skip
                        f6::routing_header(60, 4, 0) + f6::options_header(17, "") + udp;
  ipv6_chain c;
  ASSERT_EQ(walk(payload, 0, c), drop_reason::none);
  EXPECT_EQ(c.upper, 17);
  EXPECT_EQ(c.upper_at, payload.size() - udp.size());
  EXPECT_FALSE(c.fragment);
}

TEST(ipv6_wire, hop_by_hop_anywhere_but_first_is_a_parameter_problem_code_1) {
  std::string payload = f6::options_header(0, "") + f6::options_header(17, "");
  ipv6_chain c;
  EXPECT_EQ(walk(payload, 60, c), drop_reason::ipv6_hbh_not_first);
  EXPECT_TRUE(c.send_param_problem);
  EXPECT_EQ(c.param_code, 1);
  EXPECT_EQ(c.param_pointer, 40u);  // the destination options header's next header field
}

TEST(ipv6_wire, routing_type_0_is_dropped_even_with_no_segments_left) {
  ipv6_chain c;
  EXPECT_EQ(walk(f6::routing_header(17, 0, 0), 43, c), drop_reason::ipv6_routing_type0);
  EXPECT_FALSE(c.send_param_problem);
  ipv6_chain c2;
  EXPECT_EQ(walk(f6::routing_header(17, 0, 3), 43, c2), drop_reason::ipv6_routing_type0);
}

TEST(ipv6_wire, an_unknown_routing_type_with_segments_left_points_at_its_type) {
  ipv6_chain c;
  std::string payload = f6::options_header(43, "") + f6::routing_header(17, 4, 2);
  EXPECT_EQ(walk(payload, 0, c), drop_reason::ipv6_routing_unknown);
  EXPECT_TRUE(c.send_param_problem);
  EXPECT_EQ(c.param_code, 0);
  EXPECT_EQ(c.param_pointer, 40u + 8 + 2);
}

TEST(ipv6_wire, unknown_options_take_the_action_their_two_high_bits_say) {
  // 00: skip; 01: discard quietly; 10: discard and answer; 11: answer unless multicast.
  const std::string opt00("\x1e\x01\x00", 3), opt01("\x5e\x01\x00", 3), opt10("\x9e\x01\x00", 3),
      opt11("\xde\x01\x00", 3);
  ipv6_chain c;
  EXPECT_EQ(walk(f6::options_header(17, opt00), 60, c), drop_reason::none);
  EXPECT_EQ(c.upper, 17);
  for (bool multicast : {false, true}) {
    ipv6_chain c1;
    EXPECT_EQ(walk(f6::options_header(17, opt01), 60, c1, multicast), drop_reason::ipv6_unknown_option);
    EXPECT_FALSE(c1.send_param_problem);
    ipv6_chain c2;
    EXPECT_EQ(walk(f6::options_header(17, std::string("\x01\x00", 2) + opt10), 60, c2, multicast), drop_reason::ipv6_unknown_option);
    EXPECT_TRUE(c2.send_param_problem);
    EXPECT_EQ(c2.param_code, 2);
    EXPECT_EQ(c2.param_pointer, 40u + 2 + 2);  // after the header's 2 bytes and a PadN of 2
    ipv6_chain c3;
    EXPECT_EQ(walk(f6::options_header(17, opt11), 0, c3, multicast), drop_reason::ipv6_unknown_option);
    EXPECT_EQ(c3.send_param_problem, !multicast);
  }
}

TEST(ipv6_wire, an_option_running_past_its_header_is_dropped) {
  std::string h = f6::options_header(17, std::string("\x1e\x01\x00", 3));
  h[3] = 10;  // the option now claims 10 bytes of an 8-byte header
  ipv6_chain c;
  EXPECT_EQ(walk(h, 60, c), drop_reason::ipv6_bad_option);
}

TEST(ipv6_wire, a_header_past_the_payload_is_truncated) {
  std::string h = f6::options_header(17, "");
  h[1] = 3;  // 32 bytes claimed, 8 present
  ipv6_chain c;
  EXPECT_EQ(walk(h, 60, c), drop_reason::ipv6_ext_truncated);
  ipv6_chain c2;
  EXPECT_EQ(walk(std::string("\x11\x00\x00", 3), 44, c2), drop_reason::ipv6_ext_truncated);
}

TEST(ipv6_wire, stops_at_a_fragment_header_and_reports_it) {
  std::string payload = f6::options_header(44, "") + f6::fragment_header(17, 1448, true, 0xabcdef01) + "data";
  ipv6_chain c;
  ASSERT_EQ(walk(payload, 0, c), drop_reason::none);
  EXPECT_TRUE(c.fragment);
  EXPECT_EQ(c.fragment_offset, 1448);
  EXPECT_TRUE(c.more_fragments);
  EXPECT_EQ(c.fragment_id, 0xabcdef01u);
  EXPECT_EQ(c.upper, 17);
  EXPECT_EQ(c.upper_at, 16);
}

TEST(ipv6_wire, an_unknown_next_header_is_a_parameter_problem_code_1_at_the_field_naming_it) {
  ipv6_chain c;
  EXPECT_EQ(walk("", 253, c), drop_reason::ipv6_unknown_next_header);
  EXPECT_TRUE(c.send_param_problem);
  EXPECT_EQ(c.param_code, 1);
  EXPECT_EQ(c.param_pointer, 6u);  // the fixed header's next header field
  ipv6_chain c2;
  EXPECT_EQ(walk(f6::options_header(253, ""), 60, c2), drop_reason::ipv6_unknown_next_header);
  EXPECT_EQ(c2.param_pointer, 40u);
  // After a fragment header (walking on from it): the fragment header's field.
  const std::string after = f6::options_header(253, "");
  ipv6_chain c3;
  EXPECT_EQ(walk_ipv6_extensions(bytes(after), after.size(), 60, 8, false, c3), drop_reason::ipv6_unknown_next_header);
  EXPECT_EQ(c3.param_pointer, 40u + 8);
}

// RFC 4443 2.4 (e.1): an ICMPv6 error is never answered with one, even
// when its extension headers ask for a parameter problem (review finding 5b).
TEST(ipv6_wire, no_parameter_problem_is_due_about_an_icmpv6_error_behind_the_headers) {
  const std::string unknown_10 = std::string("\x9e\x01\x00", 3);  // action 10: discard and answer
  for (const std::uint8_t type : {1, 2, 3, 4, 127, 128, 135}) {
    const std::string icmp = f6::icmpv6(src, dst, type, 0, std::string(8, 'q'));
    ipv6_chain c;
    EXPECT_EQ(walk(f6::options_header(58, unknown_10) + icmp, 60, c), drop_reason::ipv6_unknown_option);
    EXPECT_EQ(c.send_param_problem, type >= 128) << int{type};
    // Behind another header, and behind a routing header with segments left.
    ipv6_chain c2;
    EXPECT_EQ(walk(f6::options_header(60, unknown_10) + f6::options_header(58, "") + icmp, 60, c2),
              drop_reason::ipv6_unknown_option);
    EXPECT_EQ(c2.send_param_problem, type >= 128) << int{type};
    ipv6_chain c3;
    EXPECT_EQ(walk(f6::routing_header(58, 4, 1) + icmp, 43, c3), drop_reason::ipv6_routing_unknown);
    EXPECT_EQ(c3.send_param_problem, type >= 128) << int{type};
  }
  // Any other upper layer is answered as before.
  ipv6_chain c;
  EXPECT_EQ(walk(f6::options_header(17, unknown_10) + f6::udp(src, dst, 1, 2, "x"), 60, c),
            drop_reason::ipv6_unknown_option);
  EXPECT_TRUE(c.send_param_problem);
}

TEST(ipv6_wire, no_next_header_delivers_nothing) {
  ipv6_chain c;
  EXPECT_EQ(walk("", 59, c), drop_reason::ipv6_no_next_header);
  EXPECT_FALSE(c.send_param_problem);
}

TEST(ipv6_wire, a_chain_longer_than_the_bound_is_dropped) {
  std::string payload;
  for (unsigned i = 0; i < ipv6_max_extension_headers; ++i) payload += f6::options_header(60, "");
  payload += f6::options_header(17, "");
  ipv6_chain c;
  EXPECT_EQ(walk(payload, 60, c), drop_reason::ipv6_chain_too_long);
  // One fewer is fine.
  std::string ok;
  for (unsigned i = 0; i + 1 < ipv6_max_extension_headers; ++i) ok += f6::options_header(60, "");
  ok += f6::options_header(17, "");
  ipv6_chain c2;
  EXPECT_EQ(walk(ok, 60, c2), drop_reason::none);
}

TEST(ipv6_wire, parses_solicitations_and_advertisements_with_their_link_layer_options) {
  const mac_address m{{0x02, 0, 0, 0, 0, 0x42}};
  const f6::addr target = f6::a6("fd00::2");
  std::string ns = f6::icmpv6(src, dst, 135, 0, f6::ns_body(target, m));
  nd_message msg;
  ASSERT_EQ(parse_nd(bytes(ns), ns.size(), msg), drop_reason::none);
  EXPECT_EQ(msg.type, 135);
  EXPECT_EQ(msg.target, addr("fd00::2"));
  EXPECT_TRUE(msg.has_link_layer);
  EXPECT_EQ(msg.link_layer, m);
  std::string na = f6::icmpv6(src, dst, 136, 0, f6::na_body(0x60, target, m));
  nd_message a;
  ASSERT_EQ(parse_nd(bytes(na), na.size(), a), drop_reason::none);
  EXPECT_EQ(a.flags, 0x60);
  EXPECT_TRUE(a.has_link_layer);
  std::string bare = f6::icmpv6(src, dst, 135, 0, f6::ns_body(target, std::nullopt));
  nd_message b;
  ASSERT_EQ(parse_nd(bytes(bare), bare.size(), b), drop_reason::none);
  EXPECT_FALSE(b.has_link_layer);
}

TEST(ipv6_wire, rejects_nd_messages_with_bad_codes_options_or_targets) {
  const f6::addr target = f6::a6("fd00::2");
  nd_message m;
  std::string code = f6::icmpv6(src, dst, 135, 1, f6::ns_body(target, std::nullopt));
  EXPECT_EQ(parse_nd(bytes(code), code.size(), m), drop_reason::nd_bad_message);
  std::string zero_len = f6::icmpv6(src, dst, 135, 0, f6::ns_body(target, mac_address{}));
  zero_len[25] = 0;
  EXPECT_EQ(parse_nd(bytes(zero_len), zero_len.size(), m), drop_reason::nd_bad_message);
  std::string past = f6::icmpv6(src, dst, 135, 0, f6::ns_body(target, mac_address{}));
  past[25] = 2;
  EXPECT_EQ(parse_nd(bytes(past), past.size(), m), drop_reason::nd_bad_message);
  std::string group = f6::icmpv6(src, dst, 135, 0, f6::ns_body(f6::a6("ff02::1"), std::nullopt));
  EXPECT_EQ(parse_nd(bytes(group), group.size(), m), drop_reason::nd_bad_message);
  EXPECT_EQ(parse_nd(bytes(group), 23, m), drop_reason::nd_bad_message);
}

TEST(ipv6_wire, writes_nd_messages_an_independent_decoder_reads) {
  nd_message m;
  m.type = icmpv6_neighbor_advertisement;
  m.flags = nd_flag_solicited | nd_flag_override;
  m.target = addr("fd00::2");
  m.has_link_layer = true;
  m.link_layer = mac_address{{0x02, 1, 2, 3, 4, 5}};
  std::string icmp(32, '\0');
  ASSERT_EQ(write_nd(reinterpret_cast<std::byte*>(icmp.data()), m), 32u);
  internet_checksum c;
  add_pseudo_header(c, addr("fd00::2"), addr("fd00::1"), ip6_next_icmpv6, 32);
  c.add(icmp.data(), icmp.size());
  store_checksum(reinterpret_cast<std::byte*>(icmp.data()) + 2, c.finish());
  std::string frame = std::string(12, '\0') + "\x86\xdd" + f6::ipv6(dst, src, 58, icmp, 255);
  auto d = f6::decode(frame);
  EXPECT_TRUE(d.checksum_ok) << "the pseudo-header checksum matches the independent one";
  EXPECT_EQ(d.icmp_type, 136);
  EXPECT_EQ(d.nd_flags, 0x60);
  EXPECT_EQ(d.nd_target, f6::a6("fd00::2"));
  ASSERT_TRUE(d.nd_ll.has_value());
  EXPECT_EQ(*d.nd_ll, m.link_layer);
}

TEST(ipv6_wire, group_addresses_and_their_macs) {
  EXPECT_EQ(solicited_node_group(addr("fd00::12:3456:789a")), ip_address::v6(f6::solicited_node(f6::a6("fd00::12:3456:789a")).data()));
  EXPECT_EQ(solicited_node_group(addr("fd00::12:3456:789a")), addr("ff02::1:ff56:789a"));
  EXPECT_EQ(ipv6_multicast_mac(addr("ff02::1:ff56:789a")), (mac_address{{0x33, 0x33, 0xff, 0x56, 0x78, 0x9a}}));
  EXPECT_EQ(all_nodes_group(), addr("ff02::1"));
}

}  // namespace
}  // namespace sluice::inet

namespace sluice::inet {
namespace {

TEST(ipv6_interface_config, takes_repeated_ip6_flags_and_a_gateway6) {
  auto c = interface_config::parse("10.0.0.2/24", "", {"fd00::2/64", "2001:db8:1::5/48"}, "fe80::1");
  ASSERT_TRUE(c.ok()) << c.err().message;
  ASSERT_EQ(c->ip6.size(), 2u);
  EXPECT_EQ(c->ip6[1].address, ip_address::parse("2001:db8:1::5").value());
  EXPECT_EQ(c->ip6[1].prefix, 48u);
  EXPECT_TRUE(c->on_link6(ip_address::parse("2001:db8:1:ffff::9").value()));
  EXPECT_FALSE(c->on_link6(ip_address::parse("2001:db8:2::9").value()));
  EXPECT_TRUE(c->on_link6(ip_address::parse("fe80::1234").value())) << "link-local is always on link";
  EXPECT_EQ(c->source6_for(ip_address::parse("2001:db8:1::9").value())->address, c->ip6[1].address);
  EXPECT_EQ(c->to_string(), "10.0.0.2/24 fd00::2/64 2001:db8:1::5/48 gateway6 fe80::1");
}

TEST(ipv6_interface_config, refuses_what_is_not_a_usable_ipv6_address_with_the_flag_named) {
  struct bad {
    std::vector<std::string> ip6;
    std::string gw6;
    std::string says;
  };
  const bad cases[] = {
      {{"fd00::2"}, "", "--ip6=fd00::2: give a prefix"},
      {{"10.0.0.3/24"}, "", "not an IPv6 address"},
      {{"fd00::2/0"}, "", "the prefix must be 1 to 128"},
      {{"fd00::2/129"}, "", "the prefix must be 1 to 128"},
      {{"fd00::2/6x"}, "", "the prefix must be 1 to 128"},
      {{"ff02::1/64"}, "", "not a usable unicast address"},
      {{"::/64"}, "", "not a usable unicast address"},
      {{"::1/128"}, "", "not a usable unicast address"},
      {{"fe80::5/64"}, "", "comes from the MAC"},
      {{"fd00::2/64", "fd00::2/64"}, "", "given twice"},
      {{"fd00::2/64"}, "2001:db8::1", "--gateway6=2001:db8::1: must be link-local"},
      {{"fd00::2/64"}, "fd00::2", "not another host's"},
      {{"fd00::2/64"}, "nonsense", "not an IPv6 address"},
      {{}, "fe80::1", "needs an --ip6 address"},
      {{"1::1/64", "2::1/64", "3::1/64", "4::1/64", "5::1/64", "6::1/64", "7::1/64", "8::1/64", "9::1/64"}, "",
       "at most 8"},
  };
  for (const auto& b : cases) {
    auto c = interface_config::parse("10.0.0.2/24", "", b.ip6, b.gw6);
    ASSERT_FALSE(c.ok()) << b.says;
    EXPECT_NE(c.err().message.find(b.says), std::string::npos) << c.err().message;
  }
}

TEST(ipv6_interface_config, the_link_local_address_is_the_macs_modified_eui64) {
  const mac_address m{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  EXPECT_EQ(link_local_from_mac(m), ip_address::parse("fe80::5054:ff:fe12:3456").value());
  EXPECT_EQ(link_local_from_mac(m), ip_address::v6(f6::link_local_of(m).data()));
}

}  // namespace
}  // namespace sluice::inet
