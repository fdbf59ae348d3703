#include "frames_ipv6.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>

#include "frame_bytes.hpp"

namespace sluice::test::frames6 {

namespace {

using namespace frame_bytes;

void put_addr(std::string& s, const addr& a) {
  for (auto b : a) s.push_back(static_cast<char>(b));
}
addr get_addr(std::string_view s, std::size_t at) {
  addr a{};
  for (std::size_t i = 0; i < 16; ++i) a[i] = static_cast<std::uint8_t>(s[at + i]);
  return a;
}
// RFC 8200 8.1.
std::string pseudo(const addr& src, const addr& dst, std::uint8_t next, std::uint32_t len) {
  std::string p;
  put_addr(p, src);
  put_addr(p, dst);
  put32(p, len);
  put32(p, next);
  return p;
}
std::string with_checksum(std::string l4, std::size_t at, const addr& src, const addr& dst, std::uint8_t next,
                          bool bad) {
  std::uint16_t c = finish(sum_words(l4, sum_words(pseudo(src, dst, next, static_cast<std::uint32_t>(l4.size())))));
  if (next == 17 && c == 0) c = 0xffff;
  if (bad) c = static_cast<std::uint16_t>(c ^ 0x5a5a);
  l4[at] = static_cast<char>(c >> 8);
  l4[at + 1] = static_cast<char>(c);
  return l4;
}
std::string ethernet(const mac_address& dst, const mac_address& src, std::string_view payload) {
  std::string f;
  put_mac(f, dst);
  put_mac(f, src);
  put16(f, 0x86dd);
  f.append(payload);
  return f;
}

}  // namespace

addr a6(const char* text) {
  addr a{};
  if (inet_pton(AF_INET6, text, a.data()) != 1) {
    std::fprintf(stderr, "frames6::a6: bad address %s\n", text);
    std::abort();
  }
  return a;
}

addr solicited_node(const addr& a) {
  addr g = a6("ff02::1:ff00:0");
  g[13] = a[13];
  g[14] = a[14];
  g[15] = a[15];
  return g;
}

mac_address multicast_mac(const addr& g) { return mac_address{{0x33, 0x33, g[12], g[13], g[14], g[15]}}; }

addr link_local_of(const mac_address& m) {
  addr a = a6("fe80::");
  a[8] = static_cast<std::uint8_t>(m.bytes[0] ^ 0x02);
  a[9] = m.bytes[1];
  a[10] = m.bytes[2];
  a[11] = 0xff;
  a[12] = 0xfe;
  a[13] = m.bytes[3];
  a[14] = m.bytes[4];
  a[15] = m.bytes[5];
  return a;
}

std::string ipv6(const addr& src, const addr& dst, std::uint8_t next, std::string_view payload,
                 std::uint8_t hop_limit, std::optional<std::uint16_t> payload_len) {
  std::string s;
  put32(s, 6u << 28);
  put16(s, payload_len ? *payload_len : static_cast<std::uint16_t>(payload.size()));
  s.push_back(static_cast<char>(next));
  s.push_back(static_cast<char>(hop_limit));
  put_addr(s, src);
  put_addr(s, dst);
  s.append(payload);
  return s;
}

std::string options_header(std::uint8_t next, std::string_view options) {
  std::string s;
  s.push_back(static_cast<char>(next));
  s.push_back(0);
  s.append(options);
  const std::size_t pad = (8 - s.size() % 8) % 8;
  if (pad == 1) {
    s.push_back(0);  // Pad1
  } else if (pad >= 2) {
    s.push_back(1);  // PadN
    s.push_back(static_cast<char>(pad - 2));
    s.append(pad - 2, '\0');
  }
  s[1] = static_cast<char>(s.size() / 8 - 1);
  return s;
}

std::string routing_header(std::uint8_t next, std::uint8_t type, std::uint8_t segments_left) {
  std::string s;
  s.push_back(static_cast<char>(next));
  s.push_back(0);
  s.push_back(static_cast<char>(type));
  s.push_back(static_cast<char>(segments_left));
  put32(s, 0);
  return s;
}

std::string fragment_header(std::uint8_t next, std::uint16_t offset, bool more, std::uint32_t id) {
  std::string s;
  s.push_back(static_cast<char>(next));
  s.push_back(0);
  put16(s, static_cast<std::uint16_t>((offset & 0xfff8) | (more ? 1 : 0)));
  put32(s, id);
  return s;
}

std::string udp(const addr& src, const addr& dst, std::uint16_t sport, std::uint16_t dport, std::string_view payload,
                bool zero_checksum, bool bad_checksum) {
  std::string s;
  put16(s, sport);
  put16(s, dport);
  put16(s, static_cast<std::uint16_t>(8 + payload.size()));
  put16(s, 0);
  s.append(payload);
  if (zero_checksum) return s;
  return with_checksum(s, 6, src, dst, 17, bad_checksum);
}

std::string icmpv6(const addr& src, const addr& dst, std::uint8_t type, std::uint8_t code, std::string_view body,
                   bool bad_checksum) {
  std::string s;
  s.push_back(static_cast<char>(type));
  s.push_back(static_cast<char>(code));
  put16(s, 0);
  s.append(body);
  return with_checksum(s, 2, src, dst, 58, bad_checksum);
}

std::string echo_body(std::uint16_t id, std::uint16_t seq, std::string_view data) {
  std::string s;
  put16(s, id);
  put16(s, seq);
  s.append(data);
  return s;
}

std::string ns_body(const addr& target, std::optional<mac_address> source_ll) {
  std::string s(4, '\0');
  put_addr(s, target);
  if (source_ll) {
    s.push_back(1);
    s.push_back(1);
    put_mac(s, *source_ll);
  }
  return s;
}

std::string na_body(std::uint8_t flags, const addr& target, std::optional<mac_address> target_ll) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(flags);
  put_addr(s, target);
  if (target_ll) {
    s.push_back(2);
    s.push_back(1);
    put_mac(s, *target_ll);
  }
  return s;
}

std::string icmpv6_frame(const mac_address& dst_mac, const mac_address& src_mac, const addr& src, const addr& dst,
                         std::uint8_t type, std::uint8_t code, std::string_view body, std::uint8_t hop_limit) {
  return ethernet(dst_mac, src_mac, ipv6(src, dst, 58, icmpv6(src, dst, type, code, body), hop_limit));
}

std::string udp_frame(const mac_address& dst_mac, const mac_address& src_mac, const addr& src, const addr& dst,
                      std::uint16_t sport, std::uint16_t dport, std::string_view payload) {
  return ethernet(dst_mac, src_mac, ipv6(src, dst, 17, udp(src, dst, sport, dport, payload)));
}

decoded decode(std::string_view f) {
  decoded d;
  if (f.size() < 14) return d;
  d.dst_mac = get_mac(f, 0);
  d.src_mac = get_mac(f, 6);
  d.type = get16(f, 12);
  std::string_view b = f.substr(14);
  if (d.type != 0x86dd || b.size() < 40) return d;
  const std::uint16_t plen = get16(b, 4);
  if (40u + plen > b.size()) return d;
  std::uint8_t next = static_cast<std::uint8_t>(b[6]);
  d.hop_limit = static_cast<std::uint8_t>(b[7]);
  d.src = get_addr(b, 8);
  d.dst = get_addr(b, 24);
  std::string_view p = b.substr(40, plen);
  std::size_t at = 0;
  while ((next == 0 || next == 43 || next == 60 || next == 44) && at + 8 <= p.size()) {
    if (next == 44) {
      d.fragment = true;
      d.fragment_offset = static_cast<std::uint16_t>(get16(p, at + 2) & 0xfff8);
      d.more_fragments = (get16(p, at + 2) & 1) != 0;
      d.fragment_id = get32(p, at + 4);
      next = static_cast<std::uint8_t>(p[at]);
      at += 8;
      break;
    }
    const std::size_t len = (static_cast<unsigned char>(p[at + 1]) + 1u) * 8;
    next = static_cast<std::uint8_t>(p[at]);
    at += len;
  }
  if (at > p.size()) return d;
  d.upper = next;
  d.l4 = std::string(p.substr(at));
  std::string_view l4 = d.l4;
  if (d.fragment && (d.fragment_offset != 0 || d.more_fragments)) return d;
  d.checksum_ok = finish(sum_words(l4, sum_words(pseudo(d.src, d.dst, next, static_cast<std::uint32_t>(l4.size()))))) == 0;
  if (next == 58 && l4.size() >= 8) {
    d.icmp_type = static_cast<std::uint8_t>(l4[0]);
    d.icmp_code = static_cast<std::uint8_t>(l4[1]);
    d.icmp_word = get32(l4, 4);
    d.icmp_rest = std::string(l4.substr(8));
    if ((d.icmp_type == 135 || d.icmp_type == 136) && l4.size() >= 24) {
      d.nd_flags = static_cast<std::uint8_t>(l4[4]);
      d.nd_target = get_addr(l4, 8);
      for (std::size_t i = 24; i + 8 <= l4.size();) {
        const std::size_t len = static_cast<unsigned char>(l4[i + 1]) * 8u;
        if (len == 0) break;
        if ((l4[i] == 1 && d.icmp_type == 135) || (l4[i] == 2 && d.icmp_type == 136)) d.nd_ll = get_mac(l4, i + 2);
        i += len;
      }
    }
  } else if (next == 17 && l4.size() >= 8) {
    d.sport = get16(l4, 0);
    d.dport = get16(l4, 2);
    const std::uint16_t len = get16(l4, 4);
    if (len >= 8 && len <= l4.size()) d.payload = std::string(l4.substr(8, len - 8));
  }
  return d;
}

}  // namespace sluice::test::frames6
