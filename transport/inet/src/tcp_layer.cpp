#include "sluice/inet/tcp_layer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "sluice/core/handler.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/stack.hpp"
#include "sluice/inet/tcp_seq.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {

namespace {

// The MSS values a SYN cookie can carry (3 bits): the largest not above the
// peer's is chosen (RFC 4987 3.6: a cookie keeps an approximation).
constexpr std::uint16_t cookie_mss[8] = {536, 1200, 1360, 1400, 1440, 1452, 1460, 8960};
// SYN cookies age in 64-second periods; one is good for this period and
// the one before (up to two minutes).
constexpr std::int64_t cookie_period_s = 64;
// Timestamp values of a cookie's SYN-ACK carry the peer's window scale
// (4 bits, 15: none) and SACK-permitted (1 bit) in their low bits, so that
// the connection made from the returning ACK can use them (its TSecr).
constexpr std::uint32_t cookie_ts_bits = 0x1f;
constexpr std::uint32_t cookie_no_wscale = 0xf;

// A keyed hash of the whole tuple, both 16-byte addresses (so IPv4 and
// IPv6 tuples are hashed alike, RFC 6528's F over either family), and two
// extra words.
[[nodiscard]] std::uint64_t hash_tuple(const siphash_key& k, const tcp_tuple& t, std::uint32_t a = 0,
                                       std::uint32_t b = 0) noexcept {
  std::uint8_t in[16 + 16 + 12];
  std::memcpy(in, t.local_ip.data(), 16);
  std::memcpy(in + 16, t.remote_ip.data(), 16);
  const std::uint32_t words[3] = {(std::uint32_t{t.local_port} << 16) | t.remote_port, a, b};
  std::memcpy(in + 32, words, sizeof words);
  return siphash24(k, in, sizeof in);
}

}  // namespace

tcp_layer::tcp_layer(stack& ip, transport_loop& loop, const tcp_config& cfg, inet_stats& stats)
    : ip_(ip),
      loop_(loop),
      cfg_(cfg),
      stats_(stats),
      isn_key_(make_secret_key(cfg.secret, 0x15a)),
      cookie_key_(make_secret_key(cfg.secret, 0xc00c1e)),
      table_key_(make_secret_key(cfg.secret, 0x7ab1e)),
      local_ip_(ip_address::v4(ip.config().address)) {
  if (cfg_.receive_buffer == 0) cfg_.receive_buffer = loop.options().max_input_bytes;
  cfg_.receive_buffer = std::clamp<std::size_t>(cfg_.receive_buffer, 4096, std::size_t{1} << 30);
  cfg_.persist_timeout =
      std::clamp<duration>(cfg_.persist_timeout, tcp_config::min_persist_timeout, tcp_config::max_persist_timeout);
  cfg_.mtu_probe_interval =
      std::clamp<duration>(cfg_.mtu_probe_interval, std::chrono::seconds(1), std::chrono::hours(1));
  cfg_.invalid_ack_interval =
      std::clamp<duration>(cfg_.invalid_ack_interval, duration::zero(), std::chrono::seconds(10));
  max_blocks_ = cfg_.max_control_blocks != 0 ? cfg_.max_control_blocks
                                             : std::max<std::size_t>(64, 2 * loop.options().max_connections);
  buckets_.assign(1024, nullptr);
  bucket_shift_ = 64 - 10;
  const stack_options& so = ip.options();
  const unsigned range = static_cast<unsigned>(so.ephemeral_last - so.ephemeral_first) + 1;
  next_port_ = static_cast<std::uint16_t>(so.ephemeral_first + static_cast<unsigned>(isn_key_.k0 % range));
  listeners_.reserve(8);
}

tcp_layer::~tcp_layer() {
  for (auto& head : buckets_) {
    while (head != nullptr) {
      tcp_control_block* b = head;
      head = b->next_in_bucket_;
      b->next_in_bucket_ = nullptr;
      b->~tcp_control_block();
    }
  }
}

// ---- helpers for control blocks ---------------------------------------------------------

std::uint32_t tcp_layer::ts_clock() const noexcept {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        loop_.now().time_since_epoch())
                                        .count());
}

std::uint32_t tcp_layer::ts_offset(const tcp_tuple& t) const noexcept {
  // RFC 7323 5.4: a per-connection random offset, so that timestamps say
  // nothing about the host's clock or its other connections.
  return static_cast<std::uint32_t>(hash_tuple(cookie_key_, t, 0x75) >> 32);
}

std::uint32_t tcp_layer::mtu_mss(const ip_address& remote) const noexcept {
  // IPv6: the path MTU the stack learned from packet too big messages
  // (the link MTU until one came).
  const std::uint32_t mtu = remote.is_v4() ? ip_.capabilities().mtu : ip_.path_mtu(remote);
  return mtu - tcp_ip_overhead(remote);
}

std::uint32_t tcp_layer::initial_sequence(const tcp_tuple& t, time_point now) const noexcept {
  if (cfg_.fixed_isn) return *cfg_.fixed_isn;
  // RFC 6528 section 3: ISN = M + F(localip, localport, remoteip,
  // remoteport, secretkey), M a timer ticking every 4 microseconds.
  const auto m = static_cast<std::uint32_t>(now.time_since_epoch().count() / 4000);
  return m + static_cast<std::uint32_t>(hash_tuple(isn_key_, t));
}

std::uint32_t tcp_layer::make_cookie(const tcp_tuple& t, std::uint32_t peer_isn, std::uint16_t mss,
                                     time_point now) const noexcept {
  //   31     27 26  24 23                      0
  //  | period | MSS  |  MAC(secret, tuple, peer ISN, period)  |
  const auto period = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() / cookie_period_s);
  std::uint32_t idx = 0;
  for (std::uint32_t i = 0; i < 8; ++i)
    if (cookie_mss[i] <= mss) idx = i;
  const auto mac = static_cast<std::uint32_t>(hash_tuple(cookie_key_, t, peer_isn, period)) & 0xffffffu;
  return ((period & 31u) << 27) | (idx << 24) | mac;
}

std::uint16_t tcp_layer::check_cookie(const tcp_tuple& t, std::uint32_t peer_isn, std::uint32_t cookie,
                                      time_point now) const noexcept {
  const auto period = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() / cookie_period_s);
  for (std::uint32_t age = 0; age < 2; ++age) {
    const std::uint32_t p = period - age;
    if ((p & 31u) != cookie >> 27) continue;
    const auto mac = static_cast<std::uint32_t>(hash_tuple(cookie_key_, t, peer_isn, p)) & 0xffffffu;
    if (mac == (cookie & 0xffffffu)) return cookie_mss[(cookie >> 24) & 7u];
  }
  return 0;
}

bool tcp_layer::may_challenge() noexcept {
  const std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(loop_.now().time_since_epoch()).count();
  if (second != challenge_second_) {
    challenge_second_ = second;
    challenges_ = 0;
  }
  if (challenges_ >= cfg_.challenge_ack_limit) return false;
  ++challenges_;
  return true;
}

bool tcp_layer::send(const tcp_tuple& t, const tcp_header& h, const tcp_out_options& o, const buffer_chain* data,
                     std::size_t offset, std::uint32_t len) noexcept {
  packet* p = ip_.tx_packet();
  if (p == nullptr) {
    stats_.drop(drop_reason::no_buffer);
    return false;
  }
  std::byte* seg = p->data();
  const std::size_t hl = write_tcp(seg, h, o);
  if (len != 0 && data != nullptr) {
    // The one copy on the way out: the send queue keeps its bytes for
    // retransmission, the frame gets its own.
    const std::size_t got = data->copy_out(seg + hl, len, offset);
    if (got != len) {
      segment_unref(&p->seg);
      return false;
    }
  }
  const auto l4_len = static_cast<std::uint16_t>(hl + len);
  p->seg.end += l4_len;
  internet_checksum c;
  add_pseudo_header(c, t.local_ip, t.remote_ip, ip_protocol_tcp, l4_len);
  // The device's checksum offload is asked for IPv4 only (send_ip6 asks
  // for none): an IPv6 segment is summed here.
  if (ip_.capabilities().tx_tcp_checksum && t.remote_ip.is_v4()) {
    store_checksum(seg + 16, c.folded());
    p->meta.tx |= packet_meta::tx_tcp_checksum;
  } else {
    c.add(seg, l4_len);
    store_checksum(seg + 16, c.finish());
  }
  stats_.tcp_segments_out.add();
  ip_.send_ip(p, ip_protocol_tcp, t.local_ip, t.remote_ip);  // from the address the checksum covers
  return true;
}

void tcp_layer::send_reset_for(const tcp_segment& s) noexcept {
  if (s.h.has(tcp_rst)) return;  // never answer a RST (RFC 9293 3.10.7.1)
  tcp_header r;
  r.src_port = s.h.dst_port;
  r.dst_port = s.h.src_port;
  if (s.h.has(tcp_ack)) {
    r.seq = s.h.ack;
    r.flags = tcp_rst;
  } else {
    r.seq = 0;
    r.ack = s.h.seq + s.seg_len();
    r.flags = tcp_rst | tcp_ack;
  }
  const tcp_tuple t{s.dst_ip, s.src_ip, s.h.dst_port, s.h.src_port};
  if (send(t, r, {}, nullptr, 0, 0)) stats_.tcp_resets_out.add();
}

void tcp_layer::mark_pending(tcp_control_block& b) noexcept {
  if (!b.pending_hook_.is_linked()) pending_.push_back(b);
}

// ---- arrival ---------------------------------------------------------------------------------

void tcp_layer::input(packet* p, const ip_address& src_ip, const ip_address& dst_ip, bool checksum_ok) noexcept {
  stats_.tcp_segments_in.add();
  const std::size_t n = p->size();
  tcp_segment s;
  if (auto r = parse_tcp(p->data(), n, s.h); r != drop_reason::none) return ip_.drop_packet(p, r);
  if (!checksum_ok) {
    internet_checksum c;
    add_pseudo_header(c, src_ip, dst_ip, ip_protocol_tcp, static_cast<std::uint32_t>(n));
    c.add(p->data(), n);
    if (c.finish() != 0) return ip_.drop_packet(p, drop_reason::tcp_bad_checksum);
  }
  // TCP is unicast (RFC 1122 4.2.3.10): nothing to a broadcast (or IPv6
  // multicast) address, and no RST back to one either.
  if (dst_ip != local_ip_ && (dst_ip.is_v4() || !ip_.is_our_ip6(dst_ip))) {
    return ip_.drop_packet(p, drop_reason::tcp_no_connection);
  }
  s.src_ip = src_ip;
  s.dst_ip = dst_ip;
  p->seg.begin += s.h.header_len;
  s.len = p->size();
  if (s.len != 0) {
    s.payload = p;
  } else {
    segment_unref(&p->seg);
  }
  const tcp_tuple t{dst_ip, src_ip, s.h.dst_port, s.h.src_port};
  if (tcp_control_block* b = find(t)) {
    // RFC 9293 3.10.7.4 (TIME-WAIT) with RFC 6191's reading: a new SYN with
    // a higher sequence number (or newer timestamp) may reopen the tuple.
    if (b->state_ == tcp_state::time_wait && s.h.has(tcp_syn) && !s.h.has(tcp_ack)) {
      listen_entry* le = listening(s.h.dst_port, dst_ip);
      const bool newer = b->ts_ok_ && s.h.opt.has_timestamps ? seq_gt(s.h.opt.ts_val, b->ts_recent_)
                                                             : seq_gt(s.h.seq, b->rcv_nxt_);
      if (le != nullptr && newer) {
        destroy(b);
        input_listen(*le, s);
        return;
      }
    }
    b->input(s);
    return;
  }
  if (listen_entry* le = listening(s.h.dst_port, dst_ip)) {
    input_listen(*le, s);
    return;
  }
  // CLOSED (RFC 9293 3.10.7.1): whatever it was, answer with RST.
  if (s.payload != nullptr) segment_unref(&s.payload->seg);
  stats_.drop(drop_reason::tcp_no_connection);
  send_reset_for(s);
}

void tcp_layer::input_listen(listen_entry& le, tcp_segment& s) noexcept {
  // RFC 9293 3.10.7.2 (LISTEN).
  auto give_back = [&s] {
    if (s.payload != nullptr) segment_unref(&s.payload->seg);
    s.payload = nullptr;
  };
  const tcp_tuple t{s.dst_ip, s.src_ip, s.h.dst_port, s.h.src_port};
  if (s.h.has(tcp_rst)) {
    give_back();
    stats_.drop(drop_reason::tcp_rst_ignored);
    return;
  }
  if (s.h.has(tcp_ack)) {
    // The third segment of a handshake answered with a SYN cookie?
    if (cfg_.syn_cookies && !s.h.has(tcp_syn)) {
      const std::uint16_t mss = check_cookie(t, s.h.seq - 1, s.h.ack - 1, loop_.now());
      if (mss != 0) {
        int wscale = -1;
        bool sack = false;
        if (s.h.opt.has_timestamps && cfg_.timestamps) {
          const std::uint32_t bits = s.h.opt.ts_ecr & cookie_ts_bits;
          if ((bits & cookie_no_wscale) != cookie_no_wscale && cfg_.window_scaling) wscale = static_cast<int>(bits & 0xf);
          sack = (bits & 0x10) != 0 && cfg_.sack;
        }
        tcp_control_block* b = create(t);
        if (b == nullptr) {
          give_back();
          stats_.drop(drop_reason::tcp_no_control_block);
          return;
        }
        stats_.tcp_syn_cookies_ok.add();
        b->listener_ = le.l;
        b->passive_ = true;
        b->start_from_cookie(s, s.h.ack - 1, std::min<std::uint16_t>(mss, static_cast<std::uint16_t>(mtu_mss(t.remote_ip))),
                             wscale, sack);
        established(*b);
        if (find(t) == b && b->state_ != tcp_state::closed) {
          b->input(s);  // the ACK itself may carry data (or a FIN)
        } else {
          give_back();
        }
        return;
      }
      stats_.drop(drop_reason::tcp_bad_cookie);
    } else {
      stats_.drop(drop_reason::tcp_no_connection);
    }
    give_back();
    send_reset_for(s);
    return;
  }
  if (!s.h.has(tcp_syn)) {
    give_back();
    stats_.drop(drop_reason::tcp_no_connection);
    return;
  }
  if (s.payload != nullptr) {
    // Data on a SYN is not queued (RFC 9293 allows it; this stack keeps
    // nothing for a connection not yet established): the peer sends it
    // again once the handshake is done.
    give_back();
    stats_.drop(drop_reason::tcp_beyond_window);
  }
  tcp_control_block* b = le.half_open < le.backlog ? create(t) : nullptr;
  if (b == nullptr) {
    if (!cfg_.syn_cookies) {
      stats_.drop(le.half_open >= le.backlog ? drop_reason::tcp_syn_queue_full : drop_reason::tcp_no_control_block);
      return;
    }
    // The SYN queue is full (or no control block is left): answer with a
    // cookie and keep nothing (RFC 4987 section 3.6).
    const std::uint32_t mss =
        std::min<std::uint32_t>(s.h.opt.has_mss ? s.h.opt.mss : default_peer_mss(t.remote_ip), mtu_mss(t.remote_ip));
    const std::uint32_t iss = make_cookie(t, s.h.seq, static_cast<std::uint16_t>(mss), loop_.now());
    tcp_header h;
    h.src_port = t.local_port;
    h.dst_port = t.remote_port;
    h.seq = iss;
    h.ack = s.h.seq + 1;
    h.flags = tcp_syn | tcp_ack;
    h.window = static_cast<std::uint16_t>(std::min<std::size_t>(cfg_.receive_buffer, 65535));
    tcp_out_options o;
    o.mss = static_cast<std::uint16_t>(mtu_mss(t.remote_ip));
    if (s.h.opt.has_timestamps && cfg_.timestamps) {
      // Only with timestamps can the options come back: otherwise the
      // connection goes without window scaling and SACK.
      const bool ws = s.h.opt.has_wscale && cfg_.window_scaling;
      const bool sack = s.h.opt.sack_permitted && cfg_.sack;
      const std::uint32_t bits =
          (ws ? std::min<std::uint32_t>(s.h.opt.wscale, 14) : cookie_no_wscale) | (sack ? 0x10u : 0u);
      o.timestamps = true;
      // The encoded value must never lie ahead of the connection's clock:
      // the segments sent after the handshake carry the clock itself, and a
      // peer that saw a larger TSval drops them as old (RFC 7323 5.3, PAWS).
      // When the low bits would push it ahead, one period (32 ms) comes off,
      // as Linux's cookie_init_timestamp does.
      const std::uint32_t clock = ts_clock() + ts_offset(t);
      std::uint32_t val = (clock & ~cookie_ts_bits) | bits;
      if (seq_gt(val, clock)) val -= cookie_ts_bits + 1;
      o.ts_val = val;
      o.ts_ecr = s.h.opt.ts_val;
      o.sack_permitted = sack;
      if (ws) o.wscale = tcp_window_shift(cfg_.receive_buffer);
    }
    if (send(t, h, o, nullptr, 0, 0)) stats_.tcp_syn_cookies_sent.add();
    return;
  }
  b->listener_ = le.l;
  b->passive_ = true;
  b->in_syn_queue_ = true;
  ++le.half_open;
  b->start_passive_open(s, initial_sequence(t, loop_.now()));
}

bool tcp_layer::listen_entry::accepts(const ip_address& dst) const noexcept {
  switch (scope) {
    case listen_scope::any_v4:
      return dst.is_v4();
    case listen_scope::any:
      return true;
    case listen_scope::exact:
      return dst == addr;
  }
  return false;
}

bool tcp_layer::listen_entry::overlaps(const listen_entry& o) const noexcept {
  if (port != o.port) return false;
  if (scope == listen_scope::any || o.scope == listen_scope::any) return true;
  if (scope == listen_scope::exact && o.scope == listen_scope::exact) return addr == o.addr;
  const listen_entry& exact = scope == listen_scope::exact ? *this : o;
  return exact.scope != listen_scope::exact || exact.addr.is_v4();
}

tcp_layer::listen_entry* tcp_layer::listening(std::uint16_t port, const ip_address& dst) noexcept {
  // Entries never overlap (listen() refuses that): the first that accepts
  // the destination is the one.
  for (auto& le : listeners_)
    if (le.port == port && le.accepts(dst)) return &le;
  return nullptr;
}

bool tcp_layer::port_listened(std::uint16_t port) const noexcept {
  for (const auto& le : listeners_)
    if (le.port == port) return true;
  return false;
}

unsigned tcp_layer::syn_queue(std::uint16_t port) const noexcept {
  unsigned n = 0;
  for (const auto& le : listeners_)
    if (le.port == port) n += le.half_open;
  return n;
}

void tcp_layer::half_open_gone(tcp_control_block& b) noexcept {
  if (!b.in_syn_queue_) return;
  b.in_syn_queue_ = false;
  for (auto& le : listeners_) {
    if (le.l == b.listener_ && le.half_open != 0) {
      --le.half_open;
      return;
    }
  }
}

void tcp_layer::established(tcp_control_block& b) noexcept {
  half_open_gone(b);
  listen_entry* le = nullptr;
  for (auto& e : listeners_)
    if (e.l == b.listener_) le = &e;
  if (le == nullptr || le->l->closed()) {
    // The listener went away during the handshake.
    b.send_reset();
    b.state_ = tcp_state::closed;
    destroy(&b);
    return;
  }
  connection* c = loop_.new_connection(le->l->get_handler(), b.tuple_.remote_ip.with_port(b.tuple_.remote_port), false);
  if (c == nullptr) {
    stats_.drop(drop_reason::tcp_accept_full);
    b.send_reset();
    b.state_ = tcp_state::closed;
    destroy(&b);
    return;
  }
  ++le->l->io.accepted;
  b.listener_ = nullptr;
  b.conn_ = c;
  transport_loop::slot(*c).ptr = &b;
  stats_.tcp_passive_opens.add();
  b.arm_keepalive();
  loop_.opened(*c);
}

void tcp_layer::time_wait_entered(tcp_control_block& b) noexcept {
  if (!b.time_wait_hook_.is_linked()) time_wait_.push_back(b);
}

// ---- bursts ----------------------------------------------------------------------------------

void tcp_layer::end_of_burst() noexcept {
  // Callbacks may connect (new blocks join the list's end) but never free a
  // block (the loop releases connections in its close phase): walking the
  // list while they run is safe.
  for (auto it = pending_.begin(); it != pending_.end();) {
    tcp_control_block& b = *it++;
    if (!b.deliver_pending_) continue;
    b.deliver_pending_ = false;
    b.deliver();
  }
  // ACKs go now, unless the application answered and its data, sent in
  // this iteration's flush phase, will carry them (then at the latest
  // before the next poll, send_pending_acks).
  for (auto it = pending_.begin(); it != pending_.end();) {
    tcp_control_block& b = *it++;
    if (b.ack_pending_ && !b.data_will_carry_ack()) b.send_ack();
    if (!b.ack_pending_ && !b.deliver_pending_) b.pending_hook_.unlink();
  }
}

bool tcp_layer::frag_needed(const ip_address& local_ip, const ip_address& remote_ip, std::uint16_t local_port,
                            std::uint16_t remote_port, std::uint32_t seq, std::uint32_t mtu,
                            std::uint32_t quoted_len) noexcept {
  tcp_control_block* b = find(tcp_tuple{local_ip, remote_ip, local_port, remote_port});
  return b != nullptr && b->frag_needed(seq, mtu, quoted_len);
}

void tcp_layer::send_pending_acks() noexcept {
  while (!pending_.empty()) {
    tcp_control_block& b = pending_.front();
    pending_.pop_front();
    if (b.deliver_pending_) {
      b.deliver_pending_ = false;
      b.deliver();
    }
    if (b.ack_pending_) b.send_ack();
  }
}

// ---- the loop's calls --------------------------------------------------------------------------

tcp_control_block* tcp_layer::of(const connection& c) noexcept {
  return static_cast<tcp_control_block*>(transport_loop::slot(const_cast<connection&>(c)).ptr);
}

void tcp_layer::read(connection& c) noexcept {
  if (tcp_control_block* b = of(c)) b->reader_ready();
}

void tcp_layer::flush(connection& c) noexcept {
  if (tcp_control_block* b = of(c)) b->flush();
}

void tcp_layer::shutdown_write(connection& c) noexcept {
  if (tcp_control_block* b = of(c)) b->send_fin();
}

void tcp_layer::release(connection& c) noexcept {
  tcp_control_block* b = of(c);
  transport_loop::slot(c).ptr = nullptr;
  if (b == nullptr) return;
  if (b->detach(transport_loop::abort_requested(c))) destroy(b);
}

// ---- control plane -----------------------------------------------------------------------------

result<listener*> tcp_layer::listen(const endpoint& at, handler& h, const listen_options& opts) {
  if (at.family() != AF_INET && at.family() != AF_INET6) {
    return error{"cannot listen on " + at.to_string() + ": not an IPv4 or IPv6 address", {}};
  }
  // 0.0.0.0: IPv4 only; [::]: both families (a dual-stack socket without
  // IPV6_V6ONLY); otherwise one of this stack's addresses.
  listen_entry e{};
  e.addr = ip_address::of(at);
  if (at.family() == AF_INET && at.v4_addr() == 0) {
    e.scope = listen_scope::any_v4;
  } else if (e.addr.is_unspecified()) {
    e.scope = listen_scope::any;
  } else {
    e.scope = listen_scope::exact;
    if (e.addr != local_ip_ && (e.addr.is_v4() || !ip_.is_our_ip6(e.addr))) {
      return error{"cannot listen on " + at.to_string() + ": not this interface's address (" +
                       ip_.config().to_string() + "); listen on 0.0.0.0:PORT, [::]:PORT or " +
                       local_ip_.to_string() + ":PORT",
                   std::error_code(EADDRNOTAVAIL, std::system_category())};
    }
  }
  std::uint16_t port = at.port();
  if (port == 0) {
    const stack_options& so = ip_.options();
    for (unsigned p = so.ephemeral_first; p <= so.ephemeral_last; ++p) {
      if (!port_listened(static_cast<std::uint16_t>(p))) {
        port = static_cast<std::uint16_t>(p);
        break;
      }
    }
    if (port == 0) return error{"cannot listen on " + at.to_string() + ": no free port", {}};
  }
  e.port = port;
  for (const auto& o : listeners_) {
    if (o.overlaps(e)) return error::from_errno(EADDRINUSE, "cannot listen on " + at.to_string());
  }
  auto l = std::make_unique<listener>(loop_, h, opts);
  l->io.local = e.scope == listen_scope::any_v4 ? local_ip_.with_port(port) : e.addr.with_port(port);
  e.l = l.get();
  e.backlog = std::max(1u, std::min<unsigned>(static_cast<unsigned>(std::max(opts.backlog, 1)), cfg_.syn_backlog));
  listeners_.push_back(e);
  loop_.track_listener(std::move(l));
  return e.l;
}

void tcp_layer::close_listener(listener& l) noexcept {
  if (l.io.closed) return;
  l.io.closed = true;
  std::erase_if(listeners_, [&](const listen_entry& e) { return e.l == &l; });
}

std::optional<ip_address> tcp_layer::source_for(const ip_address& dst) const noexcept {
  const interface_config& ifc = ip_.config();
  if (dst.is_v4()) {
    const std::uint32_t d = dst.v4_addr();
    if (!ifc.on_link(d) && ifc.gateway == 0 && d != ifc.address) return std::nullopt;
    return local_ip_;
  }
  // IPv6: reachable when ours, on a link prefix (link-local included) or
  // through the default router (--gateway6, or --accept-ra's); the stack picks the source (RFC 6724's essentials).
  if (!ip_.is_our_ip6(dst) && !ifc.on_link6(dst) && ip_.default_router6() == nullptr) return std::nullopt;
  const ip_address src = ip_.source_for(dst);
  if (src.is_unspecified()) return std::nullopt;  // ours were found duplicates
  return src;
}

bool tcp_layer::picks_port(const tcp_tuple& t) const noexcept {
  // Replies will arrive with (remote, local, remote port, our port): they
  // must hash to this loop.
  if (steering_ == nullptr || loops_ <= 1) return true;
  return steering_->owner(t.remote_ip, t.local_ip, t.remote_port, t.local_port) == loop_.id();
}

result<connection_handle> tcp_layer::connect(const endpoint& to, handler& h, void* context) {
  if (to.family() != AF_INET && to.family() != AF_INET6) {
    return error{"cannot connect to " + to.to_string() + ": not an IPv4 or IPv6 address", {}};
  }
  const ip_address dst = ip_address::of(to);
  const bool unicast = dst.is_v4() ? dst.v4_addr() != 0 && dst.v4_addr() != 0xffffffffu
                                   : !dst.is_unspecified() && !dst.is_v6_multicast();
  if (!unicast || to.port() == 0) {
    return error{"cannot connect to " + to.to_string() + ": not a unicast address and port",
                 std::error_code(EINVAL, std::system_category())};
  }
  connection* c = loop_.new_connection(h, to, true);
  if (c == nullptr) return error{"cannot connect to " + to.to_string() + ": connection limit reached on this loop", {}};
  c->set_context(context);
  // The source address: ours for IPv4, the stack's choice for IPv6 (none:
  // no route to the destination).
  const std::optional<ip_address> src = source_for(dst);
  if (!src) {
    loop_.failed(*c, close_reason::unreachable, ENETUNREACH);
    return c->handle();
  }
  const stack_options& so = ip_.options();
  const unsigned range = static_cast<unsigned>(so.ephemeral_last - so.ephemeral_first) + 1;
  tcp_tuple t{*src, dst, 0, to.port()};
  for (unsigned i = 0; i < range; ++i) {
    const std::uint16_t p = next_port_;
    next_port_ = next_port_ == so.ephemeral_last ? so.ephemeral_first : static_cast<std::uint16_t>(next_port_ + 1);
    t.local_port = p;
    if (picks_port(t) && find(t) == nullptr && !port_listened(p)) break;
    t.local_port = 0;
  }
  if (t.local_port == 0) {
    loop_.failed(*c, close_reason::resource_limit, EADDRNOTAVAIL);
    return c->handle();
  }
  tcp_control_block* b = create(t);
  if (b == nullptr) {
    stats_.drop(drop_reason::tcp_no_control_block);
    loop_.failed(*c, close_reason::resource_limit, ENOBUFS);
    return c->handle();
  }
  b->conn_ = c;
  transport_loop::slot(*c).ptr = b;
  stats_.tcp_active_opens.add();
  b->start_active_open(initial_sequence(t, loop_.now()));
  return c->handle();
}

// ---- control blocks ---------------------------------------------------------------------------------

std::size_t tcp_layer::bucket_of(const tcp_tuple& t) const noexcept {
  // Keyed (the peer picks its address and port, IPv6 gives it 2^64 on a
  // link): multiply-shift of the remote address and the ports with this
  // stack's secret multipliers, the bucket from the high bits, so no sender
  // can aim its connections at one chain. Our own address varies little:
  // left out.
  const std::uint64_t ports = (std::uint64_t{t.remote_port} << 16) | t.local_port;
  const std::uint64_t x = multiply_shift16(t.remote_ip.data(), table_key_) + ports * ((table_key_.k0 >> 1) | 1);
  return static_cast<std::size_t>(x >> bucket_shift_);
}

tcp_control_block* tcp_layer::find(const tcp_tuple& t) const noexcept {
  for (tcp_control_block* b = buckets_[bucket_of(t)]; b != nullptr; b = b->next_in_bucket_)
    if (b->tuple_ == t) return b;
  return nullptr;
}

void tcp_layer::insert(tcp_control_block* b) noexcept {
  auto& head = buckets_[bucket_of(b->tuple_)];
  b->next_in_bucket_ = head;
  head = b;
}

void tcp_layer::remove(tcp_control_block* b) noexcept {
  tcp_control_block** at = &buckets_[bucket_of(b->tuple_)];
  while (*at != nullptr && *at != b) at = &(*at)->next_in_bucket_;
  if (*at == b) *at = b->next_in_bucket_;
  b->next_in_bucket_ = nullptr;
}

void tcp_layer::grow_table() noexcept {
  // Control-plane growth at load 1 (it happens a few times while a loop
  // warms up, never per segment once it has).
  std::vector<tcp_control_block*> old;
  try {
    old.assign(buckets_.size() * 2, nullptr);
  } catch (...) {
    return;  // stay at the present size: chains get longer, nothing breaks
  }
  old.swap(buckets_);
  --bucket_shift_;
  for (tcp_control_block* head : old) {
    while (head != nullptr) {
      tcp_control_block* b = head;
      head = b->next_in_bucket_;
      insert(b);
    }
  }
}

tcp_control_block* tcp_layer::create(const tcp_tuple& t) noexcept {
  if (live_ >= max_blocks_ && !time_wait_.empty()) {
    // Out of blocks: the oldest TIME-WAIT connection makes room (its
    // duty, absorbing old duplicates, matters least).
    destroy(&time_wait_.front());
  }
  if (live_ >= max_blocks_) return nullptr;
  if (free_slots_.empty()) {
    constexpr std::size_t slot = (sizeof(tcp_control_block) + alignof(std::max_align_t) - 1) /
                                 alignof(std::max_align_t) * alignof(std::max_align_t);
    std::unique_ptr<std::byte[]> block(new (std::nothrow) std::byte[slot * block_size]);
    if (!block) return nullptr;
    try {
      blocks_.push_back(std::move(block));
      free_slots_.reserve(free_slots_.size() + block_size);
    } catch (...) {
      return nullptr;
    }
    std::byte* base = blocks_.back().get();
    for (std::size_t i = block_size; i-- > 0;) free_slots_.push_back(base + i * slot);
  }
  void* mem = free_slots_.back();
  free_slots_.pop_back();
  auto* b = new (mem) tcp_control_block(*this, t, mtu_mss(t.remote_ip));
  if (live_ + 1 > buckets_.size()) grow_table();
  insert(b);
  ++live_;
  return b;
}

void tcp_layer::destroy(tcp_control_block* b) noexcept {
  half_open_gone(*b);
  if (b->conn_ != nullptr) {
    transport_loop::slot(*b->conn_).ptr = nullptr;
    b->conn_ = nullptr;
  }
  remove(b);
  b->~tcp_control_block();
  free_slots_.push_back(b);  // capacity reserved per block: no allocation
  --live_;
}

std::string tcp_layer::describe() const {
  std::string out;
  for (tcp_control_block* head : buckets_)
    for (tcp_control_block* b = head; b != nullptr; b = b->next_in_bucket_) out += b->describe() + "\n";
  return out;
}

// ---- metrics --------------------------------------------------------------------------------------

void tcp_layer::metrics(const std::string& prefix, metric_list& out) const {
  std::size_t tw = 0;
  for (auto it = time_wait_.begin(); it != time_wait_.end(); ++it) ++tw;
  out.push_back({prefix + "inet.tcp_control_blocks", live_});
  out.push_back({prefix + "inet.tcp_in_time_wait", tw});
  std::size_t half = 0;
  for (const auto& le : listeners_) half += le.half_open;
  out.push_back({prefix + "inet.tcp_half_open", half});
}

}  // namespace sluice::inet
