#pragma once
// One TCP connection's state (RFC 9293 section 3.3.1's transmission
// control block) and what happens to it: segment arrival in the
// synchronized states (RFC 9293 3.10.7.4, with RFC 5961's protections and
// RFC 7323's PAWS), output (window, congestion window, Nagle, SWS
// avoidance, SACK-based recovery), and its timers on the loop's wheel
// (retransmission, persist, delayed ACK, keepalive, TIME-WAIT).
//
// Buffers. The send queue is the sluice connection's own output chain: its
// first bytes (SND.UNA ... SND.NXT) are in flight and leave the chain only
// when acknowledged (loop_base::wrote), the rest is unsent; retransmissions
// copy from it again. So the output high-water mark is the send buffer and
// nothing is copied between the application and TCP. Received in-order
// bytes stay in the packet buffers they arrived in (payloads below
// copy_below are copied into pool segments), wait in rx_ until the
// connection may read, then move into its input chain; the receive window
// is what the input chain, rx_ and the out-of-order queue leave of the
// receive buffer.
//
// Life. A control block belongs to its stack's tcp_layer; a sluice
// connection points at it (connection::slot().ptr) from the handshake (or
// the connect call) until the loop releases the connection. Afterwards the
// block may live on alone to finish the close (FIN-WAIT, LAST-ACK,
// TIME-WAIT) and is freed by the layer.
//
// Owner core only; data path noexcept, no allocation.

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice/inet/congestion_control.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/inet/rtt_estimator.hpp"
#include "sluice/inet/tcp_header.hpp"
#include "sluice/inet/tcp_reorder_queue.hpp"

namespace sluice {
class listener;
}

namespace sluice::inet {

class tcp_layer;
struct packet;

// A connection's addresses (either family: both IPv4 or both IPv6) and ports.
struct tcp_tuple {
  ip_address local_ip;            // our address
  ip_address remote_ip;           // the peer's address
  std::uint16_t local_port = 0;   // our port
  std::uint16_t remote_port = 0;  // the peer's port
  // The same four fields.
  friend bool operator==(const tcp_tuple&, const tcp_tuple&) = default;
};

// Bytes of the IP and TCP headers without options in front of a segment to
// or from `peer`: 40 for IPv4, 60 for IPv6 (what MSS = MTU - this means).
[[nodiscard]] constexpr std::uint32_t tcp_ip_overhead(const ip_address& peer) noexcept {
  return peer.is_v4() ? 40 : 60;
}
// The MSS a peer that sent no MSS option is taken to have (RFC 9293 3.7.1):
// 536 for IPv4, 1220 for IPv6 (RFC 8200's minimum link MTU, 1280, less 60).
[[nodiscard]] constexpr std::uint16_t default_peer_mss(const ip_address& peer) noexcept {
  return peer.is_v4() ? 536 : 1220;
}

// RFC 9293 section 3.3.2 (LISTEN is a listener, not a control block).
enum class tcp_state : std::uint8_t {
  closed,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

// The state's name in RFC 9293's words ("ESTABLISHED", "SYN-SENT", ...).
[[nodiscard]] const char* to_string(tcp_state s) noexcept;

// RFC 7323 2.2: the smallest window shift that lets `buffer` bytes be
// advertised (at most 14).
[[nodiscard]] constexpr std::uint8_t tcp_window_shift(std::size_t buffer) noexcept {
  std::uint8_t s = 0;
  while (s < 14 && (std::size_t{65535} << s) < buffer) ++s;
  return s;
}

// A received segment, parsed: the header, and the payload in its packet
// buffer (seg.begin at the first payload byte; nullptr when there is none).
struct tcp_segment {
  tcp_header h;               // the fixed header and options
  packet* payload = nullptr;  // the packet holding the payload (owned by the segment until input() takes it)
  std::uint32_t len = 0;  // payload bytes
  ip_address src_ip;      // source address
  ip_address dst_ip;      // destination address
  // Sequence space the segment occupies: payload, plus one each for SYN and FIN.
  [[nodiscard]] std::uint32_t seg_len() const noexcept {
    return len + (h.has(tcp_syn) ? 1u : 0u) + (h.has(tcp_fin) ? 1u : 0u);
  }
};

// One TCP connection of the user-space stack: RFC 9293's transmission control
// block, with its send and receive state, timers, congestion control and the
// sluice connection it serves. Made and freed by the tcp_layer; owner core
// only.
class tcp_control_block {
 public:
  // A block for `tuple` whose MSS toward the peer starts at `mss`; it starts
  // CLOSED.
  tcp_control_block(tcp_layer& layer, const tcp_tuple& tuple, std::uint32_t mss) noexcept;
  tcp_control_block(const tcp_control_block&) = delete;
  tcp_control_block& operator=(const tcp_control_block&) = delete;
  // Gives back what it holds (received bytes, out-of-order buffers).
  ~tcp_control_block();

  // The RFC 9293 state.
  [[nodiscard]] tcp_state state() const noexcept { return state_; }
  // The connection's addresses and ports.
  [[nodiscard]] const tcp_tuple& tuple() const noexcept { return tuple_; }
  // The sluice connection it serves, or nullptr once the loop let go of it
  // (closing alone, TIME-WAIT).
  [[nodiscard]] connection* conn() const noexcept { return conn_; }

  // ---- what the layer drives ------------------------------------------------------------
  // A segment for a synchronized state or SYN-SENT/SYN-RECEIVED (the layer
  // handled LISTEN and no-connection). Takes the payload packet.
  void input(tcp_segment& s) noexcept;
  // Sends what may be sent now: data and FIN (each carrying the ACK). A
  // bare ACK still owed waits for the end of the burst or the next poll.
  void output() noexcept;
  // Remembers [seq, seq + len) as the D-SACK block of the next ACK.
  void note_duplicate(std::uint32_t seq, std::uint32_t len) noexcept;
  // Sends a bare ACK now (pending or challenge).
  void send_ack() noexcept;
  // Moves received bytes to the connection if it may read; FIN after them.
  void deliver() noexcept;
  // The application consumed input, or may read again: deliver, and
  // announce a window that opened enough (RFC 9293 3.8.6.2.2).
  void reader_ready() noexcept;
  // The loop's flush phase: output, and tell the loop whether more waits.
  void flush() noexcept;
  // Unsent data the windows let out now: the flush phase will send it,
  // and the pending ACK with it.
  [[nodiscard]] bool data_will_carry_ack() const noexcept;
  // The application's shutdown_write (output has drained: all acknowledged).
  void send_fin() noexcept;
  // The loop let go of the connection. Returns true if the block is done
  // (the layer frees it), false if it finishes the close alone.
  [[nodiscard]] bool detach(bool abort) noexcept;
  // "ESTABLISHED una=... nxt=... " for diagnostics.
  [[nodiscard]] std::string describe() const;
  // Sends RST for this connection (RFC 9293 3.10.7.4: seq SND.NXT).
  void send_reset() noexcept;
  // (Re)arms the keepalive timer, if keepalive is on and the connection attached.
  void arm_keepalive() noexcept;
  // RFC 1191 with RFC 5927 4.1's check: a router could not forward our
  // segment at `seq` over a link of MTU `mtu` (tcp_layer::frag_needed).
  // Lowers the path MSS (never below min_path_mtu's) and resends what is
  // in flight at the new size. False if seq is not in flight.
  [[nodiscard]] bool frag_needed(std::uint32_t seq, std::uint32_t mtu, std::uint32_t quoted_len) noexcept;
  // RFC 1191 allows 68; like Linux's min_pmtu, a frag-needed cannot push a
  // connection below this (tiny segments would be a cheap attack).
  static constexpr std::uint32_t min_path_mtu = 552;
  // The same floor for IPv6 (RFC 8200 section 5's minimum link MTU).
  static constexpr std::uint32_t min_path_mtu_v6 = 1280;

  // ---- handshake (the layer sets these up) -------------------------------------------
  // connect(): SYN-SENT with initial sequence number iss, SYN sent.
  void start_active_open(std::uint32_t iss) noexcept;
  // A SYN arrived for a listener: SYN-RECEIVED, SYN-ACK sent.
  void start_passive_open(const tcp_segment& syn, std::uint32_t iss) noexcept;
  // From a valid SYN cookie: straight to ESTABLISHED.
  void start_from_cookie(const tcp_segment& ack, std::uint32_t iss, std::uint16_t mss, int wscale,
                         bool sack) noexcept;

 private:
  friend class tcp_layer;

  // Arrival, by part (RFC 9293 3.10.7.4's numbered steps).
  void input_syn_sent(tcp_segment& s) noexcept;
  [[nodiscard]] bool acceptable(const tcp_segment& s) const noexcept;
  [[nodiscard]] bool process_rst(const tcp_segment& s) noexcept;
  [[nodiscard]] bool process_ack(tcp_segment& s) noexcept;
  void process_data(tcp_segment& s) noexcept;
  void process_fin(const tcp_segment& s) noexcept;
  void take_options(const tcp_options& o, bool syn) noexcept;
  void established() noexcept;
  void new_data_acked(std::uint32_t acked, const tcp_segment& s) noexcept;
  void update_rtt(const tcp_segment& s, std::uint32_t acked_to) noexcept;
  void enter_recovery() noexcept;
  void enter_time_wait() noexcept;
  void challenge_ack() noexcept;
  // An ACK owed to a segment that was not acceptable (out of window, PAWS):
  // sent unless it is the connection's second within invalid_ack_interval
  // and the segment is no plausible duplicate (counted then).
  void answer_invalid(const tcp_segment& s) noexcept;
  void fail(close_reason why, int err) noexcept;
  void append_in_order(packet* p) noexcept;

  // Output helpers.
  [[nodiscard]] std::uint32_t send_mss() const noexcept;
  [[nodiscard]] std::uint32_t flight() const noexcept { return snd_max_ - snd_una_; }
  [[nodiscard]] std::uint32_t unsent() const noexcept;
  [[nodiscard]] std::uint32_t pipe() const noexcept;
  [[nodiscard]] std::uint32_t receive_space() const noexcept;
  [[nodiscard]] std::uint16_t window_field() noexcept;
  // One segment: flags, seq, `len` payload bytes from the send queue at seq.
  // Sends one segment of up to len bytes from seq. It may carry fewer (SACK
  // blocks take room from the MSS): sent_len_ says how many, and callers
  // advance their sequence numbers by that, never by len.
  bool transmit(std::uint8_t flags, std::uint32_t seq, std::uint32_t len) noexcept;
  std::uint32_t sent_len_ = 0;
  bool send_new_data() noexcept;
  // RFC 4821: sends a probe segment one step above the path MSS, if one is
  // due and the data and windows allow; true if it went.
  bool send_mtu_probe(std::uint32_t usable) noexcept;
  void arm_rtx() noexcept;
  void arm_persist() noexcept;
  void need_ack() noexcept;

  // Timers.
  void on_rtx_timer() noexcept;
  void on_delack_timer() noexcept;
  void on_keepalive_timer() noexcept;

  tcp_layer& layer_;
  tcp_tuple tuple_;
  tcp_state state_ = tcp_state::closed;
  connection* conn_ = nullptr;
  listener* listener_ = nullptr;  // passive opens until the handshake completes
  bool passive_ = false;
  bool in_syn_queue_ = false;   // counted in its listener's SYN queue
  bool write_blocked_ = false;  // we told the loop (write_blocked); flush_ready owed

  // Send sequence space (RFC 9293 3.3.1).
  std::uint32_t iss_ = 0;
  std::uint32_t snd_una_ = 0;
  std::uint32_t snd_nxt_ = 0;
  std::uint32_t snd_max_ = 0;    // the highest sequence sent + 1
  std::uint32_t probe_end_ = 0;  // the end of the last window probe (its byte may be taken)
  std::uint32_t snd_wnd_ = 0;  // scaled
  std::uint32_t max_snd_wnd_ = 0;
  std::uint32_t snd_wl1_ = 0;
  std::uint32_t snd_wl2_ = 0;
  std::uint8_t snd_wscale_ = 0;
  bool fin_queued_ = false;  // shutdown asked: FIN at fin_seq_
  std::uint32_t fin_seq_ = 0;
  std::uint16_t peer_mss_ = 536;  // RFC 9293 3.7.1: the default without the option
  std::uint16_t our_mss_;
  std::uint32_t path_mss_;  // from ICMP frag-needed (RFC 1191); our_mss_ until one comes
  // RFC 4821: an MTU probe in flight (its MSS, 0: none, and the sequence
  // number after it), and when the next one may go.
  std::uint32_t mtu_probe_mss_ = 0;
  std::uint32_t mtu_probe_end_ = 0;
  time_point next_mtu_probe_ = time_point::max();
  std::uint32_t tx_mss_ = 0;  // transmit()'s segment size for one probe (0: send_mss())

  // Receive sequence space.
  std::uint32_t irs_ = 0;
  std::uint32_t rcv_nxt_ = 0;
  std::uint32_t rcv_adv_ = 0;  // the right edge we advertised
  std::uint8_t rcv_wscale_ = 0;
  std::uint32_t rcv_buf_ = 0;
  buffer_chain rx_;
  bool fin_received_ = false;
  bool fin_delivered_ = false;
  tcp_reorder_queue ooo_;
  std::uint32_t unacked_segments_ = 0;  // delayed ACK: full segments since our last ACK
  bool peer_fin_ooo_ = false;           // a FIN arrived beyond a gap, at peer_fin_seq_
  std::uint32_t peer_fin_seq_ = 0;

  // Options (RFC 7323, RFC 2018).
  bool ws_ok_ = false;
  bool ts_ok_ = false;
  bool sack_ok_ = false;
  std::uint32_t ts_recent_ = 0;
  std::uint32_t ts_offset_ = 0;
  std::uint32_t last_ack_sent_ = 0;

  // Round trips and congestion.
  rtt_estimator rtt_;
  congestion_control cc_;
  bool rtt_timing_ = false;  // Karn's rule without timestamps: one timed segment
  std::uint32_t rtt_seq_ = 0;
  time_point rtt_start_{};
  time_point last_send_{};
  bool cwnd_limited_ = false;
  unsigned dupacks_ = 0;
  bool in_recovery_ = false;
  std::uint32_t recover_ = 0;   // RFC 6582's "recover": the highest sent at loss detection
  std::uint32_t rtx_next_ = 0;  // in recovery: holes below this were retransmitted
  sack_scoreboard sacked_;

  // Timers and counters.
  enum class rtx_mode : std::uint8_t { none, retransmit, persist, time_wait, fin_wait_2 };
  rtx_mode mode_ = rtx_mode::none;
  timer rtx_timer_;
  timer delack_timer_;
  timer keepalive_timer_;
  unsigned retries_ = 0;
  unsigned keepalive_sent_ = 0;
  duration persist_backoff_{};
  time_point persist_since_{};  // when the peer's window was found shut (persist_timeout)
  time_point last_invalid_ack_ = time_point::min();  // answer_invalid's rate limit
  time_point last_heard_{};

  // The layer's lists: hash chain, pending work (deliver/ACK), TIME-WAIT order.
  tcp_control_block* next_in_bucket_ = nullptr;
  bool ack_pending_ = false;
  // RFC 2883 (D-SACK): a duplicate segment the next ACK reports as its first
  // SACK block, so that the peer learns its retransmission was spurious (the
  // original was only reordered) and widens its reordering window instead
  // of retransmitting again.
  bool dsack_pending_ = false;
  sack_block dsack_{};
  bool ack_delayed_ = false;   // an ACK owed when the delayed-ACK timer fires
  bool sws_override_ = false;  // the persist timer forces a small segment out
  bool deliver_pending_ = false;
  using auto_hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  auto_hook pending_hook_;
  auto_hook time_wait_hook_;

 public:
  // Blocks that owe an ACK, sent at the end of the burst or before the next
  // poll (tcp_layer's list).
  using pending_list =
      boost::intrusive::list<tcp_control_block,
                             boost::intrusive::member_hook<tcp_control_block, auto_hook, &tcp_control_block::pending_hook_>,
                             boost::intrusive::constant_time_size<false>>;
  // Blocks in TIME-WAIT, oldest first: the first to go when blocks run out
  // (tcp_layer's list).
  using time_wait_list = boost::intrusive::list<
      tcp_control_block, boost::intrusive::member_hook<tcp_control_block, auto_hook, &tcp_control_block::time_wait_hook_>,
      boost::intrusive::constant_time_size<false>>;
};

}  // namespace sluice::inet
