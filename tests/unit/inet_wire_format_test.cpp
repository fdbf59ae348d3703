// The user-space stack's parsers, writers and checksum, against frames built
// independently (tests/support/frames.cpp), and its addressing flags.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "frames.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {
namespace {

namespace fr = test::frames;

const std::byte* bytes(const std::string& s) { return reinterpret_cast<const std::byte*>(s.data()); }

TEST(inet_checksum, matches_rfc1071_and_an_independent_computation_for_any_split) {
  // RFC 1071 section 3's example: the sum of these words is 0xddf2.
  const unsigned char ex[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  internet_checksum c;
  c.add(ex, sizeof ex);
  std::uint16_t stored = c.finish();
  unsigned char out[2];
  std::memcpy(out, &stored, 2);
  EXPECT_EQ((out[0] << 8) | out[1], 0xffff - 0xddf2);

  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string data(rng() % 300, '\0');
    for (auto& ch : data) ch = static_cast<char>(rng());
    const std::uint16_t want = fr::checksum(data);
    // Cut into up to four pieces of any length, odd ones included.
    internet_checksum pieces;
    std::size_t at = 0;
    while (at < data.size()) {
      const std::size_t n = std::min<std::size_t>(data.size() - at, rng() % 17);
      pieces.add(data.data() + at, n);
      at += n;
    }
    std::uint16_t got = pieces.finish();
    unsigned char be[2];
    std::memcpy(be, &got, 2);
    ASSERT_EQ((be[0] << 8) | be[1], want) << "round " << round << " size " << data.size();
  }
}

TEST(inet_checksum, is_zero_over_bytes_that_include_a_correct_checksum) {
  const std::string h = fr::ipv4(fr::ip("10.0.0.1"), fr::ip("10.0.0.2"), 17, "");
  EXPECT_EQ(checksum_of(h.data(), 20), 0);
}

TEST(inet_wire_format, ethernet_needs_fourteen_bytes) {
  const std::string f = fr::ethernet(mac_address::broadcast(), mac_address{{2, 0, 0, 0, 0, 1}}, 0x0806, "x");
  ethernet_header e;
  EXPECT_EQ(parse_ethernet(bytes(f), f.size(), e), drop_reason::none);
  EXPECT_TRUE(e.dst.is_broadcast());
  EXPECT_EQ(e.src, (mac_address{{2, 0, 0, 0, 0, 1}}));
  EXPECT_EQ(e.type, 0x0806);
  for (std::size_t n = 0; n < 14; ++n) EXPECT_EQ(parse_ethernet(bytes(f), n, e), drop_reason::eth_truncated) << n;
}

TEST(inet_wire_format, arp_accepts_ethernet_ipv4_requests_and_replies_only) {
  const mac_address m{{2, 0, 0, 0, 0, 9}};
  std::string a = fr::arp(1, m, fr::ip("10.0.0.9"), mac_address{}, fr::ip("10.0.0.2"));
  arp_message out;
  ASSERT_EQ(parse_arp(bytes(a), a.size(), out), drop_reason::none);
  EXPECT_EQ(out.op, 1);
  EXPECT_EQ(out.sender_mac, m);
  EXPECT_EQ(out.sender_ip, fr::ip("10.0.0.9"));
  EXPECT_EQ(out.target_ip, fr::ip("10.0.0.2"));
  EXPECT_EQ(parse_arp(bytes(a), 27, out), drop_reason::arp_truncated);
  for (std::size_t at : {1u, 3u, 4u, 5u}) {
    std::string bad = a;
    bad[at] = static_cast<char>(bad[at] ^ 0x40);
    EXPECT_EQ(parse_arp(bytes(bad), bad.size(), out), drop_reason::arp_bad_format) << at;
  }
  std::string op3 = fr::arp(3, m, 1, mac_address{}, 2);
  EXPECT_EQ(parse_arp(bytes(op3), op3.size(), out), drop_reason::arp_bad_op);
  // Written back, it reads the same.
  ASSERT_EQ(parse_arp(bytes(a), a.size(), out), drop_reason::none);
  std::string w(28, '\0');
  write_arp(reinterpret_cast<std::byte*>(w.data()), out);
  EXPECT_EQ(w, a);
}

TEST(inet_wire_format, ipv4_checks_every_field_it_relies_on) {
  const std::uint32_t s = fr::ip("10.0.0.1"), d = fr::ip("10.0.0.2");
  ipv4_header h;
  std::string ok = fr::ipv4(s, d, 17, "payload!");
  ASSERT_EQ(parse_ipv4(bytes(ok), ok.size(), true, h), drop_reason::none);
  EXPECT_EQ(h.header_len, 20);
  EXPECT_EQ(h.total_len, 28);
  EXPECT_EQ(h.protocol, 17);
  EXPECT_EQ(h.src, s);
  EXPECT_EQ(h.dst, d);
  EXPECT_FALSE(h.is_fragment());
  // Link padding after total_len is allowed.
  std::string padded = ok + std::string(18, '\0');
  EXPECT_EQ(parse_ipv4(bytes(padded), padded.size(), true, h), drop_reason::none);
  EXPECT_EQ(h.total_len, 28);

  auto reason = [&](const std::string& pkt, bool verify = true) { return parse_ipv4(bytes(pkt), pkt.size(), verify, h); };
  EXPECT_EQ(parse_ipv4(bytes(ok), 19, true, h), drop_reason::ipv4_truncated);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.version = 6})), drop_reason::ipv4_bad_version);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.ihl = 4})), drop_reason::ipv4_bad_header_length);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.ihl = 15})), drop_reason::ipv4_truncated);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.total_len = 19})), drop_reason::ipv4_bad_total_length);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.total_len = 200})), drop_reason::ipv4_truncated);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.bad_checksum = true})), drop_reason::ipv4_bad_checksum);
  // A device that checked the checksum: not verified again.
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.bad_checksum = true}), false), drop_reason::none);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.extra_flags = 0x8000})), drop_reason::ipv4_bad_flags);
  EXPECT_EQ(reason(fr::ipv4(s, d, 17, "x", {.ttl = 0})), drop_reason::ipv4_ttl_zero);

  // Options are skipped (and covered by the checksum).
  std::string opts = fr::ipv4(s, d, 17, "abcd", {.options = std::string("\x01\x01\x01\x00", 4)});
  ASSERT_EQ(reason(opts), drop_reason::none);
  EXPECT_EQ(h.header_len, 24);
  EXPECT_EQ(h.payload_len(), 4);

  std::string frag = fr::ipv4(s, d, 17, std::string(16, 'f'), {.fragment_offset = 1480, .more_fragments = true});
  ASSERT_EQ(reason(frag), drop_reason::none);
  EXPECT_TRUE(h.is_fragment());
  EXPECT_EQ(h.fragment_offset, 1480);
  EXPECT_TRUE(h.more_fragments);
}

TEST(inet_wire_format, ipv4_written_by_the_stack_is_valid) {
  ipv4_header h;
  h.total_len = 48;
  h.id = 0x1234;
  h.fragment_offset = 8 * 3;
  h.more_fragments = true;
  h.protocol = 17;
  h.src = fr::ip("192.168.1.1");
  h.dst = fr::ip("192.168.1.2");
  std::string w(48, '\0');
  write_ipv4(reinterpret_cast<std::byte*>(w.data()), h, true);
  auto d = fr::decode(fr::ethernet(mac_address{}, mac_address{}, 0x0800, w));
  EXPECT_TRUE(d.ip_checksum_ok);
  EXPECT_EQ(d.ip_id, 0x1234);
  EXPECT_EQ(d.fragment_offset, 24);
  EXPECT_TRUE(d.more_fragments);
  EXPECT_EQ(d.src_ip, h.src);
}

TEST(inet_wire_format, udp_length_must_fit_the_ip_payload) {
  udp_header u;
  std::string ok = fr::udp(1, 2, 1000, 2000, "hello");
  ASSERT_EQ(parse_udp(bytes(ok), ok.size(), u), drop_reason::none);
  EXPECT_EQ(u.src_port, 1000);
  EXPECT_EQ(u.dst_port, 2000);
  EXPECT_EQ(u.length, 13);
  EXPECT_EQ(parse_udp(bytes(ok), 7, u), drop_reason::udp_truncated);
  std::string short_len = fr::udp(1, 2, 1, 2, "hello", {.length = 7});
  EXPECT_EQ(parse_udp(bytes(short_len), short_len.size(), u), drop_reason::udp_bad_length);
  std::string long_len = fr::udp(1, 2, 1, 2, "hello", {.length = 14});
  EXPECT_EQ(parse_udp(bytes(long_len), long_len.size(), u), drop_reason::udp_bad_length);
}

TEST(inet_wire_format, icmp_needs_its_eight_byte_header) {
  icmp_header ih;
  std::string m = fr::icmp(8, 0, 1, 2, "ping");
  ASSERT_EQ(parse_icmp(bytes(m), m.size(), ih), drop_reason::none);
  EXPECT_EQ(ih.type, 8);
  EXPECT_EQ(parse_icmp(bytes(m), 7, ih), drop_reason::icmp_truncated);
}

TEST(inet_addresses, ipv4_and_mac_text) {
  EXPECT_EQ(parse_ipv4("10.1.2.3"), std::optional<std::uint32_t>(0x0a010203));
  EXPECT_EQ(format_ipv4(0x0a010203), "10.1.2.3");
  for (const char* bad : {"", "10.1.2", "10.1.2.3.4", "256.1.1.1", "1..1.1", "a.b.c.d", "1.2.3.4 ", "-1.2.3.4", "1234.1.1.1"}) {
    EXPECT_FALSE(parse_ipv4(bad).has_value()) << bad;
  }
  auto m = mac_address::parse("02:aB:00:10:ff:01");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->to_string(), "02:ab:00:10:ff:01");
  EXPECT_FALSE(mac_address::parse("02:ab:00:10:ff").has_value());
  EXPECT_FALSE(mac_address::parse("02-ab-00-10-ff-01").has_value());
  EXPECT_TRUE(mac_address::broadcast().is_group());
  EXPECT_FALSE(m->is_group());
}

TEST(inet_addresses, interface_flags_say_what_is_wrong) {
  auto c = interface_config::parse("10.0.0.2/24", "10.0.0.1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->netmask(), 0xffffff00u);
  EXPECT_EQ(c->subnet_broadcast(), fr::ip("10.0.0.255"));
  EXPECT_TRUE(c->on_link(fr::ip("10.0.0.77")));
  EXPECT_FALSE(c->on_link(fr::ip("10.0.1.1")));
  EXPECT_TRUE(c->accepts(fr::ip("10.0.0.255")));
  EXPECT_TRUE(c->accepts(0xffffffffu));
  EXPECT_FALSE(c->accepts(fr::ip("10.0.0.3")));
  EXPECT_EQ(c->to_string(), "10.0.0.2/24 gateway 10.0.0.1");

  auto msg = [](std::string_view ip, std::string_view gw) {
    auto r = interface_config::parse(ip, gw);
    return r.ok() ? std::string("ok") : r.err().message;
  };
  EXPECT_NE(msg("", "").find("--ip=ADDR/PREFIX is needed"), std::string::npos);
  EXPECT_NE(msg("10.0.0.2", "").find("give a prefix"), std::string::npos);
  EXPECT_NE(msg("10.0.0.2/33", "").find("prefix must be 1 to 32"), std::string::npos);
  EXPECT_NE(msg("10.0.0.x/24", "").find("not an IPv4 address"), std::string::npos);
  EXPECT_NE(msg("10.0.0.255/24", "").find("not a usable host address"), std::string::npos);
  EXPECT_NE(msg("127.0.0.1/8", "").find("not a usable host address"), std::string::npos);
  EXPECT_NE(msg("10.0.0.2/24", "10.0.1.1").find("must be another address inside 10.0.0.2/24"), std::string::npos);
  EXPECT_EQ(msg("10.0.0.2/31", ""), "ok");
}

TEST(inet_ip_address, keeps_both_families_in_one_16_byte_form) {
  const ip_address a = ip_address::v4(0x0a000001);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.v4_addr(), 0x0a000001u);
  EXPECT_EQ(a.to_string(), "10.0.0.1");
  EXPECT_EQ(ip_address::parse("10.0.0.1"), a);
  EXPECT_EQ(ip_address::parse("::ffff:10.0.0.1"), a);  // the mapped form is the same address

  const auto b = ip_address::parse("fd00::1");
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->is_v4());
  EXPECT_EQ(b->bytes[0], 0xfd);
  EXPECT_EQ(b->bytes[15], 0x01);
  EXPECT_EQ(b->to_string(), "fd00::1");
  EXPECT_FALSE(b->is_v6_multicast());
  EXPECT_TRUE(ip_address::parse("ff02::1")->is_v6_multicast());
  EXPECT_TRUE(ip_address::parse("fe80::1")->is_v6_link_local());
  EXPECT_FALSE(ip_address::parse("fec0::1")->is_v6_link_local());
  EXPECT_TRUE(ip_address{}.is_unspecified());
  EXPECT_FALSE(ip_address{}.is_v4());

  EXPECT_FALSE(ip_address::parse("").has_value());
  EXPECT_FALSE(ip_address::parse("10.0.0.256").has_value());
  EXPECT_FALSE(ip_address::parse("fd00::1::2").has_value());
  EXPECT_FALSE(ip_address::parse(std::string(100, '1')).has_value());

  // Through endpoints, both ways.
  EXPECT_EQ(a.with_port(80).to_string(), "10.0.0.1:80");
  EXPECT_EQ(b->with_port(443).to_string(), "[fd00::1]:443");
  EXPECT_EQ(ip_address::of(endpoint::parse("[fd00::1]:443").value()), *b);
  EXPECT_EQ(ip_address::of(endpoint::ipv4(0x0a000001, 1)), a);
}


TEST(inet_ip_address, pseudo_header_of_either_family) {
  // IPv4: the same sum as the host-order form.
  internet_checksum a, b;
  add_pseudo_header(a, ip_address::v4(0x0a000001), ip_address::v4(0x0a000002), 6, 40);
  add_pseudo_header(b, 0x0a000001u, 0x0a000002u, 6, std::uint16_t{40});
  EXPECT_EQ(a.finish(), b.finish());
  // IPv6 (RFC 8200 8.1): src, dst, 32-bit length, three zero bytes, next header.
  const auto s6 = *ip_address::parse("fd00::1"), d6 = *ip_address::parse("fd00::2");
  unsigned char raw[40] = {};
  std::memcpy(raw, s6.data(), 16);
  std::memcpy(raw + 16, d6.data(), 16);
  raw[35] = 40;
  raw[39] = 58;
  internet_checksum c;
  add_pseudo_header(c, s6, d6, 58, 40);
  EXPECT_EQ(c.finish(), checksum_of(raw, sizeof raw));
}

}  // namespace
}  // namespace sluice::inet
