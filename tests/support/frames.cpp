#include "frames.hpp"

#include <cstring>

#include "frame_bytes.hpp"

namespace sluice::test::frames {

namespace {

using namespace frame_bytes;

std::string pseudo(std::uint32_t src, std::uint32_t dst, std::uint8_t proto, std::uint16_t len) {
  std::string p;
  put32(p, src);
  put32(p, dst);
  put16(p, proto);
  put16(p, len);
  return p;
}

}  // namespace

std::uint32_t ip(std::string_view d) {
  std::uint32_t out = 0;
  std::size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    unsigned v = 0;
    while (pos < d.size() && d[pos] != '.') v = v * 10 + static_cast<unsigned>(d[pos++] - '0');
    ++pos;
    out = (out << 8) | v;
  }
  return out;
}

std::uint16_t checksum(std::string_view bytes) { return finish(sum_words(bytes)); }

std::string ethernet(const mac_address& dst, const mac_address& src, std::uint16_t type, std::string_view payload) {
  std::string f;
  put_mac(f, dst);
  put_mac(f, src);
  put16(f, type);
  f.append(payload);
  return f;
}

std::string arp(std::uint16_t op, const mac_address& smac, std::uint32_t sip, const mac_address& tmac,
                std::uint32_t tip) {
  std::string a;
  put16(a, 1);
  put16(a, 0x0800);
  a.push_back(6);
  a.push_back(4);
  put16(a, op);
  put_mac(a, smac);
  put32(a, sip);
  put_mac(a, tmac);
  put32(a, tip);
  return a;
}

std::string ipv4(std::uint32_t src, std::uint32_t dst, std::uint8_t protocol, std::string_view payload,
                 const ipv4_fields& f) {
  std::string h;
  const std::size_t hl = 20 + f.options.size();
  const unsigned ihl = f.ihl.value_or(static_cast<std::uint8_t>(hl / 4));
  h.push_back(static_cast<char>((f.version.value_or(4) << 4) | (ihl & 0xf)));
  h.push_back(0);
  put16(h, f.total_len.value_or(static_cast<std::uint16_t>(hl + payload.size())));
  put16(h, f.id);
  put16(h, static_cast<std::uint16_t>((f.fragment_offset / 8) | (f.more_fragments ? 0x2000 : 0) | f.extra_flags));
  h.push_back(static_cast<char>(f.ttl));
  h.push_back(static_cast<char>(protocol));
  put16(h, 0);
  put32(h, src);
  put32(h, dst);
  h.append(f.options);
  std::uint16_t c = checksum(h);
  if (f.bad_checksum) c ^= 0x5a5a;
  h[10] = static_cast<char>(c >> 8);
  h[11] = static_cast<char>(c);
  h.append(payload);
  return h;
}

std::string udp(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                std::string_view payload, const udp_fields& f) {
  std::string u;
  const auto len = static_cast<std::uint16_t>(8 + payload.size());
  put16(u, sport);
  put16(u, dport);
  put16(u, f.length.value_or(len));
  put16(u, 0);
  u.append(payload);
  if (!f.zero_checksum) {
    std::uint16_t c = finish(sum_words(u, sum_words(pseudo(src, dst, 17, len))));
    if (c == 0) c = 0xffff;
    if (f.bad_checksum) c ^= 0x1234;
    u[6] = static_cast<char>(c >> 8);
    u[7] = static_cast<char>(c);
  }
  return u;
}

std::string tcp(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
                std::string_view payload, const tcp_fields& f) {
  std::string opts = f.options;
  while (opts.size() % 4 != 0) opts.push_back(0);  // end-of-list padding
  std::string t;
  put16(t, sport);
  put16(t, dport);
  put32(t, f.seq);
  put32(t, f.ack);
  const unsigned offset = f.data_offset.value_or(static_cast<std::uint8_t>((20 + opts.size()) / 4));
  t.push_back(static_cast<char>(offset << 4));
  t.push_back(static_cast<char>(f.flags));
  put16(t, f.window);
  put16(t, 0);
  put16(t, 0);
  t.append(opts);
  t.append(payload);
  std::uint16_t c = finish(sum_words(t, sum_words(pseudo(src, dst, 6, static_cast<std::uint16_t>(t.size())))));
  if (f.bad_checksum) c ^= 0x2222;
  t[16] = static_cast<char>(c >> 8);
  t[17] = static_cast<char>(c);
  return t;
}

std::string tcp_option_mss(std::uint16_t mss) {
  std::string o{"\x02\x04", 2};
  put16(o, mss);
  return o;
}
std::string tcp_option_wscale(std::uint8_t shift) {
  std::string o{"\x01\x03\x03", 3};
  o.push_back(static_cast<char>(shift));
  return o;
}
std::string tcp_option_sack_permitted() { return std::string("\x01\x01\x04\x02", 4); }
std::string tcp_option_timestamps(std::uint32_t val, std::uint32_t ecr) {
  std::string o{"\x01\x01\x08\x0a", 4};
  put32(o, val);
  put32(o, ecr);
  return o;
}
std::string tcp_option_sack(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& blocks) {
  std::string o{"\x01\x01\x05", 3};
  o.push_back(static_cast<char>(2 + 8 * blocks.size()));
  for (auto [l, r] : blocks) {
    put32(o, l);
    put32(o, r);
  }
  return o;
}

std::string icmp(std::uint8_t type, std::uint8_t code, std::uint16_t id, std::uint16_t seq, std::string_view data,
                 bool bad_checksum) {
  std::string m;
  m.push_back(static_cast<char>(type));
  m.push_back(static_cast<char>(code));
  put16(m, 0);
  put16(m, id);
  put16(m, seq);
  m.append(data);
  std::uint16_t c = checksum(m);
  if (bad_checksum) c ^= 0x0f0f;
  m[2] = static_cast<char>(c >> 8);
  m[3] = static_cast<char>(c);
  return m;
}

std::string udp_frame(const mac_address& dst_mac, const mac_address& src_mac, std::uint32_t src, std::uint32_t dst,
                      std::uint16_t sport, std::uint16_t dport, std::string_view payload) {
  return ethernet(dst_mac, src_mac, 0x0800, ipv4(src, dst, 17, udp(src, dst, sport, dport, payload)));
}

decoded decode(std::string_view f) {
  decoded d;
  if (f.size() < 14) return d;
  d.dst = get_mac(f, 0);
  d.src = get_mac(f, 6);
  d.type = get16(f, 12);
  std::string_view b = f.substr(14);
  if (d.type == 0x0806 && b.size() >= 28) {
    d.arp_op = get16(b, 6);
    d.arp_sender_mac = get_mac(b, 8);
    d.arp_sender_ip = get32(b, 14);
    d.arp_target_mac = get_mac(b, 18);
    d.arp_target_ip = get32(b, 24);
    return d;
  }
  if (d.type != 0x0800 || b.size() < 20) return d;
  const std::size_t hl = (static_cast<unsigned char>(b[0]) & 0xf) * 4u;
  const std::uint16_t total = get16(b, 2);
  if (total > b.size() || hl > total) return d;
  d.ip_checksum_ok = checksum(b.substr(0, hl)) == 0;
  d.ip_id = get16(b, 4);
  d.fragment_offset = static_cast<std::uint16_t>((get16(b, 6) & 0x1fff) * 8);
  d.more_fragments = (get16(b, 6) & 0x2000) != 0;
  d.ttl = static_cast<std::uint8_t>(b[8]);
  d.protocol = static_cast<std::uint8_t>(b[9]);
  d.src_ip = get32(b, 12);
  d.dst_ip = get32(b, 16);
  d.ip_payload = std::string(b.substr(hl, total - hl));
  std::string_view l4 = d.ip_payload;
  if (d.fragment_offset != 0 || d.more_fragments) return d;
  if (d.protocol == 17 && l4.size() >= 8) {
    d.sport = get16(l4, 0);
    d.dport = get16(l4, 2);
    const std::uint16_t len = get16(l4, 4);
    if (len <= l4.size() && len >= 8) {
      const std::uint32_t s = sum_words(l4.substr(0, len), sum_words(pseudo(d.src_ip, d.dst_ip, 17, len)));
      d.l4_checksum_ok = get16(l4, 6) == 0 || finish(s) == 0;
      d.payload = std::string(l4.substr(8, len - 8));
    }
  } else if (d.protocol == 6 && l4.size() >= 20) {
    d.sport = get16(l4, 0);
    d.dport = get16(l4, 2);
    d.seq = get32(l4, 4);
    d.ack = get32(l4, 8);
    const std::size_t off = (static_cast<unsigned char>(l4[12]) >> 4) * 4u;
    d.flags = static_cast<std::uint8_t>(l4[13]);
    d.window = get16(l4, 14);
    const std::uint32_t s = sum_words(l4, sum_words(pseudo(d.src_ip, d.dst_ip, 6, static_cast<std::uint16_t>(l4.size()))));
    d.l4_checksum_ok = finish(s) == 0;
    if (off >= 20 && off <= l4.size()) {
      for (std::size_t i = 20; i < off;) {
        const auto kind = static_cast<unsigned char>(l4[i]);
        if (kind == 0) break;
        if (kind == 1) {
          ++i;
          continue;
        }
        if (i + 1 >= off) break;
        const auto len = static_cast<unsigned char>(l4[i + 1]);
        if (len < 2 || i + len > off) break;
        if (kind == 2 && len == 4) d.mss = get16(l4, i + 2);
        if (kind == 3 && len == 3) d.wscale = static_cast<std::uint8_t>(l4[i + 2]);
        if (kind == 4 && len == 2) d.sack_permitted = true;
        if (kind == 8 && len == 10) d.timestamps = std::make_pair(get32(l4, i + 2), get32(l4, i + 6));
        if (kind == 5) {
          for (std::size_t b = i + 2; b + 8 <= i + len; b += 8) d.sacks.emplace_back(get32(l4, b), get32(l4, b + 4));
        }
        i += len;
      }
      d.payload = std::string(l4.substr(off));
    }
  } else if (d.protocol == 1 && l4.size() >= 8) {
    d.icmp_type = static_cast<std::uint8_t>(l4[0]);
    d.icmp_id = get16(l4, 4);
    d.icmp_seq = get16(l4, 6);
    d.l4_checksum_ok = checksum(l4) == 0;
    d.payload = std::string(l4.substr(8));
  }
  return d;
}

bool send(inet::packet_port& port, std::string_view frame) {
  inet::packet* p = nullptr;
  if (port.allocate(&p, 1) != 1) return false;
  if (frame.size() > p->seg.capacity - p->seg.begin) {
    segment_unref(&p->seg);
    return false;
  }
  std::memcpy(p->data(), frame.data(), frame.size());
  p->seg.end = p->seg.begin + static_cast<std::uint32_t>(frame.size());
  if (port.transmit(&p, 1) != 1) {
    segment_unref(&p->seg);
    return false;
  }
  return true;
}

std::vector<std::string> receive_all(inet::packet_port& port) {
  std::vector<std::string> out;
  inet::packet* ps[32];
  for (;;) {
    const std::size_t n = port.receive(ps, 32);
    for (std::size_t i = 0; i < n; ++i) {
      out.emplace_back(reinterpret_cast<const char*>(ps[i]->data()), ps[i]->size());
      segment_unref(&ps[i]->seg);
    }
    if (n < 32) return out;
  }
}

}  // namespace sluice::test::frames
