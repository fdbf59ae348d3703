#include "sluice/inet/tcp_header.hpp"

#include <algorithm>

#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {

namespace {

// Option kinds (IANA "TCP Option Kind Numbers").
constexpr std::uint8_t opt_end = 0;
constexpr std::uint8_t opt_nop = 1;
constexpr std::uint8_t opt_mss = 2;
constexpr std::uint8_t opt_wscale = 3;
constexpr std::uint8_t opt_sack_permitted = 4;
constexpr std::uint8_t opt_sack = 5;
constexpr std::uint8_t opt_timestamps = 8;

[[nodiscard]] std::uint8_t byte_at(const std::byte* p, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(p[i]); }

// The option list [p, p + n). A known option with the wrong length is
// malformed (RFC 9293 3.2 asks receivers to be ready for any option; one
// that lies about its size leaves nothing after it that can be trusted).
drop_reason parse_options(const std::byte* p, std::size_t n, tcp_options& o) noexcept {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t kind = byte_at(p, i);
    if (kind == opt_end) break;
    if (kind == opt_nop) {
      ++i;
      continue;
    }
    if (i + 1 >= n) return drop_reason::tcp_bad_options;
    const std::uint8_t len = byte_at(p, i + 1);
    if (len < 2 || i + len > n) return drop_reason::tcp_bad_options;
    const std::byte* v = p + i + 2;
    switch (kind) {
      case opt_mss:
        if (len != 4) return drop_reason::tcp_bad_options;
        o.has_mss = true;
        o.mss = load_be16(v);
        break;
      case opt_wscale:
        if (len != 3) return drop_reason::tcp_bad_options;
        o.has_wscale = true;
        o.wscale = byte_at(v, 0);
        break;
      case opt_sack_permitted:
        if (len != 2) return drop_reason::tcp_bad_options;
        o.sack_permitted = true;
        break;
      case opt_timestamps:
        if (len != 10) return drop_reason::tcp_bad_options;
        o.has_timestamps = true;
        o.ts_val = load_be32(v);
        o.ts_ecr = load_be32(v + 4);
        break;
      case opt_sack: {
        // RFC 2018 section 3: 8 bytes per block after the kind and length.
        if ((len - 2) % 8 != 0 || len == 2) return drop_reason::tcp_bad_options;
        const std::size_t blocks = std::min<std::size_t>((len - 2) / 8, tcp_max_sack_blocks);
        for (std::size_t b = 0; b < blocks; ++b) {
          o.sacks[b] = sack_block{load_be32(v + 8 * b), load_be32(v + 8 * b + 4)};
        }
        o.sack_count = static_cast<std::uint8_t>(blocks);
        break;
      }
      default:
        break;  // unknown: skipped by its length
    }
    i += len;
  }
  return drop_reason::none;
}

// How many SACK blocks fit beside the other options in 40 bytes.
[[nodiscard]] std::size_t sack_room(const tcp_out_options& o, std::size_t other) noexcept {
  if (o.sack_count == 0) return 0;
  const std::size_t left = other + 4 <= 40 ? 40 - other - 4 : 0;  // NOP NOP kind len
  return std::min<std::size_t>(o.sack_count, left / 8);
}

[[nodiscard]] std::size_t fixed_options_len(const tcp_out_options& o) noexcept {
  std::size_t n = 0;
  if (o.mss != 0) n += 4;
  if (o.timestamps) n += 12;                           // [SACKOK | NOP NOP] TS
  if (o.sack_permitted && !o.timestamps) n += 4;       // NOP NOP SACKOK
  if (o.wscale >= 0) n += 4;                           // NOP WS
  return n;
}

}  // namespace

drop_reason parse_tcp(const std::byte* p, std::size_t n, tcp_header& out) noexcept {
  if (n < tcp_min_header_len) return drop_reason::tcp_truncated;
  out.src_port = load_be16(p);
  out.dst_port = load_be16(p + 2);
  out.seq = load_be32(p + 4);
  out.ack = load_be32(p + 8);
  const std::size_t offset = (std::to_integer<unsigned>(p[12]) >> 4) * 4;
  if (offset < tcp_min_header_len) return drop_reason::tcp_bad_offset;
  if (offset > n) return drop_reason::tcp_truncated;
  out.header_len = static_cast<std::uint8_t>(offset);
  out.flags = std::to_integer<std::uint8_t>(p[13]);
  out.window = load_be16(p + 14);
  out.checksum = load_be16(p + 16);
  out.urgent = load_be16(p + 18);
  out.opt = {};
  if (out.src_port == 0 || out.dst_port == 0) return drop_reason::tcp_bad_port;
  // RFC 9293 3.5: SYN and FIN together, or SYN and RST, make no sense in
  // any state; dropping them closes a scanning trick (SYN+FIN) cheaply.
  if ((out.flags & tcp_syn) != 0 && (out.flags & (tcp_fin | tcp_rst)) != 0) return drop_reason::tcp_bad_flags;
  return parse_options(p + tcp_min_header_len, offset - tcp_min_header_len, out.opt);
}

std::size_t tcp_options_len(const tcp_out_options& o) noexcept {
  const std::size_t fixed = fixed_options_len(o);
  const std::size_t sacks = sack_room(o, fixed);
  return fixed + (sacks != 0 ? 4 + 8 * sacks : 0);
}

std::size_t write_tcp(std::byte* p, const tcp_header& h, const tcp_out_options& o) noexcept {
  const std::size_t fixed = fixed_options_len(o);
  const std::size_t sacks = sack_room(o, fixed);
  const std::size_t len = tcp_min_header_len + fixed + (sacks != 0 ? 4 + 8 * sacks : 0);
  store_be16(p, h.src_port);
  store_be16(p + 2, h.dst_port);
  store_be32(p + 4, h.seq);
  store_be32(p + 8, h.ack);
  p[12] = static_cast<std::byte>((len / 4) << 4);
  p[13] = static_cast<std::byte>(h.flags);
  store_be16(p + 14, h.window);
  store_be16(p + 16, 0);
  store_be16(p + 18, 0);
  std::byte* q = p + tcp_min_header_len;
  auto put = [&q](std::uint8_t b) { *q++ = static_cast<std::byte>(b); };
  if (o.mss != 0) {
    put(opt_mss);
    put(4);
    store_be16(q, o.mss);
    q += 2;
  }
  if (o.timestamps) {
    if (o.sack_permitted) {
      put(opt_sack_permitted);
      put(2);
    } else {
      put(opt_nop);
      put(opt_nop);
    }
    put(opt_timestamps);
    put(10);
    store_be32(q, o.ts_val);
    store_be32(q + 4, o.ts_ecr);
    q += 8;
  } else if (o.sack_permitted) {
    put(opt_nop);
    put(opt_nop);
    put(opt_sack_permitted);
    put(2);
  }
  if (o.wscale >= 0) {
    put(opt_nop);
    put(opt_wscale);
    put(3);
    put(static_cast<std::uint8_t>(o.wscale));
  }
  if (sacks != 0) {
    put(opt_nop);
    put(opt_nop);
    put(opt_sack);
    put(static_cast<std::uint8_t>(2 + 8 * sacks));
    for (std::size_t b = 0; b < sacks; ++b) {
      store_be32(q, o.sacks[b].left);
      store_be32(q + 4, o.sacks[b].right);
      q += 8;
    }
  }
  return len;
}

}  // namespace sluice::inet
