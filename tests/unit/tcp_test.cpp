// The user-space TCP in a real loop (loop<memory_transport>) on a manual
// clock. Two ways:
//
//  - tcp_peer: the test plays the peer on the other end of a memory wire,
//    writing every segment byte by byte (tests/support/frames) and reading
//    what the stack sends: each state transition of RFC 9293 (passive,
//    active and simultaneous open, half-close both ways, active, passive and
//    simultaneous close, TIME-WAIT), RST in every state with RFC 5961's
//    rules, retransmission (RFC 6298, Karn), fast retransmit and NewReno or
//    SACK recovery, window scaling, zero windows and probes, window
//    updates, delayed ACK, Nagle, keepalive, PAWS, the out-of-order queue's
//    limit, sequence numbers across 2^32, SYN cookies and a SYN flood into
//    a full backlog.
//  - tcp_pair: two stacks (two loops, one thread) over a wire that loses,
//    duplicates, reorders and delays: transfers both ways are byte-exact at
//    1 to 20 % impairment with either congestion control, with and without
//    SACK, and replay exactly for the same seed.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "frames.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/mail_hub.hpp"
#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/stack_group.hpp"
#include "sluice/inet/tcp_seq.hpp"
#include "sluice/memory/memory_port.hpp"
#include "sluice/memory/memory_transport.hpp"

namespace sluice::inet {
namespace {

using namespace std::chrono_literals;
namespace fr = test::frames;
using memory::impairments;
using memory::memory_port;
using memory::memory_transport;
using memory::memory_wire;
using stack_loop = loop<memory_transport>;

constexpr std::uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

const std::uint32_t our_ip = fr::ip("10.0.0.2");
const std::uint32_t peer_ip = fr::ip("10.0.0.1");
const mac_address peer_mac{{0x02, 0, 0, 0, 0, 0x11}};

// A reproducible byte stream: byte i depends on (seed, i) only.
std::string pattern(std::size_t n, std::uint64_t seed, std::size_t from = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t z = seed + (from + i) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    s[i] = static_cast<char>(z ^ (z >> 31));
  }
  return s;
}

// Records what one connection saw; hooks for what it does.
struct recording_handler final : handler {
  bool consume = true;  // false: at_data sees the input untouched
  int opened = 0;
  std::string data;
  bool peer_shut = false;
  int closes = 0;
  close_reason reason = close_reason::none;
  int error = 0;
  connection_handle handle{};
  std::function<void(connection&)> at_open, at_data, at_peer_shutdown, at_writable;
  void on_open(connection& c) noexcept override {
    ++opened;
    handle = c.handle();
    if (at_open) at_open(c);
  }
  void on_data(connection& c) noexcept override {
    if (consume) {
      while (!c.input().empty()) data += std::string(*c.input().next(std::min<std::size_t>(c.input().size(), 4096)));
    }
    if (at_data) at_data(c);
  }
  void on_writable(connection& c) noexcept override {
    if (at_writable) at_writable(c);
  }
  void on_peer_shutdown(connection& c) noexcept override {
    peer_shut = true;
    if (at_peer_shutdown) {
      at_peer_shutdown(c);
    } else {
      c.close(close_reason::peer_closed);
    }
  }
  void on_close(connection& c, close_reason r) noexcept override {
    ++closes;
    reason = r;
    error = c.error();
  }
};

inet_transport_options transport_options(const tcp_config& tcp, std::string_view ip = "10.0.0.2/24") {
  inet_transport_options o;
  o.stack.iface = interface_config::parse(ip, "").value();
  o.stack.tcp = tcp;
  o.transport_name = "memory";
  return o;
}

// ---- the test as the peer -------------------------------------------------------------------

struct tcp_peer : ::testing::Test {
  manual_clock clock;
  std::unique_ptr<memory_wire> wire;
  std::unique_ptr<memory_port> peer;
  std::unique_ptr<stack_loop> l;
  tcp_config tcfg;
  loop_options lopts;
  recording_handler server;
  recording_handler client;
  // The peer's side of the connection under test.
  std::uint16_t our_port = 80;
  std::uint16_t peer_port = 40000;
  std::uint32_t peer_seq = 0x10000000;  // next sequence number the peer sends
  std::uint32_t our_seq = 0;            // next sequence number expected from the stack
  std::uint32_t peer_ts = 1000;         // the peer's timestamp clock, when it uses timestamps
  bool peer_uses_ts = false;
  std::uint32_t last_ts_val = 0;        // the stack's latest TSval

  tcp_peer() {
    tcfg.secret = 0x5eed;  // replayable ISNs
  }
  void make() {
    memory_wire::options wo;
    wo.clock = {&clock};
    wire = std::make_unique<memory_wire>(wo);
    peer = std::make_unique<memory_port>(*wire, memory_wire::side::b);
    lopts.clock = {&clock};
    l = std::make_unique<stack_loop>(lopts, 0, std::make_unique<memory_port>(*wire, memory_wire::side::a),
                                     transport_options(tcfg));
    // The peer introduces itself (ARP), as a kernel does before its first segment.
    step();
    (void)fr::receive_all(*peer);
    ASSERT_TRUE(fr::send(*peer, fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806,
                                             fr::arp(1, peer_mac, peer_ip, mac_address{}, our_ip))));
    step();
    ASSERT_EQ(fr::receive_all(*peer).size(), 1u);
  }
  void SetUp() override {}
  // The stack's non-zero counters, for failure messages.
  std::string counters() {
    metric_list m;
    st().metrics("", m);
    std::string s;
    for (const auto& e : m)
      if (e.value != 0) s += e.name + "=" + std::to_string(e.value) + " ";
    return s;
  }
  void TearDown() override {
    if (!l) return;
    if (HasFailure()) ADD_FAILURE() << "stack counters: " << counters();
    l.reset();
    (void)fr::receive_all(*peer);  // frames still in flight are not leaks
    EXPECT_EQ(wire->free_buffers(memory_wire::side::a), memory_wire::options{}.buffers_per_end)
        << "the stack leaked packet buffers";
    peer.reset();
    wire.reset();
  }

  stack& st() { return l->transport().ip(); }
  tcp_layer& tcp() { return st().tcp(); }
  const inet_stats& stats() { return st().stats(); }
  tcp_tuple tuple() const { return {ip_address::v4(our_ip), ip_address::v4(peer_ip), our_port, peer_port}; }
  tcp_control_block* block() { return tcp().find(tuple()); }
  tcp_state state() {
    tcp_control_block* b = block();
    return b != nullptr ? b->state() : tcp_state::closed;
  }
  void step(int n = 1) {
    for (int i = 0; i < n; ++i) l->run_once();
  }
  void advance(duration d) {
    clock.advance(d);
    step(2);
  }
  // What the stack sent, TCP only (ARP requests and the like are left out).
  std::vector<fr::decoded> out() {
    std::vector<fr::decoded> v;
    for (const auto& f : fr::receive_all(*peer)) {
      auto d = fr::decode(f);
      if (d.protocol != 6) continue;
      EXPECT_TRUE(d.ip_checksum_ok);
      EXPECT_TRUE(d.l4_checksum_ok) << "the stack's TCP checksum";
      EXPECT_EQ(d.dst, peer_mac);
      if (d.timestamps) last_ts_val = d.timestamps->first;
      v.push_back(std::move(d));
    }
    return v;
  }
  // Steps, then the one segment the stack should have sent.
  fr::decoded one() {
    step();
    auto v = out();
    EXPECT_EQ(v.size(), 1u) << describe(v);
    return v.empty() ? fr::decoded{} : v.front();
  }
  static std::string describe(const std::vector<fr::decoded>& v) {
    std::string s;
    for (const auto& d : v) {
      s += "[seq " + std::to_string(d.seq) + " ack " + std::to_string(d.ack) + " flags " + std::to_string(d.flags) +
           " win " + std::to_string(d.window) + " len " + std::to_string(d.payload.size()) + "] ";
    }
    return s;
  }
  // A segment from the peer.
  void in(std::uint8_t flags, std::string_view payload = {}, std::uint16_t window = 65535, std::string options = {},
          std::optional<std::uint32_t> seq = {}, std::optional<std::uint32_t> ack = {}) {
    if (peer_uses_ts && options.find('\x08') == std::string::npos) {
      options += fr::tcp_option_timestamps(peer_ts, last_ts_val);
    }
    const std::string seg = fr::tcp(peer_ip, our_ip, peer_port, our_port, payload,
                                    {.seq = seq.value_or(peer_seq), .ack = ack.value_or(our_seq), .flags = flags,
                                     .window = window, .options = options});
    ASSERT_TRUE(fr::send(*peer, fr::ethernet(wire->mac(memory_wire::side::a), peer_mac, 0x0800,
                                             fr::ipv4(peer_ip, our_ip, 6, seg))));
    if (!seq) peer_seq += static_cast<std::uint32_t>(payload.size()) + ((flags & (SYN | FIN)) != 0 ? 1u : 0u);
  }

  void in_frame(const std::string& frame) { ASSERT_TRUE(fr::send(*peer, frame)); }
  std::string syn_options(bool ts, int wscale = 7, bool sack = true) {
    std::string o = fr::tcp_option_mss(1460);
    if (sack) o += fr::tcp_option_sack_permitted();
    if (ts) o += fr::tcp_option_timestamps(peer_ts, 0);
    if (wscale >= 0) o += fr::tcp_option_wscale(static_cast<std::uint8_t>(wscale));
    return o;
  }
  void listen(handler& h) {
    auto r = l->listen(endpoint::ipv4(0, our_port), h);
    ASSERT_TRUE(r.ok()) << r.err().message;
  }
  // Passive open: SYN from the peer, SYN-ACK, ACK; returns the SYN-ACK.
  fr::decoded accept(bool ts = false, int wscale = 7, bool sack = true, std::uint16_t window = 65535) {
    peer_uses_ts = ts;
    in(SYN, {}, window, syn_options(ts, wscale, sack));
    fr::decoded sa = one();
    EXPECT_EQ(sa.flags, SYN | ACK);
    EXPECT_EQ(sa.ack, peer_seq);
    our_seq = sa.seq + 1;
    in(ACK, {}, window);
    step();
    EXPECT_EQ(server.opened, 1);
    EXPECT_EQ(state(), tcp_state::established);
    return sa;
  }
  // The stack's handler closes on the first byte: our FIN has gone out.
  void closed_by_us_on_the_first_byte() {
    make();
    server.at_data = [](connection& c) { c.close(); };
    listen(server);
    accept();
    in(ACK, "x");
    (void)one();
    our_seq += 1;
  }
  // ... and the peer answers with its FIN: TIME-WAIT on our side.
  void in_time_wait_after_our_close() {
    closed_by_us_on_the_first_byte();
    in(FIN | ACK);
    step(2);
    (void)out();
  }
  // Active open from the stack: returns the SYN; answers with a SYN-ACK.
  fr::decoded connect_out(bool ts = false, int wscale = 7, bool sack = true) {
    auto r = l->connect(endpoint::ipv4(peer_ip, 9000), client);
    EXPECT_TRUE(r.ok());
    fr::decoded syn = one();
    EXPECT_EQ(syn.flags, SYN);
    our_port = syn.sport;
    peer_port = 9000;
    our_seq = syn.seq + 1;
    peer_uses_ts = ts && syn.timestamps.has_value();
    in(SYN | ACK, {}, 65535, syn_options(ts, wscale, sack));
    step();
    EXPECT_EQ(client.opened, 1);
    return syn;
  }
  connection* conn(const recording_handler& h) { return l->get(h.handle); }
};

// ---- opening --------------------------------------------------------------------------------

TEST_F(tcp_peer, passive_open_answers_a_syn_with_its_options_then_opens_the_connection) {
  make();
  listen(server);
  peer_uses_ts = true;
  in(SYN, {}, 65535, syn_options(true));
  fr::decoded sa = one();
  EXPECT_EQ(sa.flags, SYN | ACK);
  EXPECT_EQ(sa.ack, peer_seq) << "acknowledges the SYN";
  EXPECT_EQ(sa.mss, 1460) << "MTU 1500 less 40";
  EXPECT_EQ(sa.wscale, 3) << "256 KiB receive buffer: 65535 << 3 covers it";
  EXPECT_TRUE(sa.sack_permitted);
  ASSERT_TRUE(sa.timestamps);
  EXPECT_EQ(sa.timestamps->second, peer_ts) << "echoes the peer's TSval";
  EXPECT_EQ(state(), tcp_state::syn_received);
  EXPECT_EQ(tcp().syn_queue(our_port), 1u);
  EXPECT_EQ(server.opened, 0) << "not before the handshake completes";
  our_seq = sa.seq + 1;
  in(ACK);
  step();
  EXPECT_EQ(state(), tcp_state::established);
  EXPECT_EQ(tcp().syn_queue(our_port), 0u);
  ASSERT_EQ(server.opened, 1);
  EXPECT_EQ(conn(server)->peer(), endpoint::ipv4(peer_ip, peer_port));
  EXPECT_EQ(stats().tcp_passive_opens.get(), 1u);
}

TEST_F(tcp_peer, a_lost_syn_ack_is_sent_again_on_the_peers_retransmitted_syn_and_on_its_own_timer) {
  make();
  listen(server);
  in(SYN, {}, 65535, syn_options(false));
  fr::decoded sa = one();
  in(SYN, {}, 65535, syn_options(false), peer_seq - 1);
  fr::decoded again = one();
  EXPECT_EQ(again.flags, SYN | ACK);
  EXPECT_EQ(again.seq, sa.seq);
  advance(1100ms);  // RFC 6298 2.1: the first RTO is 1 s
  auto v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].flags, SYN | ACK);
  advance(1100ms);
  EXPECT_TRUE(out().empty()) << "backed off to 2 s";
  advance(1000ms);
  EXPECT_EQ(out().size(), 1u);
}

TEST_F(tcp_peer, active_open_sends_a_syn_and_opens_on_the_syn_ack) {
  make();
  auto r = l->connect(endpoint::ipv4(peer_ip, 9000), client);
  ASSERT_TRUE(r.ok());
  fr::decoded syn = one();
  EXPECT_EQ(syn.flags, SYN);
  EXPECT_EQ(syn.dport, 9000);
  EXPECT_GE(syn.sport, 49152) << "an ephemeral port";
  EXPECT_EQ(syn.mss, 1460);
  EXPECT_TRUE(syn.wscale.has_value());
  EXPECT_TRUE(syn.sack_permitted);
  EXPECT_TRUE(syn.timestamps.has_value());
  our_port = syn.sport;
  peer_port = 9000;
  our_seq = syn.seq + 1;
  EXPECT_EQ(state(), tcp_state::syn_sent);
  EXPECT_EQ(client.opened, 0);
  in(SYN | ACK, {}, 65535, syn_options(false));
  fr::decoded ack = one();
  EXPECT_EQ(ack.flags, ACK) << "the handshake's third segment";
  EXPECT_EQ(ack.seq, our_seq);
  EXPECT_EQ(ack.ack, peer_seq);
  EXPECT_EQ(client.opened, 1);
  EXPECT_EQ(state(), tcp_state::established);
  EXPECT_FALSE(ack.timestamps) << "the peer did not echo the option: none";
  EXPECT_EQ(stats().tcp_active_opens.get(), 1u);
}

TEST_F(tcp_peer, simultaneous_open_goes_through_syn_received) {
  make();
  auto r = l->connect(endpoint::ipv4(peer_ip, 9000), client);
  ASSERT_TRUE(r.ok());
  fr::decoded syn = one();
  our_port = syn.sport;
  peer_port = 9000;
  our_seq = syn.seq + 1;
  // The peer's own SYN crosses ours (RFC 9293 figure 8).
  in(SYN, {}, 65535, fr::tcp_option_mss(1400), {}, 0);
  fr::decoded sa = one();
  EXPECT_EQ(sa.flags, SYN | ACK);
  EXPECT_EQ(sa.seq, syn.seq) << "our SYN again, now acknowledging theirs";
  EXPECT_EQ(sa.ack, peer_seq);
  EXPECT_EQ(state(), tcp_state::syn_received);
  EXPECT_EQ(client.opened, 0);
  in(SYN | ACK, {}, 65535, fr::tcp_option_mss(1400), peer_seq - 1);
  step();
  EXPECT_EQ(state(), tcp_state::established);
  EXPECT_EQ(client.opened, 1);
}

TEST_F(tcp_peer, a_refused_connect_closes_with_connect_refused_and_a_bad_rst_is_ignored) {
  make();
  auto r = l->connect(endpoint::ipv4(peer_ip, 9000), client);
  ASSERT_TRUE(r.ok());
  fr::decoded syn = one();
  our_port = syn.sport;
  peer_port = 9000;
  // RFC 9293 3.10.7.3: a RST whose ACK does not acknowledge our SYN is not ours.
  in(RST | ACK, {}, 0, {}, 0, syn.seq + 5);
  step();
  EXPECT_EQ(client.closes, 0);
  EXPECT_EQ(state(), tcp_state::syn_sent);
  in(RST | ACK, {}, 0, {}, 0, syn.seq + 1);
  step(2);
  EXPECT_EQ(client.closes, 1);
  EXPECT_EQ(client.reason, close_reason::connect_refused);
  EXPECT_EQ(client.error, ECONNREFUSED);
  EXPECT_EQ(client.opened, 0);
  EXPECT_EQ(block(), nullptr);
}

TEST_F(tcp_peer, syn_retries_then_connect_timeout) {
  lopts.connect_timeout = 0s;  // the stack's own retries decide
  tcfg.syn_retries = 2;
  make();
  auto r = l->connect(endpoint::ipv4(peer_ip, 9000), client);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(one().flags, SYN);
  advance(1s);
  EXPECT_EQ(out().size(), 1u) << "retry 1 after 1 s";
  advance(2s);
  EXPECT_EQ(out().size(), 1u) << "retry 2 after 2 more";
  advance(4s);
  step();
  EXPECT_EQ(client.closes, 1);
  EXPECT_EQ(client.reason, close_reason::connect_timeout);
  EXPECT_EQ(client.error, ETIMEDOUT);
}

TEST_F(tcp_peer, segments_for_nothing_are_answered_with_rst) {
  make();
  // RFC 9293 3.10.7.1: an ACK gets <SEQ=SEG.ACK><CTL=RST>...
  in(ACK, "x", 65535, {}, 500, 777);
  fr::decoded r1 = one();
  EXPECT_EQ(r1.flags, RST);
  EXPECT_EQ(r1.seq, 777u);
  // ...anything else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  in(SYN, {}, 65535, {}, 1000);
  fr::decoded r2 = one();
  EXPECT_EQ(r2.flags, RST | ACK);
  EXPECT_EQ(r2.seq, 0u);
  EXPECT_EQ(r2.ack, 1001u);
  // A RST is never answered.
  in(RST, {}, 0, {}, 5);
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(stats().dropped(drop_reason::tcp_no_connection), 3u);
  EXPECT_EQ(stats().tcp_resets_out.get(), 2u);
}

// ---- data and windows ------------------------------------------------------------------------

TEST_F(tcp_peer, data_both_ways_is_acknowledged_and_the_answer_carries_the_ack) {
  make();
  server.at_data = [](connection& c) { (void)c.write("pong:" + std::to_string(c.input().size())); };
  listen(server);
  accept();
  in(ACK | PSH, "ping");
  fr::decoded d = one();
  EXPECT_EQ(server.data, "ping");
  EXPECT_EQ(d.payload, "pong:0") << "one segment: the answer, carrying the ACK";
  EXPECT_EQ(d.ack, peer_seq);
  EXPECT_EQ(d.seq, our_seq);
  EXPECT_TRUE(d.has(PSH));
  our_seq += 6;
  in(ACK);
  step();
  EXPECT_TRUE(out().empty()) << "an ACK is not acknowledged";
  EXPECT_TRUE(conn(server)->output().empty()) << "acknowledged bytes leave the output chain";
}

TEST_F(tcp_peer, a_large_write_is_cut_into_mss_segments_within_the_peers_window) {
  make();
  listen(server);
  accept(false, 0);  // window scale 0 (shift 0): the peer's window is 65535 bytes
  ASSERT_TRUE(conn(server)->write(pattern(100000, 1)));
  step();
  auto v = out();
  // The initial window (RFC 6928): 10 segments of 1460.
  ASSERT_EQ(v.size(), 10u);
  std::uint32_t at = our_seq;
  for (const auto& s : v) {
    EXPECT_EQ(s.seq, at);
    EXPECT_EQ(s.payload.size(), 1460u);
    EXPECT_EQ(s.payload, pattern(1460, 1, at - our_seq));
    at += 1460;
  }
  // Acknowledging all ten opens the congestion window (slow start).
  in(ACK, {}, 65535, {}, {}, at);
  step();
  v = out();
  EXPECT_EQ(v.size(), 12u) << "slow start: one ACK grows the window by at most two segments (RFC 3465, L = 2)";
}


// ---- closing ----------------------------------------------------------------------------------

TEST_F(tcp_peer, the_peers_half_close_lets_the_application_answer_then_last_ack_closes) {
  make();
  server.at_peer_shutdown = [](connection& c) {
    (void)c.write("bye");
    c.close();
  };
  listen(server);
  accept();
  in(ACK, "last words");
  step();
  (void)out();
  in(FIN | ACK);
  step();
  EXPECT_TRUE(server.peer_shut);
  EXPECT_EQ(server.data, "last words");
  auto v = out();
  // The ACK of the FIN rides on the answer; the FIN waits until the answer
  // is acknowledged (the output chain is the send queue).
  ASSERT_EQ(v.size(), 1u) << describe(v);
  EXPECT_EQ(v[0].payload, "bye");
  EXPECT_EQ(v[0].ack, peer_seq);
  EXPECT_EQ(state(), tcp_state::close_wait);
  our_seq += 3;
  in(ACK);
  fr::decoded fin = one();
  EXPECT_EQ(fin.flags, FIN | ACK);
  EXPECT_EQ(fin.seq, our_seq);
  EXPECT_EQ(state(), tcp_state::last_ack);
  our_seq += 1;
  in(ACK);
  step(2);
  EXPECT_EQ(block(), nullptr) << "LAST-ACK ends in CLOSED";
  EXPECT_EQ(server.closes, 1);
  EXPECT_EQ(server.reason, close_reason::local);
}

TEST_F(tcp_peer, active_close_walks_fin_wait_1_fin_wait_2_time_wait_and_ends_after_2_msl) {
  make();
  server.at_data = [](connection& c) { c.close(); };
  listen(server);
  accept();
  in(ACK, "close please");
  fr::decoded fin = one();
  EXPECT_EQ(fin.flags, FIN | ACK);
  EXPECT_EQ(fin.ack, peer_seq) << "the data is acknowledged with the FIN";
  EXPECT_EQ(state(), tcp_state::fin_wait_1);
  our_seq += 1;
  in(ACK);
  step();
  EXPECT_EQ(state(), tcp_state::fin_wait_2);
  EXPECT_EQ(server.closes, 0) << "the loop lingers for the peer's FIN";
  in(FIN | ACK);
  fr::decoded ack = one();
  EXPECT_EQ(ack.flags, ACK);
  EXPECT_EQ(ack.ack, peer_seq);
  step();
  EXPECT_EQ(state(), tcp_state::time_wait);
  EXPECT_EQ(server.closes, 1);
  EXPECT_EQ(server.reason, close_reason::local);
  EXPECT_EQ(stats().tcp_time_wait.get(), 1u);
  // A retransmitted FIN is acknowledged again and restarts the 2 MSL.
  advance(30s);
  in(FIN | ACK, {}, 65535, {}, peer_seq - 1);
  EXPECT_EQ(one().flags, ACK);
  advance(59s);
  EXPECT_EQ(state(), tcp_state::time_wait);
  advance(2s);
  EXPECT_EQ(block(), nullptr) << "TIME-WAIT lasts 2 MSL (60 s)";
  EXPECT_EQ(tcp().control_blocks(), 0u);
}

TEST_F(tcp_peer, simultaneous_close_goes_through_closing) {
  make();
  server.at_data = [](connection& c) { c.shutdown_write(); };
  listen(server);
  accept();
  in(ACK, "x");
  fr::decoded fin = one();
  ASSERT_EQ(fin.flags, FIN | ACK);
  // The peer's FIN crosses ours: it does not acknowledge our FIN.
  in(FIN | ACK);
  fr::decoded ack = one();
  EXPECT_EQ(ack.ack, peer_seq);
  EXPECT_EQ(state(), tcp_state::closing);
  our_seq += 1;
  in(ACK);
  step();
  EXPECT_EQ(state(), tcp_state::time_wait);
}

TEST_F(tcp_peer, our_half_close_still_reads_what_the_peer_sends) {
  make();
  server.at_open = [](connection& c) {
    (void)c.write("hello");
    c.shutdown_write();
  };
  server.at_peer_shutdown = [](connection& c) { c.close(close_reason::peer_closed); };
  listen(server);
  accept();
  fr::decoded hello = one();
  EXPECT_EQ(hello.payload, "hello");
  our_seq += 5;
  in(ACK);
  fr::decoded fin = one();
  EXPECT_EQ(fin.flags, FIN | ACK);
  our_seq += 1;
  in(ACK);
  step();
  EXPECT_EQ(state(), tcp_state::fin_wait_2);
  in(ACK, "still talking");
  EXPECT_EQ(one().ack, peer_seq);
  EXPECT_EQ(server.data, "still talking");
  in(FIN | ACK);
  step(2);
  EXPECT_EQ(server.closes, 1);
  EXPECT_EQ(server.reason, close_reason::peer_closed);
  EXPECT_EQ(state(), tcp_state::time_wait);
}

TEST_F(tcp_peer, closing_with_unacknowledged_output_waits_then_fin_follows_the_data) {
  make();
  server.at_open = [](connection& c) {
    (void)c.write(std::string(3000, 'z'));
    c.close();
  };
  listen(server);
  accept();
  step();
  auto v = out();
  ASSERT_EQ(v.size(), 3u) << describe(v);
  EXPECT_FALSE(v.back().has(FIN)) << "the FIN waits for the ACK of the data";
  our_seq += 3000;
  in(ACK);
  fr::decoded fin = one();
  EXPECT_EQ(fin.flags, FIN | ACK);
  EXPECT_EQ(fin.seq, our_seq);
}

TEST_F(tcp_peer, abort_sends_rst_and_frees_at_once) {
  make();
  server.at_data = [](connection& c) { c.abort(); };
  listen(server);
  accept();
  in(ACK, "reset me");
  fr::decoded r = one();
  EXPECT_TRUE(r.has(RST));
  EXPECT_EQ(r.seq, our_seq);
  step();
  EXPECT_EQ(block(), nullptr);
  EXPECT_EQ(server.reason, close_reason::aborted);
}

// ---- RST and RFC 5961 in every state -----------------------------------------------------------------

TEST_F(tcp_peer, rst_in_syn_received_returns_a_passive_open_to_listen_silently) {
  make();
  listen(server);
  in(SYN, {}, 65535, syn_options(false));
  fr::decoded sa = one();
  our_seq = sa.seq + 1;
  in(RST);
  step();
  EXPECT_EQ(block(), nullptr);
  EXPECT_EQ(tcp().syn_queue(our_port), 0u);
  EXPECT_EQ(server.opened + server.closes, 0) << "the application never heard of it";
}

TEST_F(tcp_peer, rst_in_synchronized_states_resets_only_when_exact_else_challenge_ack) {
  make();
  listen(server);
  accept();
  in(ACK, "abc");
  (void)one();
  // In the window but not at RCV.NXT: a challenge ACK (RFC 5961 3.2).
  in(RST, {}, 0, {}, peer_seq + 100);
  fr::decoded ch = one();
  EXPECT_EQ(ch.flags, ACK);
  EXPECT_EQ(ch.ack, peer_seq);
  EXPECT_EQ(state(), tcp_state::established);
  EXPECT_EQ(stats().tcp_challenge_acks.get(), 1u);
  // Out of the window: dropped without a word.
  in(RST, {}, 0, {}, peer_seq + 0x40000000u);
  step();
  EXPECT_TRUE(out().empty());
  EXPECT_EQ(state(), tcp_state::established);
  // Exactly at RCV.NXT: the connection is reset.
  in(RST);
  step(2);
  EXPECT_EQ(block(), nullptr);
  EXPECT_EQ(server.reason, close_reason::peer_reset);
  EXPECT_EQ(server.error, ECONNRESET);
  EXPECT_EQ(stats().tcp_resets_in.get(), 1u);
}

// Brings a passive connection to `want`, then sends an exact RST; reports
// whether the block died and the application saw peer_reset (if attached).
struct rst_case {
  tcp_state want;
  bool app_attached;
};

class tcp_rst_every_state : public tcp_peer, public ::testing::WithParamInterface<rst_case> {};

TEST_P(tcp_rst_every_state, an_exact_rst_ends_the_connection) {
  make();
  const tcp_state want = GetParam().want;
  server.at_data = [want](connection& c) {
    if (want == tcp_state::fin_wait_1 || want == tcp_state::fin_wait_2 || want == tcp_state::closing) c.shutdown_write();
  };
  server.at_peer_shutdown = [](connection&) {};  // stay in CLOSE-WAIT
  listen(server);
  accept();
  in(ACK, "x");
  step();
  (void)out();
  switch (want) {
    case tcp_state::fin_wait_1:
      break;
    case tcp_state::fin_wait_2:
      our_seq += 1;
      in(ACK);
      step();
      break;
    case tcp_state::closing:
      in(FIN | ACK);
      step();
      (void)out();
      break;
    case tcp_state::close_wait:
      in(FIN | ACK);
      step();
      (void)out();
      break;
    case tcp_state::last_ack:
      in(FIN | ACK);
      step();
      (void)out();
      l->get(server.handle)->shutdown_write();
      step();
      (void)out();
      break;
    default:
      break;
  }
  ASSERT_EQ(state(), want) << to_string(state());
  in(RST);
  step(2);
  EXPECT_EQ(block(), nullptr) << to_string(want);
  if (GetParam().app_attached) {
    EXPECT_EQ(server.reason, close_reason::peer_reset) << to_string(want);
  }
}

INSTANTIATE_TEST_SUITE_P(states, tcp_rst_every_state,
                         ::testing::Values(rst_case{tcp_state::established, true}, rst_case{tcp_state::fin_wait_1, true},
                                           rst_case{tcp_state::fin_wait_2, true}, rst_case{tcp_state::close_wait, true},
                                           rst_case{tcp_state::closing, false}, rst_case{tcp_state::last_ack, true}),
                         [](const auto& info) {
                           std::string n = to_string(info.param.want);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_F(tcp_peer, rst_in_time_wait_is_ignored_as_rfc_1337_asks) {
  in_time_wait_after_our_close();
  ASSERT_EQ(state(), tcp_state::time_wait);
  in(RST);
  step();
  EXPECT_EQ(state(), tcp_state::time_wait);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_rst_ignored), 1u);
}

TEST_F(tcp_peer, a_syn_on_an_established_connection_gets_a_challenge_ack_and_changes_nothing) {
  make();
  listen(server);
  accept();
  in(SYN, {}, 65535, syn_options(false), peer_seq + 5);
  fr::decoded ch = one();
  EXPECT_EQ(ch.flags, ACK);
  EXPECT_EQ(ch.ack, peer_seq);
  EXPECT_EQ(state(), tcp_state::established);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_syn_in_window), 1u);
}

TEST_F(tcp_peer, acks_of_unsent_data_and_challenge_acks_are_rate_limited) {
  tcfg.challenge_ack_limit = 2;
  make();
  listen(server);
  accept();
  for (int i = 0; i < 4; ++i) in(ACK, {}, 65535, {}, {}, our_seq + 1000);
  step();
  auto v = out();
  EXPECT_EQ(v.size(), 2u) << "RFC 5961 7: two challenge ACKs this second";
  EXPECT_EQ(stats().dropped(drop_reason::tcp_bad_ack), 4u);
  advance(1s);
  in(ACK, {}, 65535, {}, {}, our_seq + 1000);
  step();
  EXPECT_EQ(out().size(), 1u) << "a new second, a new budget";
}

// Issue 20 item 7: 2000 forged FINs at random sequence numbers drew 1929
// ACKs. Out-of-window (and PAWS) answers are now one per connection per
// invalid_ack_interval; a plausible duplicate is still answered every time.
TEST_F(tcp_peer, regression_acks_to_out_of_window_segments_are_rate_limited) {
  make();
  listen(server);
  accept();
  in(ACK, "abc");
  (void)one();
  std::mt19937 rng(20);
  std::size_t acks = 0;
  for (int batch = 0; batch < 20; ++batch) {
    for (int i = 0; i < 100; ++i) in(FIN | ACK, {}, 65535, {}, static_cast<std::uint32_t>(rng()));
    step();
    acks += out().size();
  }
  EXPECT_EQ(state(), tcp_state::established) << "no forged FIN was taken";
  EXPECT_LE(acks, 2u) << "one answer per interval (a forger may land in the duplicate zone by chance)";
  EXPECT_GE(stats().tcp_invalid_acks_limited.get(), 1998u);
  EXPECT_GE(stats().dropped(drop_reason::tcp_out_of_window), 1999u);
  // A retransmission of what we hold is answered every time (with D-SACK).
  for (int i = 0; i < 3; ++i) {
    in(ACK, "abc", 65535, {}, peer_seq - 3);
    EXPECT_EQ(one().ack, peer_seq) << "duplicates are not rate-limited";
  }
  // The interval passes: a forged segment is answered once more.
  advance(500ms);
  in(FIN | ACK, {}, 65535, {}, peer_seq + 0x40000000u);
  in(FIN | ACK, {}, 65535, {}, peer_seq + 0x40000001u);
  step();
  EXPECT_EQ(out().size(), 1u);
  EXPECT_EQ(server.data, "abc");
}

TEST_F(tcp_peer, old_timestamps_are_rejected_by_paws) {
  make();
  listen(server);
  accept(true);
  peer_ts += 100;
  in(ACK, "new");
  (void)one();
  EXPECT_EQ(server.data, "new");
  in(ACK, "old", 65535, fr::tcp_option_timestamps(peer_ts - 50, last_ts_val));
  fr::decoded a = one();
  EXPECT_EQ(a.ack, peer_seq - 3) << "acknowledged, not accepted";
  EXPECT_EQ(server.data, "new");
  EXPECT_EQ(stats().dropped(drop_reason::tcp_paws), 1u);
}


// Issue 20 item 5: every ICMP error was ignored, so a connection over a path
// with a smaller MTU stalled (our DF segments were dropped by the router).
// Now a frag-needed that quotes a segment in flight (RFC 5927 4.1) lowers the
// path MSS (RFC 1191) and what is in flight is resent at once at the new size;
// one that quotes anything else changes nothing.
TEST_F(tcp_peer, regression_icmp_frag_needed_lowers_the_path_mss_and_resends) {
  make();
  listen(server);
  accept(true);
  const std::string data = pattern(6000, 5);
  ASSERT_TRUE(conn(server)->write(data));
  step();
  std::vector<std::string> raw = fr::receive_all(*peer);
  ASSERT_GE(raw.size(), 2u);
  const fr::decoded first = fr::decode(raw[0]);
  ASSERT_EQ(first.payload.size(), 1448u) << "MSS 1460 less the timestamp option";
  EXPECT_NE(std::to_integer<unsigned>(static_cast<std::byte>(raw[0][14 + 6])) & 0x40u, 0u) << "DF is set";
  const std::uint32_t una = first.seq;
  const std::uint32_t router = fr::ip("10.0.0.254");
  auto frag_needed = [&](std::string quoted, std::uint16_t mtu) {
    in_frame(fr::ethernet(wire->mac(memory_wire::side::a), peer_mac, 0x0800,
                          fr::ipv4(router, our_ip, 1, fr::icmp(3, 4, 0, mtu, quoted))));
  };
  // A forged one: the quoted sequence number is not in flight.
  std::string forged = raw[0].substr(14, 28);
  forged[24] = static_cast<char>(forged[24] ^ 0x40);
  frag_needed(forged, 1000);
  step();
  EXPECT_TRUE(fr::receive_all(*peer).empty()) << "nothing resent";
  EXPECT_EQ(stats().dropped(drop_reason::icmp_unverified), 1u);
  EXPECT_EQ(stats().tcp_pmtu_updates.get(), 0u);
  // The router's: the first segment did not fit a 1000-byte link.
  frag_needed(raw[0].substr(14, 28), 1000);
  step();
  EXPECT_EQ(stats().tcp_pmtu_updates.get(), 1u);
  std::map<std::uint32_t, std::string> got;
  auto take = [&](const std::vector<fr::decoded>& v) {
    for (const auto& d : v) {
      EXPECT_LE(d.payload.size(), 1000u - 40 - 12) << "every segment fits the path";
      if (!d.payload.empty()) got[d.seq] = d.payload;
    }
  };
  std::vector<fr::decoded> resent = out();
  ASSERT_FALSE(resent.empty()) << "resent at once, not after the RTO";
  EXPECT_EQ(resent[0].seq, una) << "from the first unacknowledged byte";
  take(resent);
  // The peer takes what came (in order) until the whole stream is there.
  for (int i = 0; i < 20; ++i) {
    std::uint32_t next = una;
    for (auto it = got.find(next); it != got.end(); it = got.find(next)) next += static_cast<std::uint32_t>(it->second.size());
    if (next - una == data.size()) break;
    peer_ts += 1;
    in(ACK, {}, 65535, {}, {}, next);
    step();
    take(out());
  }
  std::string stream;
  for (std::uint32_t next = una; got.count(next) != 0;) {
    stream += got[next];
    next += static_cast<std::uint32_t>(got[next].size());
  }
  EXPECT_EQ(stream, data);
  EXPECT_EQ(stats().tcp_timeouts.get(), 0u);
  // A report below 552 bytes (an attacker's 68) is taken as 552.
  ASSERT_TRUE(conn(server)->write(pattern(3000, 6)));
  step();
  raw = fr::receive_all(*peer);
  ASSERT_FALSE(raw.empty());
  frag_needed(raw[0].substr(14, 28), 68);
  step();
  EXPECT_EQ(stats().tcp_pmtu_updates.get(), 2u);
  for (const auto& d : out()) EXPECT_LE(d.payload.size(), 552u - 40 - 12);
}

// Issue 20 item 5, the fallback when ICMP is filtered (RFC 4821 7.7): a path
// that silently drops our full-sized DF segments. From the second timeout
// in a row the path MSS steps down (984, then 512), so the data gets through.
TEST_F(tcp_peer, regression_timeouts_in_a_row_step_the_path_mss_down_when_icmp_is_filtered) {
  make();
  listen(server);
  accept(true);
  const std::string data = pattern(3000, 9);
  ASSERT_TRUE(conn(server)->write(data));
  step();
  std::vector<fr::decoded> v = out();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].payload.size(), 1448u);
  const std::uint32_t una = v[0].seq;
  // The path drops everything over 1000 bytes, and says nothing.
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 40 && sizes.size() < 3; ++i) {
    advance(100ms);
    for (const auto& d : out()) {
      if (d.seq == una && !d.payload.empty()) sizes.push_back(d.payload.size());
    }
  }
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], 1448u) << "the first timeout resends at the same size (plain loss is likelier)";
  EXPECT_EQ(sizes[1], 984u - 12) << "the second steps down to MTU 1024";
  EXPECT_EQ(sizes[2], 512u - 12) << "the third to MTU 552";
  EXPECT_EQ(stats().tcp_pmtu_blackholes.get(), 2u);
  // Those fit: the peer takes them, and the rest follows at that size.
  std::uint32_t next = una + static_cast<std::uint32_t>(sizes[2]);
  for (int i = 0; i < 20 && next - una < data.size(); ++i) {
    peer_ts += 1;
    in(ACK, {}, 65535, {}, {}, next);
    step();
    for (const auto& d : out()) {
      EXPECT_LE(d.payload.size(), 512u - 12);
      if (d.seq == next) next += static_cast<std::uint32_t>(d.payload.size());
    }
  }
  EXPECT_EQ(next - una, data.size()) << "everything went through";
}

// RFC 4821's probing up, after black hole detection stepped the path MSS
// down: every mtu_probe_interval one segment a step larger goes alone at the
// end of the flight; lost, it costs one timeout and changes nothing (no
// further step down, no back-off); acknowledged, the path MSS takes its size
// and the next step is probed at once.
TEST_F(tcp_peer, rfc_4821_probes_raise_a_stepped_down_path_mss_once_the_path_allows) {
  tcfg.mtu_probe_interval = 2s;
  make();
  listen(server);
  accept(true);
  const std::string data = pattern(4'000'000, 21);
  ASSERT_TRUE(conn(server)->write(data));
  std::uint32_t path_mtu = 1000;
  std::uint32_t una = 0, next = 0;
  bool started = false;
  std::size_t largest = 0;
  std::string got;
  // The path: segments larger than path_mtu vanish; the peer takes what
  // comes in order and acknowledges it.
  auto run_for = [&](duration d) {
    for (duration t{}; t < d && got.size() < data.size(); t += 20ms) {
      advance(20ms);
      bool progress = false;
      for (const auto& seg : out()) {
        if (seg.payload.empty()) continue;
        if (!started) {
          started = true;
          una = next = seg.seq;
        }
        if (seg.payload.size() + 52 > path_mtu) continue;
        largest = std::max(largest, seg.payload.size());
        if (seg.seq == next) {
          next += static_cast<std::uint32_t>(seg.payload.size());
          got += seg.payload;
          progress = true;
        }
      }
      if (progress) {
        peer_ts += 20;
        in(ACK, {}, 64, {}, {}, next);  // 8 KiB (shift 7): a slow reader keeps the test long enough
        step();
      }
    }
  };
  run_for(7s);
  ASSERT_LT(got.size(), data.size()) << "still sending when the path heals";
  EXPECT_EQ(stats().tcp_pmtu_blackholes.get(), 2u) << "984, then 512";
  EXPECT_GE(stats().tcp_mtu_probes.get(), 2u) << "a probe every 2 s";
  EXPECT_EQ(stats().tcp_mtu_probes_ok.get(), 0u) << "none fits a 1000-byte path";
  EXPECT_EQ(largest, 512u - 12);
  const std::size_t before = got.size();
  EXPECT_GT(before, 100'000u) << "data kept flowing at 512 between the failed probes";
  // The path heals (a route change): the next probes succeed, step by step.
  path_mtu = 1500;
  largest = 0;
  run_for(60s);
  EXPECT_EQ(stats().tcp_mtu_probes_ok.get(), 2u) << "984, then the full MSS";
  EXPECT_EQ(largest, 1448u);
  EXPECT_EQ(stats().tcp_pmtu_blackholes.get(), 2u) << "lost probes never step the path down";
  EXPECT_EQ(got, data);
  (void)una;
}

// ---- retransmission and recovery -----------------------------------------------------------------

TEST_F(tcp_peer, unacknowledged_data_is_resent_after_the_rto_with_back_off_then_given_up) {
  tcfg.max_retransmits = 3;
  make();
  listen(server);
  accept();
  ASSERT_TRUE(conn(server)->write("lost"));
  fr::decoded first = one();
  EXPECT_EQ(first.payload, "lost");
  // The handshake timed the SYN-ACK at ~0: RTO = max(200 ms floor).
  advance(150ms);
  EXPECT_TRUE(out().empty());
  advance(60ms);
  auto v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].seq, first.seq);
  EXPECT_EQ(v[0].payload, "lost");
  advance(300ms);
  EXPECT_TRUE(out().empty()) << "backed off to 400 ms";
  advance(110ms);
  EXPECT_EQ(out().size(), 1u);
  advance(810ms);
  EXPECT_EQ(out().size(), 1u) << "third retransmission after 800 ms";
  advance(1610ms);
  step();
  v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].has(RST)) << "R2 reached: the connection is reset";
  EXPECT_EQ(server.reason, close_reason::io_error);
  EXPECT_EQ(server.error, ETIMEDOUT);
  EXPECT_EQ(stats().tcp_timeouts.get(), 3u);
}

TEST_F(tcp_peer, karns_rule_keeps_retransmitted_segments_out_of_the_rtt_estimate) {
  make();
  listen(server);
  accept();  // no timestamps
  tcp_control_block* b = block();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(conn(server)->write("a"));
  (void)one();
  advance(210ms);  // resent
  ASSERT_EQ(out().size(), 1u);
  // The ACK comes late: had it been sampled, SRTT would be ~300 ms.
  advance(90ms);
  our_seq += 1;
  in(ACK);
  step();
  ASSERT_TRUE(conn(server)->write("b"));
  step();
  (void)out();
  // Only a fresh segment is timed: 20 ms.
  advance(20ms);
  our_seq += 1;
  in(ACK);
  step();
  ASSERT_TRUE(conn(server)->write("c"));
  step();
  (void)out();
  advance(199ms);
  EXPECT_TRUE(out().empty()) << "RTO from the 20 ms sample: floored at 200 ms";
  advance(2ms);
  EXPECT_EQ(out().size(), 1u);
}

// A connection with ten segments in flight (MSS 1000, no timestamps).
struct flight_fixture : tcp_peer {
  std::vector<fr::decoded> flight;
  void open_and_send(bool sack) {
    make();
    listen(server);
    peer_uses_ts = false;
    std::string opts = fr::tcp_option_mss(1000) + (sack ? fr::tcp_option_sack_permitted() : "");
    in(SYN, {}, 65535, opts);
    fr::decoded sa = one();
    our_seq = sa.seq + 1;
    in(ACK);
    step();
    ASSERT_EQ(server.opened, 1);
    ASSERT_TRUE(conn(server)->write(pattern(10000, 3)));
    step();
    flight = out();
    ASSERT_EQ(flight.size(), 10u);
  }
  std::uint32_t seg(int i) const { return flight[static_cast<std::size_t>(i)].seq; }
};

using tcp_recovery = flight_fixture;

TEST_F(tcp_recovery, three_duplicate_acks_trigger_fast_retransmit_and_newreno_resends_each_hole) {
  open_and_send(false);
  // Segments 2 and 5 are lost: the peer acks 0..1, then duplicates.
  in(ACK, {}, 65535, {}, {}, seg(2));
  step();
  (void)out();
  for (int i = 0; i < 3; ++i) in(ACK, {}, 65535, {}, {}, seg(2));
  step();
  auto v = out();
  ASSERT_FALSE(v.empty()) << "fast retransmit, long before the RTO";
  EXPECT_EQ(v[0].seq, seg(2));
  EXPECT_EQ(v[0].payload, pattern(1000, 3, 2000));
  EXPECT_EQ(stats().tcp_fast_retransmits.get(), 1u);
  // A partial ACK (up to the second hole): NewReno resends it at once.
  in(ACK, {}, 65535, {}, {}, seg(5));
  step();
  v = out();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].seq, seg(5)) << describe(v);
  // The full ACK ends recovery with cwnd at ssthresh.
  in(ACK, {}, 65535, {}, {}, seg(9) + 1000);
  step();
  tcp_control_block* b = block();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(stats().tcp_timeouts.get(), 0u);
  EXPECT_EQ(conn(server)->output().size(), 0u);
}

TEST_F(tcp_recovery, sack_blocks_steer_retransmission_to_exactly_the_holes) {
  open_and_send(true);
  // Lost: 1 and 4. The peer holds 2..3 and 5..9.
  const std::string sack = fr::tcp_option_sack({{seg(2), seg(4)}, {seg(5), seg(9) + 1000}});
  in(ACK, {}, 65535, {}, {}, seg(1));
  step();
  (void)out();
  in(ACK, {}, 65535, sack, {}, seg(1));
  step();
  auto v = out();
  std::vector<std::uint32_t> resent;
  for (const auto& d : v)
    if (!d.payload.empty()) resent.push_back(d.seq);
  ASSERT_GE(resent.size(), 2u) << describe(v);
  EXPECT_EQ(resent[0], seg(1));
  EXPECT_EQ(resent[1], seg(4));
  for (auto q : resent) EXPECT_TRUE(q == seg(1) || q == seg(4)) << "only holes are resent";
  EXPECT_EQ(stats().tcp_sack_recoveries.get(), 1u);
}

TEST_F(tcp_peer, out_of_order_data_is_held_reported_in_sack_blocks_and_delivered_in_order) {
  make();
  listen(server);
  accept(false, 7, true);
  const std::string a = pattern(1000, 5), b = pattern(1000, 5, 1000), c = pattern(1000, 5, 2000);
  const std::uint32_t base = peer_seq;
  in(ACK, c, 65535, {}, base + 2000);
  fr::decoded d1 = one();
  EXPECT_EQ(d1.ack, base) << "an immediate duplicate ACK";
  ASSERT_EQ(d1.sacks.size(), 1u);
  EXPECT_EQ(d1.sacks[0], std::make_pair(base + 2000, base + 3000));
  in(ACK, a, 65535, {}, base);
  fr::decoded d2 = one();
  EXPECT_EQ(d2.ack, base + 1000);
  EXPECT_EQ(server.data, a);
  in(ACK, b, 65535, {}, base + 1000);
  fr::decoded d3 = one();
  EXPECT_EQ(d3.ack, base + 3000) << "the gap filled: both delivered";
  EXPECT_TRUE(d3.sacks.empty());
  EXPECT_EQ(server.data, a + b + c);
  EXPECT_EQ(stats().tcp_ooo_segments.get(), 1u);
  peer_seq = base + 3000;
}

// Regression: a bare FIN that arrived beyond a gap was taken at once, so
// the stream ended before the missing bytes (the conformance suite on dpdk:
// with 1000 concurrent kernel clients over net_tap, echoes cut short by a
// clean FIN). It must wait until the gap fills, like a FIN on data does.
TEST_F(tcp_peer, a_bare_fin_beyond_a_gap_waits_for_the_missing_bytes) {
  make();
  listen(server);
  accept(false, 7, true);
  const std::string a = pattern(1000, 9);
  const std::uint32_t base = peer_seq;
  in(FIN | ACK, {}, 65535, {}, base + 1000);
  fr::decoded d1 = one();
  EXPECT_EQ(d1.ack, base) << "a duplicate ACK: the bytes before the FIN are missing";
  EXPECT_FALSE(server.peer_shut) << "not the end of the stream yet";
  in(ACK, a, 65535, {}, base);
  fr::decoded d2 = one();
  EXPECT_EQ(d2.ack, base + 1001) << "the data and the FIN that waited for it";
  EXPECT_EQ(server.data, a);
  EXPECT_TRUE(server.peer_shut);
  peer_seq = base + 1001;
}

TEST_F(tcp_peer, a_duplicate_is_reported_as_a_dsack_block_first_and_only_once) {
  make();
  listen(server);
  accept(false, 7, true);
  const std::string a = pattern(1000, 7), b = pattern(1000, 7, 1000), c = pattern(1000, 7, 2000);
  const std::uint32_t base = peer_seq;
  in(ACK, a, 65535, {}, base);
  EXPECT_TRUE(one().sacks.empty());
  // The peer resends what we already hold (a spurious retransmission).
  in(ACK, a, 65535, {}, base);
  fr::decoded d1 = one();
  EXPECT_EQ(d1.ack, base + 1000);
  ASSERT_EQ(d1.sacks.size(), 1u) << "RFC 2883: the duplicate range, below the cumulative ACK";
  EXPECT_EQ(d1.sacks[0], std::make_pair(base, base + 1000));
  // A duplicate of out-of-order data: the D-SACK block, then the block that holds it.
  in(ACK, c, 65535, {}, base + 2000);
  EXPECT_EQ(one().sacks.size(), 1u);
  in(ACK, c, 65535, {}, base + 2000);
  fr::decoded d2 = one();
  ASSERT_EQ(d2.sacks.size(), 2u);
  EXPECT_EQ(d2.sacks[0], std::make_pair(base + 2000, base + 3000));
  EXPECT_EQ(d2.sacks[1], std::make_pair(base + 2000, base + 3000));
  in(ACK, b, 65535, {}, base + 1000);
  fr::decoded d3 = one();
  EXPECT_EQ(d3.ack, base + 3000);
  EXPECT_TRUE(d3.sacks.empty()) << "a D-SACK block goes out once";
  EXPECT_EQ(server.data, a + b + c);
  peer_seq = base + 3000;
}

// Regression: a data segment that also carries SACK blocks has less room
// for payload; the sequence space advanced by the full MSS anyway, so the
// peer (the Linux kernel in tests/dpdk) waited on 12-28 byte holes until
// our retransmission timer fired.
TEST_F(tcp_peer, segments_shortened_by_sack_blocks_leave_no_hole_in_the_stream) {
  make();
  listen(server);
  accept(false, 7, true);
  const std::uint32_t base = peer_seq;
  in(ACK, pattern(1000, 8, 2000), 65535, {}, base + 2000);  // out of order: we hold it and SACK it
  EXPECT_EQ(one().sacks.size(), 1u);
  const std::string data = pattern(20000, 9);
  ASSERT_TRUE(conn(server)->write(data));
  step();
  auto v = out();
  ASSERT_GE(v.size(), 2u);
  std::string got;
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_FALSE(v[i].sacks.empty()) << "each data segment carries the SACK block";
    if (i + 1 < v.size()) {
      EXPECT_EQ(v[i + 1].seq, v[i].seq + v[i].payload.size()) << "segment " << i;
    }
    got += v[i].payload;
  }
  EXPECT_EQ(got, data.substr(0, got.size()));
  EXPECT_LT(v[0].payload.size(), 1460u) << "the SACK block took room from the MSS";
}

TEST_F(tcp_peer, the_out_of_order_queue_stays_within_its_memory_limit) {
  tcfg.reorder_memory = 8 * 2176;  // eight memory-wire buffers
  make();
  listen(server);
  accept();
  const std::uint32_t base = peer_seq;
  for (int i = 1; i <= 20; ++i) in(ACK, pattern(1000, 6, static_cast<std::size_t>(i) * 1000), 65535, {}, base + 1000u * i);
  step();
  (void)out();
  EXPECT_EQ(stats().tcp_ooo_segments.get(), 8u);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_reorder_full), 12u);
  // Still a working connection: the gap fills, the held part is delivered.
  in(ACK, pattern(1000, 6), 65535, {}, base);
  fr::decoded d = one();
  EXPECT_EQ(d.ack, base + 9000);
  EXPECT_EQ(server.data, pattern(9000, 6));
}

TEST_F(tcp_peer, duplicate_and_overlapping_segments_are_trimmed_to_what_is_new) {
  make();
  listen(server);
  accept();
  const std::uint32_t base = peer_seq;
  in(ACK, "abcdef", 65535, {}, base);
  (void)one();
  in(ACK, "abcdef", 65535, {}, base);
  EXPECT_EQ(one().ack, base + 6) << "a duplicate is acknowledged";
  in(ACK, "defghi", 65535, {}, base + 3);
  EXPECT_EQ(one().ack, base + 9);
  EXPECT_EQ(server.data, "abcdefghi");
  EXPECT_EQ(stats().dropped(drop_reason::tcp_out_of_window), 1u);
  peer_seq = base + 9;
}

// ---- windows -------------------------------------------------------------------------------------

TEST_F(tcp_peer, the_peers_scaled_window_limits_what_is_sent) {
  make();
  listen(server);
  accept(false, 7, true, /*window=*/65535);
  // The peer now advertises 8 units of 128 bytes.
  in(ACK, {}, 8);
  step();
  ASSERT_TRUE(conn(server)->write(std::string(5000, 'w')));
  step();
  // Sender-side SWS avoidance (RFC 9293 3.8.6.2.1): 1 KiB is less than a
  // segment and less than half the largest window seen: wait...
  EXPECT_TRUE(out().empty());
  // ...until the override timeout, then exactly what the window takes.
  advance(210ms);
  auto v = out();
  std::size_t sent = 0;
  for (const auto& d : v) sent += d.payload.size();
  EXPECT_EQ(sent, 1024u) << "8 << 7 bytes";
}

TEST_F(tcp_peer, a_paused_reader_closes_the_window_and_resuming_announces_it) {
  tcfg.receive_buffer = 8192;
  make();
  server.at_open = [](connection& c) { c.pause_reading(); };
  listen(server);
  accept(false, 0);
  const std::uint32_t base = peer_seq;
  for (int i = 0; i < 8; ++i) in(ACK, pattern(1024, 7, static_cast<std::size_t>(i) * 1024), 65535, {}, base + 1024u * i);
  step();
  auto v = out();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().ack, base + 8192);
  EXPECT_EQ(v.back().window, 0) << "8 KiB held for the paused reader: a zero window";
  EXPECT_TRUE(server.data.empty());
  // Beyond a zero window: dropped, acknowledged with the window again.
  in(ACK, "more", 65535, {}, base + 8192);
  fr::decoded z = one();
  EXPECT_EQ(z.ack, base + 8192);
  EXPECT_EQ(z.window, 0);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_beyond_window), 1u);
  // Resuming delivers what waited, and a window update goes out.
  l->get(server.handle)->resume_reading();
  step(2);
  EXPECT_EQ(server.data, pattern(8192, 7));
  v = out();
  ASSERT_FALSE(v.empty()) << "a window update";
  EXPECT_EQ(v.back().window, 8192);
  peer_seq = base + 8192;
}

TEST_F(tcp_peer, a_zero_window_is_probed_with_back_off_until_it_opens) {
  make();
  listen(server);
  accept(false, 0);
  in(ACK, {}, 0);  // the peer's window shuts
  step();
  ASSERT_TRUE(conn(server)->write("waiting data"));
  step();
  EXPECT_TRUE(out().empty()) << "nothing fits a zero window";
  advance(210ms);
  auto v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].payload.size(), 1u) << "a one-byte probe (RFC 9293 3.8.6.1)";
  EXPECT_EQ(v[0].seq, our_seq);
  in(ACK, {}, 0);  // still shut: the probe byte is not taken
  step();
  advance(210ms);
  EXPECT_TRUE(out().empty()) << "backed off";
  advance(200ms);
  EXPECT_EQ(out().size(), 1u);
  EXPECT_EQ(stats().tcp_zero_window_probes.get(), 2u);
  EXPECT_NE(conn(server), nullptr) << "a peer that keeps answering is never given up on";
  in(ACK, {}, 65535);  // it opens
  step();
  v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].payload, "waiting data");
}

// Issue 20 item 6: a peer that answers every window probe with a zero
// window kept the connection forever (probes back off to 60 s and never
// give up). The persist state now ends after persist_timeout, counted.
TEST_F(tcp_peer, regression_a_window_shut_forever_is_given_up_after_the_persist_timeout) {
  tcfg.persist_timeout = 10s;
  make();
  listen(server);
  accept(false, 0);
  in(ACK, {}, 0);
  step();
  ASSERT_TRUE(conn(server)->write("never taken"));
  step();
  (void)out();
  // The peer answers every probe, always with a zero window.
  int probes = 0;
  for (int i = 0; i < 90 && server.closes == 0; ++i) {
    advance(100ms);
    for (const auto& d : out()) {
      if (d.has(RST)) continue;
      ++probes;
      in(ACK, {}, 0);
      step();
    }
  }
  EXPECT_EQ(server.closes, 0) << "9 s in: still probing";
  EXPECT_GE(probes, 5);
  std::vector<fr::decoded> sent;
  for (int i = 0; i < 30 && server.closes == 0; ++i) {
    advance(100ms);
    for (auto& d : out()) sent.push_back(d);
  }
  for (int i = 0; i < 40 && server.closes == 0; ++i) {
    advance(1s);
    for (auto& d : out()) sent.push_back(d);
  }
  EXPECT_EQ(server.closes, 1) << "given up";
  EXPECT_EQ(server.error, ETIMEDOUT);
  EXPECT_EQ(stats().tcp_persist_timeouts.get(), 1u);
  EXPECT_EQ(state(), tcp_state::closed);
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.back().has(RST)) << "the peer is told";
  EXPECT_LE(l->now() - time_point{1s}, 1min) << "within the timeout plus one backed-off probe interval";
}

TEST_F(tcp_peer, a_peer_that_takes_each_probe_byte_is_not_given_up_by_the_persist_timeout) {
  tcfg.persist_timeout = 2s;
  make();
  listen(server);
  accept(false, 0);
  in(ACK, {}, 0);
  step();
  ASSERT_TRUE(conn(server)->write(std::string(200, 'p')));
  step();
  (void)out();
  // A slow reader: it takes every probe's byte, and shuts its window again.
  int taken = 0;
  for (int i = 0; i < 100; ++i) {
    advance(100ms);
    for (const auto& d : out()) {
      if (d.payload.size() != 1) continue;
      ++taken;
      our_seq = d.seq + 1;
      in(ACK, {}, 0);
      step();
    }
  }
  EXPECT_GE(taken, 10) << "10 s of one byte at a time";
  EXPECT_EQ(server.closes, 0) << "progress, however slow, is no shut window";
  EXPECT_EQ(stats().tcp_persist_timeouts.get(), 0u);
}

TEST_F(tcp_peer, delayed_ack_waits_for_a_second_segment_or_the_timer) {
  tcfg.delayed_ack = 40ms;
  make();
  listen(server);
  accept();
  in(ACK, std::string(1460, 'a'));
  step();
  EXPECT_TRUE(out().empty()) << "one full segment: the ACK is delayed";
  in(ACK, std::string(1460, 'b'));
  EXPECT_EQ(one().ack, peer_seq) << "the second full segment is acknowledged at once";
  in(ACK, "c");
  step();
  EXPECT_TRUE(out().empty());
  advance(41ms);
  auto v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].ack, peer_seq);
}

TEST_F(tcp_peer, without_delayed_ack_every_burst_is_acknowledged_at_once) {
  make();
  listen(server);
  accept();
  in(ACK, "a");
  in(ACK, "b");
  in(ACK, "c");
  fr::decoded d = one();
  EXPECT_EQ(d.ack, peer_seq) << "one ACK for the burst of three";
}

TEST_F(tcp_peer, nagle_holds_small_segments_while_data_is_unacknowledged) {
  tcfg.nagle = true;
  make();
  listen(server);
  accept();
  ASSERT_TRUE(conn(server)->write("one"));
  EXPECT_EQ(one().payload, "one");
  ASSERT_TRUE(conn(server)->write("two"));
  step();
  EXPECT_TRUE(out().empty()) << "Nagle: a small segment waits for the ACK";
  our_seq += 3;
  in(ACK);
  EXPECT_EQ(one().payload, "two");
}

TEST_F(tcp_peer, keepalive_probes_an_idle_peer_and_gives_up_when_it_is_gone) {
  tcfg.keepalive_idle = 10s;
  tcfg.keepalive_interval = 1s;
  tcfg.keepalive_probes = 3;
  make();
  listen(server);
  accept();
  advance(9s);
  EXPECT_TRUE(out().empty());
  advance(1100ms);
  auto v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].seq, our_seq - 1) << "SND.UNA - 1: the peer must answer";
  EXPECT_TRUE(v[0].payload.empty());
  in(ACK);  // it answers: idle starts again
  step();
  advance(5s);
  EXPECT_TRUE(out().empty());
  advance(5100ms);
  EXPECT_EQ(out().size(), 1u);
  for (int i = 0; i < 2; ++i) {
    advance(1s);
    EXPECT_EQ(out().size(), 1u);
  }
  advance(1s);
  step();
  v = out();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].has(RST));
  EXPECT_EQ(server.reason, close_reason::io_error);
  EXPECT_EQ(stats().tcp_keepalive_probes.get(), 4u);
}


// ---- listening: SYN queue, cookies, limits -----------------------------------------------------------

TEST_F(tcp_peer, a_syn_flood_fills_the_backlog_then_cookies_keep_real_clients_coming_in) {
  tcfg.syn_backlog = 8;
  make();
  listen(server);
  // 100 SYNs from as many ports; nobody completes them.
  for (std::uint16_t p = 0; p < 100; ++p) {
    peer_port = static_cast<std::uint16_t>(20000 + p);
    in(SYN, {}, 65535, syn_options(true), 0x100000 + p * 1000u);
  }
  step();
  auto v = out();
  EXPECT_EQ(v.size(), 100u) << "every SYN is answered";
  EXPECT_EQ(tcp().syn_queue(our_port), 8u) << "the queue holds its limit";
  EXPECT_EQ(tcp().control_blocks(), 8u) << "cookies keep no state";
  EXPECT_EQ(stats().tcp_syn_cookies_sent.get(), 92u);
  // A real client among them completes its handshake from a cookie.
  const fr::decoded& cookie = v[50];
  ASSERT_EQ(cookie.flags, SYN | ACK);
  ASSERT_TRUE(cookie.timestamps);
  peer_port = cookie.dport;
  peer_seq = cookie.ack;
  our_seq = cookie.seq + 1;
  peer_uses_ts = true;
  last_ts_val = cookie.timestamps->first;
  in(ACK, "GET / HTTP/1.1\r\n\r\n");
  step();
  EXPECT_EQ(server.opened, 1);
  EXPECT_EQ(server.data, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(stats().tcp_syn_cookies_ok.get(), 1u);
  tcp_control_block* b = block();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->state(), tcp_state::established);
  // The options came back through the cookie's timestamp: the window is
  // scaled by the peer's shift (7) and SACK is on.
  ASSERT_TRUE(conn(server)->write(std::string(3000, 's')));
  step();
  v = out();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].window, 32768) << "our window, scaled by the shift we offered (3)";
  // A forged ACK (no cookie of ours) is answered with a RST.
  peer_port = 30000;
  in(ACK, {}, 65535, {}, 777, 12345);
  fr::decoded r = one();
  EXPECT_TRUE(r.has(RST));
  EXPECT_EQ(stats().dropped(drop_reason::tcp_bad_cookie), 1u);
  // The half-open ones expire after their SYN-ACK retries.
  for (int i = 0; i < 8; ++i) advance(40s);
  EXPECT_EQ(tcp().syn_queue(our_port), 0u);
  (void)out();
}

// Issue 20 item 1: the low bits of a cookie's TSval carry the peer's options
// and could put it up to 31 ms ahead of the connection's timestamp clock;
// the segments after the handshake then carried smaller timestamps, which a
// Linux peer drops by PAWS. Each of many connections (different clock
// offsets), with options that set nearly all the low bits (shift 14, SACK),
// must send nothing below the SYN-ACK's TSval.
TEST_F(tcp_peer, regression_syn_cookie_timestamps_never_run_ahead_of_the_clock) {
  tcfg.syn_backlog = 1;
  make();
  server.at_data = [](connection& c) { (void)c.write("answer"); };
  listen(server);
  peer_port = 19999;  // fills the one-entry SYN queue: the rest get cookies
  in(SYN, {}, 65535, syn_options(true), 42);
  step();
  (void)out();
  int checked = 0;
  for (std::uint16_t p = 0; p < 16; ++p) {
    peer_port = static_cast<std::uint16_t>(21000 + p * 7);
    peer_seq = 0x200000 + p * 5000u;
    peer_uses_ts = true;
    in(SYN, {}, 65535, syn_options(true, 14, true));
    const fr::decoded sa = one();
    ASSERT_EQ(sa.flags, SYN | ACK);
    ASSERT_TRUE(sa.timestamps);
    const std::uint32_t synack_ts = sa.timestamps->first;
    EXPECT_EQ(synack_ts & 0x1f, 0x1eu) << "the options are encoded (shift 14, SACK)";
    our_seq = sa.seq + 1;
    in(ACK, "hello");
    // Every segment of the connection from now on, including after some time.
    for (int round = 0; round < 3; ++round) {
      step(2);
      for (const auto& d : out()) {
        ASSERT_TRUE(d.timestamps);
        EXPECT_TRUE(seq_ge(d.timestamps->first, synack_ts))
            << "port " << peer_port << ": TSval " << d.timestamps->first << " below the SYN-ACK's " << synack_ts;
        ++checked;
      }
      if (round == 2) break;
      clock.advance(3ms);
      in(ACK, "more");
    }
  }
  EXPECT_EQ(stats().tcp_syn_cookies_ok.get(), 16u);
  EXPECT_GE(checked, 48) << "each connection answered three times";
}

TEST_F(tcp_peer, without_cookies_a_full_syn_queue_drops_syns) {
  tcfg.syn_backlog = 2;
  tcfg.syn_cookies = false;
  make();
  listen(server);
  for (std::uint16_t p = 0; p < 5; ++p) {
    peer_port = static_cast<std::uint16_t>(20000 + p);
    in(SYN, {}, 65535, syn_options(false), 1000);
  }
  step();
  EXPECT_EQ(out().size(), 2u);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_syn_queue_full), 3u);
}

TEST_F(tcp_peer, syn_cookies_carry_the_mss_and_age_out) {
  make();
  const tcp_tuple t{ip_address::v4(our_ip), ip_address::v4(peer_ip), 80, 1234};
  const time_point now = l->now();
  const std::uint32_t c = tcp().make_cookie(t, 5555, 1460, now);
  EXPECT_EQ(tcp().check_cookie(t, 5555, c, now), 1460);
  EXPECT_EQ(tcp().check_cookie(t, 5555, c, now + 100s), 1460) << "good for up to two periods";
  EXPECT_EQ(tcp().check_cookie(t, 5555, c, now + 200s), 0) << "then stale";
  EXPECT_EQ(tcp().check_cookie(t, 5556, c, now), 0) << "bound to the client's ISN";
  EXPECT_EQ(tcp().check_cookie({ip_address::v4(our_ip), ip_address::v4(peer_ip), 80, 1235}, 5555, c, now), 0)
      << "and to the tuple";
  EXPECT_EQ(tcp().check_cookie(t, 5555, tcp().make_cookie(t, 5555, 1300, now), now), 1200)
      << "the largest table MSS not above the peer's";
}

TEST_F(tcp_peer, initial_sequence_numbers_follow_rfc_6528) {
  make();
  const tcp_tuple a{ip_address::v4(our_ip), ip_address::v4(peer_ip), 80, 1234};
  const tcp_tuple b{ip_address::v4(our_ip), ip_address::v4(peer_ip), 80, 1235};
  const time_point now = l->now();
  // M: a 4-microsecond clock; F: a keyed hash of the tuple.
  EXPECT_EQ(tcp().initial_sequence(a, now + 4ms) - tcp().initial_sequence(a, now), 1000u);
  EXPECT_NE(tcp().initial_sequence(a, now), tcp().initial_sequence(b, now)) << "tuples do not share a sequence space";
}

// ---- IPv6 tuples (issue 17: one TCP, two address families) -------------------------------

const ip_address our_ip6 = *ip_address::parse("fd00::2");
const ip_address peer_ip6 = *ip_address::parse("fd00::1");

TEST_F(tcp_peer, syn_cookies_over_an_ipv6_tuple_round_trip_and_bind_every_byte) {
  make();
  const tcp_tuple t{our_ip6, peer_ip6, 80, 1234};
  const time_point now = l->now();
  const std::uint32_t c = tcp().make_cookie(t, 7777, 1440, now);
  EXPECT_EQ(tcp().check_cookie(t, 7777, c, now), 1440);
  EXPECT_EQ(tcp().check_cookie(t, 7777, c, now + 100s), 1440) << "good for up to two periods";
  EXPECT_EQ(tcp().check_cookie(t, 7777, c, now + 200s), 0) << "then stale";
  EXPECT_EQ(tcp().check_cookie(t, 7778, c, now), 0) << "bound to the client's ISN";
  // Every byte of both 16-byte addresses is in the MAC: a cookie is no good
  // for a peer that differs in any one of them (an IPv4-style hash over the
  // low 4 bytes would let these through).
  for (std::size_t i = 0; i < 16; ++i) {
    tcp_tuple other = t;
    other.remote_ip.bytes[i] ^= 0x20;
    EXPECT_EQ(tcp().check_cookie(other, 7777, c, now), 0) << "remote address byte " << i;
    other = t;
    other.local_ip.bytes[i] ^= 0x20;
    EXPECT_EQ(tcp().check_cookie(other, 7777, c, now), 0) << "local address byte " << i;
  }
  // The default MSS of an IPv6 peer without the option (1220) is carried
  // as the largest table value not above it.
  EXPECT_EQ(tcp().check_cookie(t, 7777, tcp().make_cookie(t, 7777, default_peer_mss(peer_ip6), now), now), 1200);
  EXPECT_EQ(default_peer_mss(peer_ip6), 1220) << "RFC 9293 3.7.1 for IPv6";
  EXPECT_EQ(default_peer_mss(ip_address::v4(peer_ip)), 536) << "and for IPv4";
}

TEST_F(tcp_peer, ipv6_and_ipv4_tuples_have_their_own_sequence_spaces) {
  make();
  const tcp_tuple v6{our_ip6, peer_ip6, 80, 1234};
  // The IPv4 tuple whose addresses share the IPv6 ones' last four bytes.
  tcp_tuple v4{ip_address::v4(0), ip_address::v4(0), 80, 1234};
  std::copy(our_ip6.bytes.begin() + 12, our_ip6.bytes.end(), v4.local_ip.bytes.begin() + 12);
  std::copy(peer_ip6.bytes.begin() + 12, peer_ip6.bytes.end(), v4.remote_ip.bytes.begin() + 12);
  const time_point now = l->now();
  EXPECT_EQ(tcp().initial_sequence(v6, now + 4ms) - tcp().initial_sequence(v6, now), 1000u) << "RFC 6528's M";
  EXPECT_NE(tcp().initial_sequence(v6, now), tcp().initial_sequence(v4, now));
  tcp_tuple near = v6;
  near.remote_ip.bytes[0] ^= 1;  // a byte an IPv4 hash would never see
  EXPECT_NE(tcp().initial_sequence(v6, now), tcp().initial_sequence(near, now));
}

TEST_F(tcp_peer, a_dual_stack_listener_on_the_unspecified_ipv6_address_accepts_ipv4) {
  make();
  // [::]:PORT takes both families (a socket without IPV6_V6ONLY): an IPv4
  // peer's handshake completes on it and the connection's peer is IPv4.
  auto r = l->listen(endpoint::parse("[::]:80").value(), server);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_TRUE((*r)->local().is_v6()) << (*r)->local().to_string();
  accept();
  connection* c = l->get(server.handle);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->peer(), endpoint::ipv4(peer_ip, peer_port));
  in(ACK, "over the dual-stack listener");
  step();
  EXPECT_EQ(server.data, "over the dual-stack listener");
}

TEST_F(tcp_peer, listeners_of_both_families_on_one_port_must_not_overlap) {
  make();
  auto v4 = l->listen(endpoint::ipv4(0, 80), server);
  ASSERT_TRUE(v4.ok());
  auto dual = l->listen(endpoint::parse("[::]:80").value(), server);
  ASSERT_FALSE(dual.ok()) << "[::] also takes IPv4: 0.0.0.0 has the port";
  EXPECT_EQ(dual.err().message, "cannot listen on [::]:80: Address already in use");
  auto foreign = l->listen(endpoint::parse("[fd00::9]:81").value(), server);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.err().message.find("not this interface's address"), std::string::npos) << foreign.err().message;
  ASSERT_TRUE(l->listen(endpoint::parse("[::]:81").value(), server).ok());
  auto v4_after = l->listen(endpoint::ipv4(our_ip, 81), server);
  ASSERT_FALSE(v4_after.ok()) << "the dual-stack listener has IPv4 too";
}

TEST_F(tcp_peer, a_connection_to_an_ipv6_peer_without_a_route_fails_unreachable) {
  make();
  auto h = l->connect(endpoint::parse("[fd00::1]:80").value(), client);
  ASSERT_TRUE(h.ok()) << h.err().message;
  step();
  EXPECT_EQ(client.closes, 1);
  EXPECT_EQ(client.reason, close_reason::unreachable);
  EXPECT_EQ(client.error, ENETUNREACH);
  EXPECT_TRUE(out().empty()) << "nothing was sent";
  EXPECT_FALSE(l->connect(endpoint::parse("[ff02::1]:80").value(), client).ok()) << "multicast is no TCP peer";
  EXPECT_FALSE(l->connect(endpoint::parse("[::]:80").value(), client).ok()) << "nor is the unspecified address";
}

TEST_F(tcp_peer, a_listener_closed_during_the_handshake_resets_it) {
  make();
  auto r = l->listen(endpoint::ipv4(0, our_port), server);
  ASSERT_TRUE(r.ok());
  in(SYN, {}, 65535, syn_options(false));
  fr::decoded sa = one();
  our_seq = sa.seq + 1;
  l->close_listener(**r);
  in(ACK);
  fr::decoded rst = one();
  EXPECT_TRUE(rst.has(RST));
  EXPECT_EQ(server.opened, 0);
}

TEST_F(tcp_peer, the_loops_connection_limit_resets_a_completed_handshake) {
  lopts.max_connections = 1;
  make();
  listen(server);
  accept();
  peer_port = 40001;
  peer_seq = 0x20000000;
  in(SYN, {}, 65535, syn_options(false));
  fr::decoded sa = one();
  our_seq = sa.seq + 1;
  in(ACK);
  fr::decoded rst = one();
  EXPECT_TRUE(rst.has(RST));
  EXPECT_EQ(server.opened, 1);
  EXPECT_EQ(stats().dropped(drop_reason::tcp_accept_full), 1u);
}

TEST_F(tcp_peer, a_new_syn_reopens_a_tuple_in_time_wait) {
  in_time_wait_after_our_close();
  ASSERT_EQ(state(), tcp_state::time_wait);
  // RFC 6191: a SYN above the old connection's sequence space is a new one.
  peer_seq += 100000;
  in(SYN, {}, 65535, syn_options(false));
  fr::decoded sa = one();
  EXPECT_EQ(sa.flags, SYN | ACK);
  EXPECT_EQ(state(), tcp_state::syn_received);
}

// ---- sequence numbers across 2^32 ------------------------------------------------------------------

TEST_F(tcp_peer, transfers_cross_the_sequence_wrap_both_ways) {
  tcfg.fixed_isn = 0xffffff00u;  // ours wraps after 256 bytes
  make();
  server.consume = false;
  server.at_data = [](connection& c) { (void)c.send(std::move(c.input())); };  // echo
  listen(server);
  peer_seq = 0xfffffff0u;  // the peer's wraps after 15
  accept(true);
  EXPECT_EQ(our_seq, 0xffffff01u);
  std::string got;
  const std::string sent = pattern(20000, 9);
  std::size_t off = 0;
  for (int round = 0; round < 100 && got.size() < sent.size(); ++round) {
    if (off < sent.size()) {
      const std::size_t n = std::min<std::size_t>(1400, sent.size() - off);
      in(ACK, std::string_view(sent).substr(off, n));
      off += n;
    }
    step();
    for (const auto& d : out()) {
      if (d.payload.empty()) continue;
      EXPECT_EQ(d.seq, our_seq) << "in order across the wrap";
      got += d.payload;
      our_seq += static_cast<std::uint32_t>(d.payload.size());
    }
    peer_ts += 1;
    in(ACK);
  }
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "the echo differs";
  EXPECT_LT(our_seq, 0x10000u) << "our sequence numbers wrapped";
  EXPECT_LT(peer_seq, 0x10000u) << "the peer's wrapped";
  EXPECT_EQ(stats().dropped(drop_reason::tcp_out_of_window) + stats().dropped(drop_reason::tcp_paws), 0u);
}


TEST_F(tcp_peer, a_closed_connection_waiting_in_fin_wait_2_is_dropped_after_its_timeout) {
  tcfg.fin_wait_2 = 5s;
  lopts.linger_timeout = 1s;
  closed_by_us_on_the_first_byte();
  in(ACK);
  step();
  ASSERT_EQ(state(), tcp_state::fin_wait_2);
  advance(1100ms);  // the loop's linger ends: the application lets go
  EXPECT_EQ(server.closes, 1);
  EXPECT_EQ(state(), tcp_state::fin_wait_2) << "the control block waits on alone";
  in(ACK, "late data");
  EXPECT_EQ(one().ack, peer_seq) << "acknowledged and discarded";
  EXPECT_EQ(stats().dropped(drop_reason::tcp_after_close), 1u);
  advance(5s);
  EXPECT_EQ(block(), nullptr);
}

// ---- two stacks over an impaired wire -------------------------------------------------------------

// Streams `total` bytes one way and checks every byte the other way.
struct stream_handler final : handler {
  std::uint64_t seed = 0;
  std::size_t to_send = 0;
  std::size_t sent = 0;
  std::size_t received = 0;
  std::uint64_t expect_seed = 0;
  bool mismatch = false;
  bool opened = false;
  int closes = 0;
  close_reason reason = close_reason::none;
  void pump(connection& c) noexcept {
    while (sent < to_send && c.writable()) {
      const std::size_t n = std::min<std::size_t>(16384, to_send - sent);
      if (!c.write(pattern(n, seed, sent))) break;
      sent += n;
    }
    if (sent == to_send && !c.write_shut()) c.shutdown_write();
  }
  void on_open(connection& c) noexcept override {
    opened = true;
    pump(c);
  }
  void on_writable(connection& c) noexcept override { pump(c); }
  void on_data(connection& c) noexcept override {
    c.input().for_each_piece([&](std::string_view piece) {
      if (piece != pattern(piece.size(), expect_seed, received)) mismatch = true;
      received += piece.size();
      return true;
    });
    c.input().skip(c.input().size());
  }
  void on_peer_shutdown(connection& c) noexcept override {
    if (sent == to_send) c.close(close_reason::peer_closed);
  }
  void on_close(connection&, close_reason r) noexcept override {
    ++closes;
    reason = r;
  }
};

struct pair_result {
  std::size_t client_got = 0, server_got = 0;
  bool exact = false;
  bool both_closed = false;
  std::uint64_t retransmits = 0, fast = 0, timeouts = 0, sack = 0, ooo = 0;
  duration simulated{};
  bool operator==(const pair_result&) const = default;
};

pair_result transfer(const impairments& imp, std::size_t up, std::size_t down, tcp_config cfg, std::uint64_t seed) {
  manual_clock clock;
  memory_wire::options wo;
  wo.clock = {&clock};
  wo.seed = seed;
  wo.a_to_b = imp;
  wo.b_to_a = imp;
  wo.buffers_per_end = 4096;
  memory_wire wire(wo);
  loop_options lo;
  lo.clock = {&clock};
  lo.connect_timeout = 0s;
  cfg.secret = seed;
  stack_loop client(lo, 0, std::make_unique<memory_port>(wire, memory_wire::side::a),
                    transport_options(cfg, "10.0.0.1/24"));
  stack_loop server(lo, 0, std::make_unique<memory_port>(wire, memory_wire::side::b),
                    transport_options(cfg, "10.0.0.2/24"));
  stream_handler sh, ch;
  sh.seed = 2;
  sh.to_send = down;
  sh.expect_seed = 1;
  ch.seed = 1;
  ch.to_send = up;
  ch.expect_seed = 2;
  EXPECT_TRUE(server.listen(endpoint::ipv4(0, 80), sh).ok());
  EXPECT_TRUE(client.connect(endpoint::ipv4(our_ip, 80), ch).ok());
  const time_point start = clock.now();
  // Bounded: at most 30 simulated minutes; the clock jumps over idle time
  // to the next timer when nothing is on the wire.
  for (long i = 0; i < 5'000'000; ++i) {
    if (ch.closes == 1 && sh.closes == 1) break;
    const std::uint64_t before = client.stats().events.get() + server.stats().events.get();
    client.run_once();
    server.run_once();
    const bool idle = client.stats().events.get() + server.stats().events.get() == before;
    if (idle && wire.in_flight(memory_wire::side::a) == 0 && wire.in_flight(memory_wire::side::b) == 0) {
      const time_point next = std::min(client.timers().next_due(), server.timers().next_due());
      if (next == time_point::max()) break;
      clock.set(std::max(next, clock.now() + 1ms));
    } else {
      clock.advance(50us);
    }
    if (clock.now() - start > 30min) break;
  }
  pair_result r;
  r.client_got = ch.received;
  r.server_got = sh.received;
  r.exact = !ch.mismatch && !sh.mismatch && ch.received == down && sh.received == up;
  r.both_closed = ch.closes == 1 && sh.closes == 1;
  for (stack_loop* lp : {&client, &server}) {
    const inet_stats& st = lp->transport().ip().stats();
    r.retransmits += st.tcp_retransmits.get();
    r.fast += st.tcp_fast_retransmits.get();
    r.timeouts += st.tcp_timeouts.get();
    r.sack += st.tcp_sack_recoveries.get();
    r.ooo += st.tcp_ooo_segments.get();
  }
  r.simulated = clock.now() - start;
  if (!r.exact) {
    ADD_FAILURE() << "stuck after " << r.simulated.count() / 1000000 << " ms; client closed " << ch.closes << " ("
                  << to_string(ch.reason) << "), server closed " << sh.closes << " (" << to_string(sh.reason)
                  << ")\nclient: "
                  << client.transport().ip().tcp().describe() << "server: " << server.transport().ip().tcp().describe();
  }
  return r;
}

struct impaired_case {
  const char* name;
  double loss, duplicate, reorder;
  congestion_algorithm cc;
  bool sack;
  std::size_t bytes;
};

class tcp_pair : public ::testing::TestWithParam<impaired_case> {};

TEST_P(tcp_pair, transfers_both_ways_are_byte_exact) {
  const impaired_case& k = GetParam();
  tcp_config cfg;
  cfg.congestion = k.cc;
  cfg.sack = k.sack;
  const impairments imp{.loss = k.loss, .duplicate = k.duplicate, .reorder = k.reorder, .delay = 1ms};
  const pair_result r = transfer(imp, k.bytes, k.bytes, cfg, 17);
  EXPECT_TRUE(r.exact) << "client got " << r.client_got << ", server got " << r.server_got << " of " << k.bytes;
  EXPECT_TRUE(r.both_closed);
  if (k.loss > 0) {
    EXPECT_GT(r.retransmits, 0u);
    EXPECT_GT(r.fast, 0u) << "losses recovered by fast retransmit, not only by timeouts";
  }
  if (k.loss > 0 && k.sack) {
    EXPECT_GT(r.sack, 0u);
  }
  if (k.reorder > 0) {
    EXPECT_GT(r.ooo, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    impairments, tcp_pair,
    ::testing::Values(impaired_case{"clean", 0, 0, 0, congestion_algorithm::cubic, true, 1 << 20},
                      impaired_case{"loss1_cubic_sack", 0.01, 0.01, 0.01, congestion_algorithm::cubic, true, 1 << 20},
                      impaired_case{"loss5_newreno_sack", 0.05, 0.02, 0.05, congestion_algorithm::newreno, true, 512 << 10},
                      impaired_case{"loss5_cubic_nosack", 0.05, 0.02, 0.05, congestion_algorithm::cubic, false, 512 << 10},
                      impaired_case{"loss10_newreno_nosack", 0.10, 0.05, 0.10, congestion_algorithm::newreno, false,
                                    256 << 10},
                      impaired_case{"loss20_cubic_sack", 0.20, 0.10, 0.20, congestion_algorithm::cubic, true, 128 << 10},
                      impaired_case{"reorder20_dup20", 0.0, 0.20, 0.20, congestion_algorithm::cubic, true, 512 << 10}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(tcp_pair_replay, the_same_seed_replays_the_same_run) {
  const impairments imp{.loss = 0.05, .duplicate = 0.02, .reorder = 0.05, .delay = 1ms};
  const pair_result a = transfer(imp, 200000, 100000, {}, 99);
  const pair_result b = transfer(imp, 200000, 100000, {}, 99);
  EXPECT_TRUE(a.exact) << "client got " << a.client_got << ", server got " << a.server_got << " in "
                       << a.simulated.count() << " ns, retransmits " << a.retransmits << " timeouts " << a.timeouts;
  EXPECT_TRUE(a == b) << "retransmits " << a.retransmits << " vs " << b.retransmits << ", time "
                      << a.simulated.count() << " vs " << b.simulated.count();
}

TEST(tcp_pair_loopback, a_loop_connects_to_its_own_listener) {
  manual_clock clock;
  memory_wire::options wo;
  wo.clock = {&clock};
  memory_wire wire(wo);
  loop_options lo;
  lo.clock = {&clock};
  auto to = transport_options({});
  to.stack.announce = false;
  stack_loop l(lo, 0, std::make_unique<memory_port>(wire, memory_wire::side::a), to);
  stream_handler sh, ch;
  sh.seed = 2;
  sh.to_send = 300000;
  sh.expect_seed = 1;
  ch.seed = 1;
  ch.to_send = 200000;
  ch.expect_seed = 2;
  ASSERT_TRUE(l.listen(endpoint::ipv4(0, 80), sh).ok());
  ASSERT_TRUE(l.connect(endpoint::ipv4(our_ip, 80), ch).ok());
  for (int i = 0; i < 20000 && !(ch.closes && sh.closes); ++i) {
    l.run_once();
    clock.advance(10us);
  }
  EXPECT_EQ(ch.received, 300000u);
  EXPECT_EQ(sh.received, 200000u);
  EXPECT_FALSE(ch.mismatch || sh.mismatch);
  EXPECT_EQ(wire.stats(memory_wire::side::a).sent, 0u) << "nothing left through the port";
}

// ---- steering between loops ------------------------------------------------------------------------

TEST(tcp_steering, segments_reach_the_loop_that_owns_the_flow) {
  // Two loops share one port's address (as the DPDK queues of one NIC do);
  // the "device" here delivers everything to loop 0, as a device without
  // RSS might. Connections owned by loop 1 must still work.
  manual_clock clock;
  memory_wire::options wo;
  wo.clock = {&clock};
  memory_wire w0(wo), w1(wo);
  memory_port kernel(w0, memory_wire::side::b);
  memory_port kernel1(w1, memory_wire::side::b);
  mail_hub hub(2);
  stack_group group(2);
  flow_steering steering(2);
  loop_options lo;
  lo.clock = {&clock};
  auto to = transport_options({});
  to.stack.group = &group;
  to.stack.steering = &steering;
  stack_loop l0(lo, 0, std::make_unique<memory_port>(w0, memory_wire::side::a), to);
  to.stack.announce = false;
  stack_loop l1(lo, 1, std::make_unique<memory_port>(w1, memory_wire::side::a), to);
  l0.attach_mail(&hub);
  l1.attach_mail(&hub);
  recording_handler h0, h1;
  ASSERT_TRUE(l0.listen(endpoint::ipv4(0, 80), h0).ok());
  ASSERT_TRUE(l1.listen(endpoint::ipv4(0, 80), h1).ok());
  auto both = [&](int n) {
    for (int i = 0; i < n; ++i) {
      l0.run_once();
      l1.run_once();
    }
  };
  both(1);
  ASSERT_TRUE(fr::send(kernel, fr::ethernet(mac_address::broadcast(), peer_mac, 0x0806,
                                            fr::arp(1, peer_mac, peer_ip, mac_address{}, our_ip))));
  both(3);
  (void)fr::receive_all(kernel);
  (void)fr::receive_all(kernel1);
  // A port whose flow loop 1 owns.
  std::uint16_t port = 30000;
  while (steering.owner(peer_ip, our_ip, port, 80) != 1) ++port;
  const mac_address us = w0.mac(memory_wire::side::a);
  auto syn = fr::tcp(peer_ip, our_ip, port, 80, "", {.seq = 1000, .flags = SYN, .options = fr::tcp_option_mss(1460)});
  ASSERT_TRUE(fr::send(kernel, fr::ethernet(us, peer_mac, 0x0800, fr::ipv4(peer_ip, our_ip, 6, syn))));
  both(3);
  EXPECT_EQ(l0.transport().ip().stats().tcp_steered_out.get(), 1u);
  EXPECT_EQ(l1.transport().ip().stats().tcp_steered_in.get(), 1u);
  // Loop 1 answers through its own queue (wire 1).
  auto replies = fr::receive_all(kernel1);
  ASSERT_EQ(replies.size(), 1u) << "the SYN-ACK leaves from the owner's queue";
  auto sa = fr::decode(replies[0]);
  EXPECT_EQ(sa.flags, SYN | ACK);
  EXPECT_TRUE(fr::receive_all(kernel).empty());
  auto ack = fr::tcp(peer_ip, our_ip, port, 80, "hi", {.seq = 1001, .ack = sa.seq + 1, .flags = ACK});
  ASSERT_TRUE(fr::send(kernel, fr::ethernet(us, peer_mac, 0x0800, fr::ipv4(peer_ip, our_ip, 6, ack))));
  both(3);
  EXPECT_EQ(h1.opened, 1);
  EXPECT_EQ(h1.data, "hi");
  EXPECT_EQ(h0.opened, 0);
  (void)fr::receive_all(kernel1);
  // An ICMP frag-needed for that connection arrives on loop 0's queue: it
  // reaches loop 1, which owns the connection (issue 20, 5).
  connection* c1 = l1.get(h1.handle);
  ASSERT_NE(c1, nullptr);
  ASSERT_TRUE(c1->write(std::string(3000, 'x')));
  both(1);
  auto big = fr::receive_all(kernel1);
  ASSERT_FALSE(big.empty());
  ASSERT_EQ(fr::decode(big[0]).payload.size(), 1460u);
  const std::string icmp = fr::icmp(3, 4, 0, 1000, big[0].substr(14, 28));
  ASSERT_TRUE(fr::send(kernel, fr::ethernet(us, peer_mac, 0x0800, fr::ipv4(fr::ip("10.0.0.254"), our_ip, 1, icmp))));
  both(3);
  EXPECT_EQ(l1.transport().ip().stats().tcp_pmtu_updates.get(), 1u);
  EXPECT_EQ(l0.transport().ip().stats().dropped(drop_reason::icmp_unverified), 0u);
  auto resent = fr::receive_all(kernel1);
  ASSERT_FALSE(resent.empty());
  for (const auto& f : resent) EXPECT_LE(fr::decode(f).payload.size(), 960u);
  // An outgoing connection from loop 0 picks a port whose flow it owns.
  recording_handler c0;
  ASSERT_TRUE(l0.connect(endpoint::ipv4(peer_ip, 9999), c0).ok());
  both(1);
  auto out0 = fr::receive_all(kernel);
  ASSERT_EQ(out0.size(), 1u);
  auto s0 = fr::decode(out0[0]);
  EXPECT_EQ(steering.owner(peer_ip, our_ip, 9999, s0.sport), 0u);
  (void)fr::receive_all(kernel1);
}

}  // namespace
}  // namespace sluice::inet
