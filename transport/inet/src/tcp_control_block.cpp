#include "sluice/inet/tcp_control_block.hpp"

#include <algorithm>
#include <cerrno>

#include "sluice/transport/loop.hpp"
#include "sluice/inet/packet.hpp"
#include "sluice/inet/stack.hpp"
#include "sluice/inet/tcp_layer.hpp"
#include "sluice/inet/tcp_seq.hpp"

namespace sluice::inet {

namespace {

constexpr std::uint32_t ts_option_len = 12;  // NOP NOP kind len TSval TSecr

}  // namespace

const char* to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::closed: return "CLOSED";
    case tcp_state::syn_sent: return "SYN-SENT";
    case tcp_state::syn_received: return "SYN-RECEIVED";
    case tcp_state::established: return "ESTABLISHED";
    case tcp_state::fin_wait_1: return "FIN-WAIT-1";
    case tcp_state::fin_wait_2: return "FIN-WAIT-2";
    case tcp_state::close_wait: return "CLOSE-WAIT";
    case tcp_state::closing: return "CLOSING";
    case tcp_state::last_ack: return "LAST-ACK";
    case tcp_state::time_wait: return "TIME-WAIT";
  }
  return "?";
}

tcp_control_block::tcp_control_block(tcp_layer& layer, const tcp_tuple& tuple, std::uint32_t mss) noexcept
    : layer_(layer),
      tuple_(tuple),
      our_mss_(static_cast<std::uint16_t>(mss)),
      path_mss_(mss),
      rtt_(layer.config().initial_rto, layer.config().min_rto, layer.config().max_rto, std::chrono::milliseconds(1)),
      cc_(layer.config().congestion, mss) {
  rx_.set_pool(&layer.loop().pool());
  rcv_buf_ = static_cast<std::uint32_t>(layer.config().receive_buffer);
  rcv_wscale_ = layer.config().window_scaling ? tcp_window_shift(rcv_buf_) : 0;
  rtx_timer_.bind<&tcp_control_block::on_rtx_timer>(this);
  delack_timer_.bind<&tcp_control_block::on_delack_timer>(this);
  keepalive_timer_.bind<&tcp_control_block::on_keepalive_timer>(this);
  last_heard_ = layer.now();
}

tcp_control_block::~tcp_control_block() {
  rx_.clear();
  ooo_.clear();
}

// ---- setting up -------------------------------------------------------------------------------

void tcp_control_block::start_active_open(std::uint32_t iss) noexcept {
  iss_ = snd_una_ = snd_nxt_ = snd_max_ = probe_end_ = recover_ = iss;
  ts_offset_ = layer_.ts_offset(tuple_);
  state_ = tcp_state::syn_sent;
  rtt_timing_ = true;  // the SYN is timed (Karn: only if it is not sent again)
  rtt_seq_ = iss + 1;
  rtt_start_ = layer_.now();
  (void)transmit(tcp_syn, iss_, 0);
  snd_nxt_ = snd_max_ = iss_ + 1;
  arm_rtx();
}

void tcp_control_block::start_passive_open(const tcp_segment& syn, std::uint32_t iss) noexcept {
  iss_ = snd_una_ = snd_nxt_ = snd_max_ = probe_end_ = recover_ = iss;
  irs_ = syn.h.seq;
  rcv_nxt_ = rcv_adv_ = irs_ + 1;
  ts_offset_ = layer_.ts_offset(tuple_);
  take_options(syn.h.opt, true);
  // RFC 7323 2.2: the window of a SYN is never scaled.
  snd_wnd_ = max_snd_wnd_ = syn.h.window;
  snd_wl1_ = syn.h.seq;
  snd_wl2_ = iss;
  state_ = tcp_state::syn_received;
  rtt_timing_ = true;
  rtt_seq_ = iss + 1;
  rtt_start_ = layer_.now();
  (void)transmit(tcp_syn, iss_, 0);
  snd_nxt_ = snd_max_ = iss_ + 1;
  arm_rtx();
}

void tcp_control_block::start_from_cookie(const tcp_segment& ack, std::uint32_t iss, std::uint16_t mss, int wscale,
                                          bool sack) noexcept {
  const tcp_config& cfg = layer_.config();
  iss_ = recover_ = iss;
  snd_una_ = snd_nxt_ = snd_max_ = probe_end_ = iss + 1;
  irs_ = ack.h.seq - 1;
  rcv_nxt_ = ack.h.seq;
  // The cookie's SYN-ACK offered an unscaled window of up to 64 KiB.
  rcv_adv_ = rcv_nxt_ + std::min<std::uint32_t>(rcv_buf_, 65535);
  ts_offset_ = layer_.ts_offset(tuple_);
  peer_mss_ = std::max<std::uint16_t>(mss, 88);
  ws_ok_ = wscale >= 0;
  snd_wscale_ = ws_ok_ ? static_cast<std::uint8_t>(wscale) : 0;
  if (!ws_ok_) rcv_wscale_ = 0;
  sack_ok_ = sack;
  ts_ok_ = ack.h.opt.has_timestamps && cfg.timestamps;
  if (ts_ok_) ts_recent_ = ack.h.opt.ts_val;
  snd_wnd_ = max_snd_wnd_ = std::uint32_t{ack.h.window} << snd_wscale_;
  snd_wl1_ = ack.h.seq;
  snd_wl2_ = ack.h.ack;
  cc_.set_mss(send_mss());
  established();
}

void tcp_control_block::take_options(const tcp_options& o, bool) noexcept {
  const tcp_config& cfg = layer_.config();
  // RFC 9293 3.7.1: 536 (IPv4) or 1220 (IPv6) without the option; a tiny
  // MSS would make every byte cost a segment, so it is floored (as
  // deployed stacks do).
  peer_mss_ = o.has_mss ? std::max<std::uint16_t>(o.mss, 88) : default_peer_mss(tuple_.remote_ip);
  // RFC 7323 2.2: scaling only if both sides sent the option.
  ws_ok_ = cfg.window_scaling && o.has_wscale;
  snd_wscale_ = ws_ok_ ? std::min<std::uint8_t>(o.wscale, 14) : 0;
  if (!ws_ok_) rcv_wscale_ = 0;
  sack_ok_ = cfg.sack && o.sack_permitted;
  ts_ok_ = cfg.timestamps && o.has_timestamps;
  if (ts_ok_) ts_recent_ = o.ts_val;
  cc_.set_mss(send_mss());
}

void tcp_control_block::established() noexcept {
  state_ = tcp_state::established;
  layer_.stats().tcp_established.add();
  arm_keepalive();
}

std::uint32_t tcp_control_block::send_mss() const noexcept {
  // RFC 9293 3.7.1: Eff.snd.MSS, less the timestamp option every segment carries.
  const std::uint32_t base = std::min<std::uint32_t>({peer_mss_, our_mss_, path_mss_});
  return base - (ts_ok_ ? ts_option_len : 0);
}

// ---- arrival ----------------------------------------------------------------------------------

void tcp_control_block::input(tcp_segment& s) noexcept {
  auto give_back = [&s] {
    if (s.payload != nullptr) segment_unref(&s.payload->seg);
    s.payload = nullptr;
  };
  last_heard_ = layer_.now();
  keepalive_sent_ = 0;
  if (state_ == tcp_state::syn_sent) {
    input_syn_sent(s);
    return;
  }
  // A retransmitted SYN while we wait for the handshake's last ACK: our
  // SYN-ACK was lost, send it again.
  if (state_ == tcp_state::syn_received && s.h.has(tcp_syn) && !s.h.has(tcp_ack) && s.h.seq == irs_) {
    give_back();
    (void)transmit(tcp_syn, iss_, 0);
    return;
  }
  // Simultaneous open (RFC 9293 figure 8): the peer's SYN-ACK repeats its
  // SYN's sequence number; what counts is that it acknowledges ours.
  if (state_ == tcp_state::syn_received && s.h.has(tcp_syn) && s.h.has(tcp_ack) && s.h.seq == irs_ &&
      seq_gt(s.h.ack, snd_una_) && seq_le(s.h.ack, snd_max_)) {
    s.h.flags &= static_cast<std::uint8_t>(~tcp_syn);
    s.h.seq = irs_ + 1;
  }
  inet_stats& st = layer_.stats();
  // RFC 7323 5.3 (PAWS): a timestamp older than TS.Recent marks an old
  // duplicate; acknowledge and drop it (never for a RST).
  if (ts_ok_ && s.h.opt.has_timestamps && !s.h.has(tcp_rst) && seq_lt(s.h.opt.ts_val, ts_recent_)) {
    give_back();
    st.drop(drop_reason::tcp_paws);
    answer_invalid(s);
    return;
  }
  // RFC 9293 3.10.7.4 first: is the segment acceptable?
  if (!acceptable(s)) {
    const std::uint32_t wnd = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
    if (wnd == 0 && s.h.seq == rcv_nxt_ && s.len != 0) {
      // A closed window still takes ACKs and RSTs (RFC 9293 3.10.7.4):
      // the data goes, the rest is processed.
      give_back();
      s.len = 0;
      s.h.flags &= static_cast<std::uint8_t>(~tcp_fin);
      st.drop(drop_reason::tcp_beyond_window);
      need_ack();
    } else {
      // Data wholly below RCV.NXT: a retransmission of what we hold.
      if (s.len != 0 && seq_le(s.h.seq + s.len, rcv_nxt_)) note_duplicate(s.h.seq, s.len);
      give_back();
      st.drop(drop_reason::tcp_out_of_window);
      if (!s.h.has(tcp_rst)) answer_invalid(s);
      if (state_ == tcp_state::time_wait && s.h.has(tcp_fin)) {
        // The peer's FIN again: our ACK was lost; TIME-WAIT starts over.
        layer_.loop().timers().arm_after(rtx_timer_, layer_.config().time_wait);
      }
      return;
    }
  }
  // Second: RST (RFC 5961 section 3).
  if (s.h.has(tcp_rst)) {
    give_back();
    (void)process_rst(s);
    return;
  }
  // Fourth: a SYN on a synchronized connection (RFC 5961 section 4).
  if (s.h.has(tcp_syn)) {
    give_back();
    st.drop(drop_reason::tcp_syn_in_window);
    challenge_ack();
    return;
  }
  // Fifth: no ACK, nothing more to do (RFC 9293 3.10.7.4).
  if (!s.h.has(tcp_ack)) {
    give_back();
    st.drop(drop_reason::tcp_bad_flags);
    return;
  }
  if (!process_ack(s)) return;  // dropped, or the block is gone
  // RFC 7323 4.3: TS.Recent follows the segment that covers Last.ACK.sent.
  if (ts_ok_ && s.h.opt.has_timestamps && seq_le(s.h.seq, last_ack_sent_) && seq_ge(s.h.opt.ts_val, ts_recent_)) {
    ts_recent_ = s.h.opt.ts_val;
  }
  // Seventh and eighth: the data, then the FIN.
  if (s.len != 0) process_data(s);
  if (s.h.has(tcp_fin) && s.len == 0 && !fin_received_ && seq_gt(s.h.seq, rcv_nxt_)) {
    // A bare FIN beyond a gap (the data before it was lost or is late):
    // it waits, as a FIN on a data segment beyond a gap does
    // (process_data), and a duplicate ACK tells the sender what is missing.
    // Taken at once, it would end the stream before the missing bytes.
    peer_fin_ooo_ = true;
    peer_fin_seq_ = s.h.seq;
    s.h.flags &= static_cast<std::uint8_t>(~tcp_fin);
    send_ack();
  }
  if (s.h.has(tcp_fin)) process_fin(s);
  if (state_ == tcp_state::closed) return;
  // What the ACK let go of or allowed goes out now (ACK clocking).
  output();
  if (conn_ != nullptr) {
    if (write_blocked_ && unsent() == 0) {
      write_blocked_ = false;
      layer_.loop().flush_ready(*conn_);
    } else if (!fin_queued_ && conn_->output().empty() && conn_->write_shut()) {
      // Everything acknowledged and the application wants to finish: the
      // loop's flush phase sends the FIN (after_flush).
      layer_.loop().flush_ready(*conn_);
    }
  }
}

void tcp_control_block::input_syn_sent(tcp_segment& s) noexcept {
  // RFC 9293 3.10.7.3.
  inet_stats& st = layer_.stats();
  if (s.payload != nullptr) {
    // Data on a SYN-ACK is not kept (it comes again after the handshake).
    segment_unref(&s.payload->seg);
    s.payload = nullptr;
    s.len = 0;
  }
  const bool has_ack = s.h.has(tcp_ack);
  if (has_ack && (seq_le(s.h.ack, iss_) || seq_gt(s.h.ack, snd_max_))) {
    st.drop(drop_reason::tcp_bad_ack);
    if (!s.h.has(tcp_rst)) layer_.send_reset_for(s);
    return;
  }
  if (s.h.has(tcp_rst)) {
    if (!has_ack) {
      st.drop(drop_reason::tcp_rst_ignored);
      return;
    }
    st.tcp_resets_in.add();
    fail(close_reason::connect_refused, ECONNREFUSED);
    layer_.destroy(this);
    return;
  }
  if (!s.h.has(tcp_syn)) {
    st.drop(drop_reason::tcp_bad_flags);
    return;
  }
  irs_ = s.h.seq;
  rcv_nxt_ = rcv_adv_ = irs_ + 1;
  take_options(s.h.opt, true);
  snd_wnd_ = max_snd_wnd_ = s.h.window;  // a SYN's window is not scaled
  snd_wl1_ = s.h.seq;
  snd_wl2_ = s.h.ack;
  if (has_ack) {
    snd_una_ = s.h.ack;
    if (rtt_timing_ && retries_ == 0) rtt_.sample(layer_.now() - rtt_start_);
    rtt_timing_ = false;
    retries_ = 0;
    rtx_timer_.cancel();
    mode_ = rtx_mode::none;
    established();
    need_ack();  // the handshake's third segment (or the first data carries it)
    if (conn_ != nullptr) layer_.loop().opened(*conn_);
    return;
  }
  // Simultaneous open (RFC 9293 3.5, figure 8): SYN-RECEIVED, SYN-ACK.
  state_ = tcp_state::syn_received;
  rtt_timing_ = false;
  (void)transmit(tcp_syn, iss_, 0);
}

bool tcp_control_block::acceptable(const tcp_segment& s) const noexcept {
  // RFC 9293 3.10.7.4, the four cases of segment length and window.
  const std::uint32_t wnd = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
  const std::uint32_t len = s.seg_len();
  const std::uint32_t seq = s.h.seq;
  if (len == 0) return wnd == 0 ? seq == rcv_nxt_ : seq_in(seq, rcv_nxt_, rcv_nxt_ + wnd);
  if (wnd == 0) return false;
  return seq_in(seq, rcv_nxt_, rcv_nxt_ + wnd) || seq_in(seq + len - 1, rcv_nxt_, rcv_nxt_ + wnd);
}

bool tcp_control_block::process_rst(const tcp_segment& s) noexcept {
  inet_stats& st = layer_.stats();
  if (state_ == tcp_state::time_wait) {
    // RFC 1337: a RST must not cut TIME-WAIT short (TIME-WAIT assassination).
    st.drop(drop_reason::tcp_rst_ignored);
    return false;
  }
  if (s.h.seq != rcv_nxt_) {
    // RFC 5961 3.2: in the window but not exactly at RCV.NXT: a challenge
    // ACK, which a real peer answers with an exact RST.
    st.drop(drop_reason::tcp_rst_ignored);
    challenge_ack();
    return false;
  }
  st.tcp_resets_in.add();
  switch (state_) {
    case tcp_state::syn_received:
      // A passive open goes back to LISTEN (nothing to tell); an active
      // one (simultaneous open) was refused.
      if (!passive_) fail(close_reason::connect_refused, ECONNREFUSED);
      break;
    default:
      fail(close_reason::peer_reset, ECONNRESET);
      break;
  }
  state_ = tcp_state::closed;
  layer_.destroy(this);
  return true;
}

bool tcp_control_block::process_ack(tcp_segment& s) noexcept {
  inet_stats& st = layer_.stats();
  const std::uint32_t ack = s.h.ack;
  auto give_back = [&s] {
    if (s.payload != nullptr) segment_unref(&s.payload->seg);
    s.payload = nullptr;
  };
  if (state_ == tcp_state::syn_received) {
    if (!(seq_lt(snd_una_, ack) && seq_le(ack, snd_max_))) {
      give_back();
      st.drop(drop_reason::tcp_bad_ack);
      layer_.send_reset_for(s);
      return false;
    }
    // Our SYN is acknowledged: the handshake is complete.
    if (rtt_timing_ && retries_ == 0 && !(ts_ok_ && s.h.opt.has_timestamps)) rtt_.sample(layer_.now() - rtt_start_);
    update_rtt(s, ack);
    rtt_timing_ = false;
    snd_una_ = ack;
    layer_.ip_.neighbour_confirmed(tuple_.remote_ip);
    if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;
    snd_wnd_ = std::uint32_t{s.h.window} << snd_wscale_;
    max_snd_wnd_ = std::max(max_snd_wnd_, snd_wnd_);
    snd_wl1_ = s.h.seq;
    snd_wl2_ = ack;
    retries_ = 0;
    rtx_timer_.cancel();
    mode_ = rtx_mode::none;
    established();
    if (passive_ && conn_ == nullptr) {
      layer_.established(*this);
      if (state_ == tcp_state::closed || layer_.find(tuple_) != this) {
        give_back();
        return false;
      }
    } else if (conn_ != nullptr) {
      layer_.loop().opened(*conn_);  // simultaneous open completes
    }
    return true;
  }
  // RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT]
  // (SND.MAX here, or the end of a window probe the peer may have taken).
  if (seq_gt(ack, seq_max(snd_max_, probe_end_))) {
    give_back();
    st.drop(drop_reason::tcp_bad_ack);
    challenge_ack();
    return false;
  }
  if (seq_lt(ack, snd_una_ - std::max<std::uint32_t>(max_snd_wnd_, 1))) {
    give_back();
    st.drop(drop_reason::tcp_bad_ack);
    challenge_ack();
    return false;
  }
  if (sack_ok_ && s.h.opt.sack_count != 0) sacked_.update(s.h.opt.sacks.data(), s.h.opt.sack_count, snd_una_, snd_max_);
  const std::uint32_t new_wnd = std::uint32_t{s.h.window} << snd_wscale_;
  if (seq_gt(ack, snd_una_)) {
    new_data_acked(ack - snd_una_, s);
    if (state_ == tcp_state::closed) return false;
  } else if (ack == snd_una_ && s.len == 0 && !s.h.has(tcp_fin) && new_wnd == snd_wnd_ && snd_nxt_ != snd_una_) {
    // A duplicate ACK (RFC 5681 section 2's definition).
    st.tcp_dup_acks.add();
    ++dupacks_;
    const bool sack_mode = sack_ok_ && !sacked_.empty();
    if (!in_recovery_) {
      const bool sack_loss = sack_mode && sacked_.sacked_bytes() >= 3 * send_mss();
      // RFC 6582 3.2 step 1: not for ACKs that do not pass `recover`
      // (duplicates of the go-back-N after a timeout).
      if ((dupacks_ >= 3 || sack_loss) && seq_gt(ack, recover_)) enter_recovery();
    } else if (!sack_mode) {
      cc_.inflate(send_mss());  // RFC 6582 3.2 step 4
    }
  }
  // The send window (RFC 9293 3.10.7.4: only from segments not older than
  // the last update).
  if (seq_lt(snd_wl1_, s.h.seq) || (snd_wl1_ == s.h.seq && seq_le(snd_wl2_, ack))) {
    const bool opened = new_wnd > snd_wnd_;
    snd_wnd_ = new_wnd;
    max_snd_wnd_ = std::max(max_snd_wnd_, snd_wnd_);
    snd_wl1_ = s.h.seq;
    snd_wl2_ = ack;
    if (opened && mode_ == rtx_mode::persist) {
      rtx_timer_.cancel();
      mode_ = rtx_mode::none;
      persist_backoff_ = duration::zero();
    }
  }
  // Our FIN acknowledged?
  if (fin_queued_ && seq_gt(snd_max_, fin_seq_) && seq_ge(ack, fin_seq_ + 1)) {
    switch (state_) {
      case tcp_state::fin_wait_1:
        state_ = tcp_state::fin_wait_2;
        if (conn_ == nullptr) {
          mode_ = rtx_mode::fin_wait_2;
          layer_.loop().timers().arm_after(rtx_timer_, layer_.config().fin_wait_2);
        }
        break;
      case tcp_state::closing:
        enter_time_wait();
        break;
      case tcp_state::last_ack:
        give_back();
        state_ = tcp_state::closed;
        if (conn_ != nullptr) {
          // The application still lingers: both directions are done.
          layer_.loop().peer_shutdown(*conn_);
        }
        layer_.destroy(this);
        return false;
      default:
        break;
    }
  }
  return true;
}

void tcp_control_block::new_data_acked(std::uint32_t acked, const tcp_segment& s) noexcept {
  const std::uint32_t ack = snd_una_ + acked;
  update_rtt(s, ack);
  // Bytes of the send queue acknowledged (the FIN takes a sequence number
  // but no byte of the queue).
  const std::size_t queued = conn_ != nullptr ? conn_->output().size() : 0;
  const auto data_acked = static_cast<std::uint32_t>(std::min<std::size_t>(acked, queued));
  const std::uint32_t flight_before = flight();
  snd_una_ = ack;
  layer_.ip_.neighbour_confirmed(tuple_.remote_ip);  // forward progress (RFC 4861 7.3.1)
  if (seq_lt(snd_nxt_, snd_una_)) snd_nxt_ = snd_una_;  // a window probe byte was taken
  if (seq_lt(snd_max_, snd_una_)) snd_max_ = snd_una_;
  retries_ = 0;
  if (mtu_probe_mss_ != 0 && seq_ge(ack, mtu_probe_end_)) {
    // RFC 4821: the probe got through: the path takes its size. The next
    // step (if any) may be probed at once.
    path_mss_ = mtu_probe_mss_;
    mtu_probe_mss_ = 0;
    cc_.set_mss(send_mss());
    layer_.stats().tcp_mtu_probes_ok.add();
    next_mtu_probe_ = layer_.now();
  }
  if (mode_ == rtx_mode::persist) {
    persist_backoff_ = duration::zero();
    persist_since_ = layer_.now();  // the peer took data: progress, not a shut window
  }
  sacked_.update(nullptr, 0, snd_una_, snd_max_);
  if (in_recovery_) {
    if (seq_ge(ack, recover_)) {
      // A full acknowledgment: recovery is over (RFC 6582 3.2 step 3).
      in_recovery_ = false;
      dupacks_ = 0;
      cc_.on_recovery_exit(flight());
    } else {
      // A partial acknowledgment: the next hole is lost too.
      if (!(sack_ok_ && !sacked_.empty())) {
        // RFC 6582 3.2 step 5: deflate by what was acknowledged, add one
        // segment back if at least one was.
        const std::uint32_t mss = send_mss();
        const std::uint32_t cw = cc_.cwnd();
        const std::uint32_t deflated = cw > data_acked ? cw - data_acked : 0;
        cc_.set_window(std::max(deflated + (data_acked >= mss ? mss : 0), mss));
      }
      if (seq_lt(rtx_next_, snd_una_)) rtx_next_ = snd_una_;
      arm_rtx();  // RFC 6582 3.2 step 5: reset the timer on a partial ACK
    }
  } else {
    dupacks_ = 0;
    cc_.on_ack(data_acked, cwnd_limited_ || flight_before + send_mss() > cc_.cwnd(), layer_.now(), rtt_.srtt());
  }
  if (conn_ != nullptr && data_acked != 0) {
    // The acknowledged bytes leave the output chain: the application may
    // write more (on_writable), and the loop counts them written.
    layer_.loop().wrote(*conn_, data_acked);
  }
  // RFC 6298 5.2 and 5.3: stop the timer when everything is acknowledged,
  // restart it when something new was.
  if (flight() == 0) {
    if (mode_ == rtx_mode::retransmit) {
      rtx_timer_.cancel();
      mode_ = rtx_mode::none;
    }
  } else if (!in_recovery_ && mode_ != rtx_mode::persist) {
    arm_rtx();
  }
}

void tcp_control_block::update_rtt(const tcp_segment& s, std::uint32_t acked_to) noexcept {
  if (ts_ok_ && s.h.opt.has_timestamps && s.h.opt.ts_ecr != 0) {
    // RFC 7323 4.1: the echoed timestamp of an ACK for new data times the
    // round trip of the segment it echoes, retransmitted or not.
    const std::uint32_t now_ts = layer_.ts_clock() + ts_offset_;
    const std::uint32_t ms = now_ts - s.h.opt.ts_ecr;
    if (ms < 0x7fffffffu) rtt_.sample(std::chrono::milliseconds(ms));
    return;
  }
  if (rtt_timing_ && seq_ge(acked_to, rtt_seq_)) {
    rtt_.sample(layer_.now() - rtt_start_);
    rtt_timing_ = false;
  }
}

void tcp_control_block::enter_recovery() noexcept {
  inet_stats& st = layer_.stats();
  st.tcp_fast_retransmits.add();
  const bool sack_mode = sack_ok_ && !sacked_.empty();
  if (sack_mode) st.tcp_sack_recoveries.add();
  recover_ = snd_max_;
  cc_.on_loss(flight(), layer_.now());
  in_recovery_ = true;
  rtx_next_ = snd_una_;
  rtt_timing_ = false;  // Karn: the timed segment may be the one resent
  if (!sack_mode) cc_.inflate(3 * send_mss());  // RFC 6582 3.2 step 2
}

void tcp_control_block::process_data(tcp_segment& s) noexcept {
  inet_stats& st = layer_.stats();
  packet* p = s.payload;
  s.payload = nullptr;
  std::uint32_t seq = s.h.seq;
  std::uint32_t len = s.len;
  auto ack_and_drop = [&](drop_reason why) {
    segment_unref(&p->seg);
    st.drop(why);
    need_ack();
  };
  if (state_ != tcp_state::established && state_ != tcp_state::fin_wait_1 && state_ != tcp_state::fin_wait_2) {
    // After the peer's FIN no data can come (RFC 9293 3.10.7.4 seventh).
    return ack_and_drop(drop_reason::tcp_after_close);
  }
  // Only the new part counts: cut what was received before...
  if (seq_lt(seq, rcv_nxt_)) {
    const std::uint32_t cut = rcv_nxt_ - seq;
    note_duplicate(seq, std::min(cut, len));
    if (cut >= len) return ack_and_drop(drop_reason::tcp_duplicate);
    p->seg.begin += cut;
    seq = rcv_nxt_;
    len -= cut;
  }
  // ...and what lies beyond the window (the FIN after it too).
  const std::uint32_t edge = seq_max(rcv_adv_, rcv_nxt_ + receive_space());
  if (seq_gt(seq + len, edge)) {
    if (seq_ge(seq, edge)) {
      s.h.flags &= static_cast<std::uint8_t>(~tcp_fin);
      return ack_and_drop(drop_reason::tcp_beyond_window);
    }
    const std::uint32_t cut = seq + len - edge;
    p->seg.end -= cut;
    len -= cut;
    s.h.flags &= static_cast<std::uint8_t>(~tcp_fin);
    st.drop(drop_reason::tcp_beyond_window);
  }
  if (conn_ == nullptr) {
    // The application closed: the bytes are acknowledged and discarded, so
    // that the peer can finish.
    if (seq == rcv_nxt_) rcv_nxt_ += len;
    return ack_and_drop(drop_reason::tcp_after_close);
  }
  if (seq != rcv_nxt_) {
    // Beyond a gap: kept for later; an immediate ACK tells the sender
    // (RFC 5681 4.2), with SACK blocks that say what we hold.
    switch (ooo_.insert(p, seq, layer_.config().reorder_memory)) {
      case tcp_reorder_queue::insert_result::stored:
        st.tcp_ooo_segments.add();
        break;
      case tcp_reorder_queue::insert_result::duplicate:
        note_duplicate(seq, len);
        st.drop(drop_reason::tcp_duplicate);
        break;
      case tcp_reorder_queue::insert_result::no_room:
        st.drop(drop_reason::tcp_reorder_full);
        break;
    }
    if (s.h.has(tcp_fin)) {
      peer_fin_ooo_ = true;
      peer_fin_seq_ = seq + len;
      s.h.flags &= static_cast<std::uint8_t>(~tcp_fin);
    }
    // One duplicate ACK per segment, at once, not one per burst: a sender
    // without SACK counts them to detect the loss (RFC 5681 3.2).
    send_ack();
    return;
  }
  const bool filled_gap = !ooo_.empty();
  append_in_order(p);
  std::uint32_t qs = 0;
  while (packet* q = ooo_.pop_ready(rcv_nxt_, &qs)) append_in_order(q);
  if (peer_fin_ooo_ && rcv_nxt_ == peer_fin_seq_) {
    peer_fin_ooo_ = false;
    s.h.flags |= tcp_fin;  // the FIN that waited beyond the gap is next
  }
  deliver_pending_ = true;
  layer_.mark_pending(*this);
  // When to acknowledge (RFC 9293 3.8.6.3, RFC 5681 4.2).
  const tcp_config& cfg = layer_.config();
  if (len >= send_mss()) ++unacked_segments_;
  if (filled_gap || cfg.delayed_ack == duration::zero() || unacked_segments_ >= 2 || !ooo_.empty()) {
    need_ack();
  } else {
    ack_delayed_ = true;
    if (!delack_timer_.armed()) layer_.loop().timers().arm_after(delack_timer_, cfg.delayed_ack);
  }
}

void tcp_control_block::append_in_order(packet* p) noexcept {
  inet_stats& st = layer_.stats();
  const std::uint32_t len = p->size();
  rcv_nxt_ += len;
  if (len < layer_.config().copy_below && rx_.write(p->seg.view())) {
    // Small: into a pool segment, so the device buffer goes back at once.
    st.tcp_copied_in.add();
    segment_unref(&p->seg);
    return;
  }
  st.tcp_zero_copy_in.add();
  rx_.append(&p->seg);
}

void tcp_control_block::process_fin(const tcp_segment& s) noexcept {
  (void)s;
  if (!fin_received_) {
    fin_received_ = true;
    rcv_nxt_ += 1;
  }
  need_ack();  // a FIN is acknowledged at once
  deliver_pending_ = true;
  layer_.mark_pending(*this);
  switch (state_) {
    case tcp_state::syn_received:
    case tcp_state::established:
      state_ = tcp_state::close_wait;
      break;
    case tcp_state::fin_wait_1:
      // Our FIN not yet acknowledged: simultaneous close (RFC 9293 3.6).
      state_ = tcp_state::closing;
      break;
    case tcp_state::fin_wait_2:
      enter_time_wait();
      break;
    case tcp_state::time_wait:
      layer_.loop().timers().arm_after(rtx_timer_, layer_.config().time_wait);
      break;
    default:
      break;
  }
}

void tcp_control_block::enter_time_wait() noexcept {
  state_ = tcp_state::time_wait;
  layer_.stats().tcp_time_wait.add();
  delack_timer_.cancel();
  keepalive_timer_.cancel();
  ooo_.clear();
  mode_ = rtx_mode::time_wait;
  layer_.loop().timers().arm_after(rtx_timer_, layer_.config().time_wait);
  layer_.time_wait_entered(*this);
}

void tcp_control_block::fail(close_reason why, int err) noexcept {
  if (conn_ == nullptr) return;
  connection* c = conn_;
  conn_ = nullptr;
  transport_loop::slot(*c).ptr = nullptr;
  layer_.loop().failed(*c, why, err);
}

void tcp_control_block::answer_invalid(const tcp_segment& s) noexcept {
  // A segment that ends at or below RCV.NXT, within a receive buffer of
  // it, is what a live peer sends (a retransmission whose ACK was lost, a
  // keepalive or window probe at RCV.NXT - 1, its FIN again in TIME-WAIT):
  // it is always answered. A forger guessing sequence numbers lands there
  // with a probability of about a buffer in 2^32.
  const std::uint32_t end = s.h.seq + s.seg_len();
  const std::uint32_t zone = std::min<std::uint32_t>(rcv_buf_, 1u << 20);
  const bool plausible = seq_le(end, rcv_nxt_) && seq_ge(s.h.seq, rcv_nxt_ - zone);
  const time_point now = layer_.now();
  if (!plausible) {
    if (now < last_invalid_ack_ + layer_.config().invalid_ack_interval) {
      layer_.stats().tcp_invalid_acks_limited.add();
      return;
    }
    last_invalid_ack_ = now;
  }
  need_ack();
}

bool tcp_control_block::frag_needed(std::uint32_t seq, std::uint32_t mtu, std::uint32_t quoted_len) noexcept {
  // RFC 5927 4.1: only a segment we have in flight is evidence; anything
  // else may be forged (or very old) and changes nothing.
  if (seq_lt(seq, snd_una_) || seq_ge(seq, snd_max_)) return false;
  if (mtu < 68 || mtu >= quoted_len) {
    // RFC 1191 section 5: a router that does not report its MTU (or a
    // report that makes no sense): the next plateau below what was sent.
    constexpr std::uint32_t plateaus[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
    mtu = 68;
    for (const std::uint32_t p : plateaus) {
      if (p < quoted_len) {
        mtu = p;
        break;
      }
    }
  }
  // IPv6 links carry at least 1280 bytes (RFC 8200 5): a smaller report
  // is no reason to go below it (RFC 8201 4).
  mtu = std::max(mtu, tuple_.remote_ip.is_v4() ? min_path_mtu : min_path_mtu_v6);
  const std::uint32_t mss = mtu - tcp_ip_overhead(tuple_.remote_ip);  // IP and TCP headers without options
  // An RFC 4821 probe in flight that did not fit has failed (resent below).
  const bool probe_failed = mtu_probe_mss_ != 0 && mss < mtu_probe_mss_;
  if (mss >= path_mss_ && !probe_failed) return true;  // valid, but nothing new
  if (probe_failed) {
    mtu_probe_mss_ = 0;
    next_mtu_probe_ = layer_.now() + layer_.config().mtu_probe_interval;
  }
  if (mss < path_mss_) {
    path_mss_ = mss;
    layer_.stats().tcp_pmtu_updates.add();
    cc_.set_mss(send_mss());
  }
  if (state_ == tcp_state::syn_sent || state_ == tcp_state::syn_received || flight() == 0) return true;
  // What is in flight did not fit: resend it now at the new size (the loss
  // is no congestion signal: the window stays, as in Linux's
  // tcp_simple_retransmit).
  layer_.stats().tcp_retransmits.add();
  in_recovery_ = false;
  dupacks_ = 0;
  sacked_.clear();
  rtt_timing_ = false;
  snd_nxt_ = snd_una_;
  output();
  if (!rtx_timer_.armed()) arm_rtx();
  return true;
}

void tcp_control_block::challenge_ack() noexcept {
  if (!layer_.may_challenge()) return;
  layer_.stats().tcp_challenge_acks.add();
  send_ack();
}

// ---- delivery to the application -----------------------------------------------------------

std::uint32_t tcp_control_block::receive_space() const noexcept {
  // What the buffer can still take beyond RCV.NXT: the receive buffer less
  // the in-order bytes not yet consumed (out-of-order bytes sit inside the
  // window already advertised).
  const std::size_t held = rx_.size() + (conn_ != nullptr ? conn_->input().size() : 0);
  return held >= rcv_buf_ ? 0 : static_cast<std::uint32_t>(rcv_buf_ - held);
}

void tcp_control_block::deliver() noexcept {
  if (conn_ == nullptr) {
    rx_.clear();
    return;
  }
  transport_loop& lp = layer_.loop();
  if (!rx_.empty()) {
    if (!lp.may_read(*conn_)) {
      // Paused, full or not open yet: the bytes wait here (the window
      // closes), and the loop calls read() once they may go.
      lp.set_read_pending(*conn_, true);
      return;
    }
    // Ask to be told when the application consumed, if the window is
    // getting small (for the window update).
    if (rx_.size() + conn_->input().size() >= rcv_buf_ / 2) lp.set_read_pending(*conn_, true);
    conn_->input().append(std::move(rx_));
    lp.data_arrived(*conn_);
    if (conn_ == nullptr) return;
  }
  if (fin_received_ && !fin_delivered_ && rx_.empty() &&
      conn_->current_state() != connection::state::connecting) {
    fin_delivered_ = true;
    lp.peer_shutdown(*conn_);
  }
}

void tcp_control_block::reader_ready() noexcept {
  deliver();
  if (conn_ == nullptr) return;
  // RFC 9293 3.8.6.2.2: announce the window once it can grow by at least
  // min(half the buffer, one segment) beyond what we advertised.
  const std::uint32_t space = receive_space();
  const std::uint32_t advertised = seq_gt(rcv_adv_, rcv_nxt_) ? rcv_adv_ - rcv_nxt_ : 0;
  if (space > advertised && space - advertised >= std::min<std::uint32_t>(rcv_buf_ / 2, our_mss_)) need_ack();
  layer_.loop().set_read_pending(*conn_, !rx_.empty() || space < rcv_buf_ / 2);
}

// ---- output -----------------------------------------------------------------------------------

std::uint32_t tcp_control_block::unsent() const noexcept {
  if (conn_ == nullptr) return 0;
  const std::size_t queued = conn_->output().size();
  const std::uint32_t sent = snd_nxt_ - snd_una_;
  return queued > sent ? static_cast<std::uint32_t>(queued - sent) : 0;
}

std::uint32_t tcp_control_block::pipe() const noexcept {
  // RFC 6675's pipe, simplified: the holes below the highest SACKed byte
  // count as lost unless retransmitted in this recovery; what was sent
  // above it is in flight.
  const std::uint32_t high = sacked_.high();
  const std::uint32_t above = seq_gt(snd_max_, high) ? snd_max_ - high : 0;
  const std::uint32_t resent_to = seq_min(seq_max(rtx_next_, snd_una_), high);
  return above + sacked_.hole_bytes(snd_una_, resent_to);
}

std::uint16_t tcp_control_block::window_field() noexcept {
  const std::uint32_t space = receive_space();
  std::uint32_t edge = rcv_nxt_ + space;
  // Receiver-side SWS avoidance (RFC 9293 3.8.6.2.2): a right edge moves
  // only by at least min(half the buffer, one segment)...
  const std::uint32_t step = std::min<std::uint32_t>(rcv_buf_ / 2, our_mss_);
  if (seq_gt(edge, rcv_adv_) && edge - rcv_adv_ < step && seq_ge(rcv_adv_, rcv_nxt_)) edge = rcv_adv_;
  // ...and never moves back (RFC 9293 3.8.6: shrinking the window is
  // strongly discouraged).
  if (seq_lt(edge, rcv_adv_)) edge = rcv_adv_;
  const std::uint32_t wnd = seq_gt(edge, rcv_nxt_) ? edge - rcv_nxt_ : 0;
  const std::uint32_t unit = std::uint32_t{1} << rcv_wscale_;
  // Rounded up where the edge must be kept, so scaling never shrinks it.
  std::uint32_t field = (wnd + unit - 1) >> rcv_wscale_;
  if (field > 65535) field = 65535;
  const std::uint32_t right = rcv_nxt_ + (field << rcv_wscale_);
  if (seq_gt(right, rcv_adv_)) rcv_adv_ = right;
  return static_cast<std::uint16_t>(field);
}

bool tcp_control_block::transmit(std::uint8_t flags, std::uint32_t seq, std::uint32_t len) noexcept {
  const tcp_config& cfg = layer_.config();
  tcp_header h;
  h.src_port = tuple_.local_port;
  h.dst_port = tuple_.remote_port;
  h.seq = seq;
  h.flags = flags;
  if (state_ != tcp_state::syn_sent) {
    h.flags |= tcp_ack;
    h.ack = rcv_nxt_;
  }
  tcp_out_options o;
  sack_block blocks[tcp_max_sack_blocks];
  if ((flags & tcp_syn) != 0) {
    const bool offer = state_ == tcp_state::syn_sent;
    h.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(rcv_buf_, 65535));
    if (!offer) rcv_adv_ = rcv_nxt_ + h.window;
    o.mss = our_mss_;
    o.wscale = (offer ? cfg.window_scaling : ws_ok_) ? rcv_wscale_ : -1;
    o.sack_permitted = offer ? cfg.sack : sack_ok_;
    o.timestamps = offer ? cfg.timestamps : ts_ok_;
  } else {
    h.window = window_field();
    o.timestamps = ts_ok_;
    if (sack_ok_ && (dsack_pending_ || !ooo_.empty())) {
      // RFC 2883 section 4: the D-SACK block first, then the usual ones.
      const std::size_t room = ts_ok_ ? 3 : 4;
      std::size_t n = 0;
      if (dsack_pending_) blocks[n++] = dsack_;
      n += ooo_.sack_blocks(blocks + n, room - n);
      o.sack_count = static_cast<std::uint8_t>(n);
      o.sacks = blocks;
    }
  }
  if (o.timestamps) {
    o.ts_val = layer_.ts_clock() + ts_offset_;
    o.ts_ecr = state_ == tcp_state::syn_sent ? 0 : ts_recent_;
  }
  // A segment carrying SACK blocks has less room for data.
  const std::uint32_t extra = o.sack_count != 0 ? static_cast<std::uint32_t>(tcp_options_len(o)) -
                                                      (o.timestamps ? ts_option_len : 0)
                                                : 0;
  const std::uint32_t seg_mss = tx_mss_ != 0 ? tx_mss_ : send_mss();
  if (len != 0 && len + extra > seg_mss) len = seg_mss > extra ? seg_mss - extra : 1;
  sent_len_ = len;
  const bool sent = layer_.send(tuple_, h, o, len != 0 && conn_ != nullptr ? &conn_->output() : nullptr,
                                seq - snd_una_, len);
  if (!sent) return false;
  if ((h.flags & tcp_ack) != 0) {
    last_ack_sent_ = rcv_nxt_;
    ack_pending_ = false;
    dsack_pending_ = false;
    ack_delayed_ = false;
    unacked_segments_ = 0;
    delack_timer_.cancel();
  }
  last_send_ = layer_.now();
  return true;
}

void tcp_control_block::note_duplicate(std::uint32_t seq, std::uint32_t len) noexcept {
  if (!sack_ok_ || len == 0) return;
  dsack_ = {seq, seq + len};
  dsack_pending_ = true;
}

void tcp_control_block::send_ack() noexcept {
  if (state_ == tcp_state::closed || state_ == tcp_state::syn_sent) {
    ack_pending_ = false;
    return;
  }
  // SND.MAX, not SND.NXT: after a timeout rewound SND.NXT the peer may hold
  // more than it, and an ACK numbered below its RCV.NXT would be dropped
  // as unacceptable (RFC 9293 3.10.7.4) together with what it acknowledges.
  (void)transmit(0, snd_max_, 0);
}

void tcp_control_block::send_reset() noexcept {
  if (state_ == tcp_state::closed || state_ == tcp_state::syn_sent) return;
  if (transmit(tcp_rst, snd_max_, 0)) layer_.stats().tcp_resets_out.add();
}

void tcp_control_block::need_ack() noexcept {
  ack_pending_ = true;
  layer_.mark_pending(*this);
}

bool tcp_control_block::send_new_data() noexcept {
  // One segment of new data within the send window and the congestion
  // window (RFC 5681 and RFC 9293 3.8.6.2.1's sender SWS avoidance).
  const std::uint32_t left = unsent();
  if (left == 0) {
    cwnd_limited_ = false;
    return false;
  }
  const std::uint32_t mss = send_mss();
  const std::uint32_t in_flight = snd_nxt_ - snd_una_;
  const std::uint32_t cwnd = in_recovery_ && sack_ok_ && !sacked_.empty() ? UINT32_MAX : cc_.cwnd();
  const std::uint32_t wnd = std::min(snd_wnd_, cwnd);
  const std::uint32_t usable = wnd > in_flight ? wnd - in_flight : 0;
  // RFC 4821: while a probe is out nothing follows it (its loss is then
  // told by the timeout alone, never taken for congestion).
  if (mtu_probe_mss_ != 0) return false;
  if (next_mtu_probe_ <= layer_.now() && send_mtu_probe(usable)) return true;
  std::uint32_t len = std::min({mss, left, usable});
  if (len == 0) {
    if (snd_wnd_ <= in_flight) {
      if (in_flight == 0) arm_persist();  // the peer's window is shut: probe it
    } else {
      cwnd_limited_ = true;
    }
    return false;
  }
  if (len < mss && len < left) {
    // Only a piece fits: send it if it is at least half the largest
    // window the peer ever offered; otherwise wait for the window to open
    // (or the persist timer to force it).
    if (len < max_snd_wnd_ / 2 && !sws_override_) {
      if (in_flight == 0) arm_persist();
      return false;
    }
  }
  if (len < mss && layer_.config().nagle && in_flight != 0) return false;  // Nagle (RFC 9293 3.7.4)
  if (in_flight == 0 && flight() == 0 && layer_.now() - last_send_ > rtt_.rto()) cc_.on_idle_restart();
  const bool resend = seq_lt(snd_nxt_, snd_max_);
  if (!transmit(len == left ? tcp_psh : 0, snd_nxt_, len)) return false;
  // What went, not what was asked for: SACK blocks may have shortened it
  // (advancing by len left holes in the stream the peer waited on until
  // our retransmission timer fired).
  len = sent_len_;
  if (resend) {
    layer_.stats().tcp_retransmits.add();
  } else if (!ts_ok_ && !rtt_timing_) {
    rtt_timing_ = true;  // time this segment (Karn: fresh data only)
    rtt_seq_ = snd_nxt_ + len;
    rtt_start_ = layer_.now();
  }
  snd_nxt_ += len;
  if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  cwnd_limited_ = snd_nxt_ - snd_una_ + mss > cwnd;
  if (mode_ != rtx_mode::retransmit || !rtx_timer_.armed()) arm_rtx();
  return true;
}

bool tcp_control_block::send_mtu_probe(std::uint32_t usable) noexcept {
  const std::uint32_t full = std::min<std::uint32_t>(peer_mss_, our_mss_);
  if (path_mss_ >= full) {
    next_mtu_probe_ = time_point::max();  // nothing left to find
    return false;
  }
  if (in_recovery_ || snd_nxt_ != snd_max_) return false;  // not while resending
  const std::uint32_t target = path_mss_ < 984 && full > 984 ? 984 : full;
  const std::uint32_t len = target - (ts_ok_ ? ts_option_len : 0);
  if (unsent() < len || usable < len) return false;  // wait for data and window
  tx_mss_ = target;
  const bool sent = transmit(0, snd_nxt_, len);
  tx_mss_ = 0;
  if (!sent) return false;
  layer_.stats().tcp_mtu_probes.add();
  mtu_probe_mss_ = target;
  snd_nxt_ += sent_len_;
  mtu_probe_end_ = snd_nxt_;
  if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
  if (mode_ != rtx_mode::retransmit || !rtx_timer_.armed()) arm_rtx();
  return true;
}

void tcp_control_block::output() noexcept {
  const bool data_state = state_ == tcp_state::established || state_ == tcp_state::close_wait;
  if (data_state && conn_ != nullptr) {
    if (in_recovery_ && sack_ok_ && !sacked_.empty()) {
      // SACK-based recovery (RFC 6675 5, simplified): while the pipe
      // leaves a segment of the window, resend the next hole, else new data.
      const std::uint32_t mss = send_mss();
      for (int guard = 0; guard < 1024; ++guard) {
        const std::uint32_t p = pipe();
        if (p + mss > cc_.cwnd() && p != 0) break;
        std::uint32_t hs = 0, hl = 0;
        if (sacked_.next_hole(seq_max(rtx_next_, snd_una_), &hs, &hl)) {
          const std::uint32_t len = std::min(hl, mss);
          if (!transmit(0, hs, len)) break;
          layer_.stats().tcp_retransmits.add();
          rtx_next_ = hs + sent_len_;
          if (!rtx_timer_.armed()) arm_rtx();
          continue;
        }
        if (!send_new_data()) break;
      }
    } else {
      if (in_recovery_ && seq_le(rtx_next_, snd_una_) && snd_nxt_ != snd_una_) {
        // NewReno: the segment at SND.UNA is lost (at recovery's start and
        // after each partial ACK, RFC 6582 3.2 steps 2 and 5).
        const std::uint32_t len = std::min(send_mss(), snd_max_ - snd_una_);
        if (transmit(0, snd_una_, len)) {
          layer_.stats().tcp_retransmits.add();
          rtx_next_ = snd_una_ + sent_len_;
        }
      }
      for (int guard = 0; guard < 1024 && send_new_data(); ++guard) {
      }
    }
  }
  // The FIN, once every byte before it is sent.
  if (fin_queued_ && snd_nxt_ == fin_seq_ && unsent() == 0 &&
      (state_ == tcp_state::fin_wait_1 || state_ == tcp_state::closing || state_ == tcp_state::last_ack)) {
    if (transmit(tcp_fin, fin_seq_, 0)) {
      snd_nxt_ = fin_seq_ + 1;
      if (seq_gt(snd_nxt_, snd_max_)) snd_max_ = snd_nxt_;
      if (mode_ != rtx_mode::retransmit || !rtx_timer_.armed()) arm_rtx();
    }
  }
  // A pure ACK still owed is not sent here: the end of the receive burst
  // (or the next poll) sends it, so an answer written meanwhile carries it.
}

bool tcp_control_block::data_will_carry_ack() const noexcept {
  if (conn_ == nullptr) return false;
  if (state_ != tcp_state::established && state_ != tcp_state::close_wait) return false;
  // The application closed or shut down with nothing left to acknowledge:
  // the flush phase sends the FIN now, and the ACK with it.
  if (!fin_queued_ && conn_->output().empty() && conn_->write_shut()) return true;
  if (unsent() == 0) return false;
  const std::uint32_t in_flight = snd_nxt_ - snd_una_;
  return std::min(snd_wnd_, cc_.cwnd()) > in_flight;
}

void tcp_control_block::flush() noexcept {
  output();
  if (conn_ != nullptr && unsent() != 0 && !write_blocked_) {
    // The windows are full: the loop stops scheduling this connection
    // until ACKs open them (flush_ready in input()).
    write_blocked_ = true;
    layer_.loop().write_blocked(*conn_);
  }
}

void tcp_control_block::send_fin() noexcept {
  if (fin_queued_) return;
  switch (state_) {
    case tcp_state::established:
      state_ = tcp_state::fin_wait_1;
      break;
    case tcp_state::close_wait:
      state_ = tcp_state::last_ack;
      break;
    default:
      return;  // not synchronized, or already closing
  }
  fin_queued_ = true;
  fin_seq_ = snd_una_ + static_cast<std::uint32_t>(conn_ != nullptr ? conn_->output().size() : 0);
  keepalive_timer_.cancel();
  output();
}

bool tcp_control_block::detach(bool abort) noexcept {
  const bool data_left = conn_ != nullptr && !conn_->output().empty();
  if (abort || data_left) {
    // abort(), or the loop gave up on output that was never acknowledged
    // (a shutdown's grace ran out): the peer must not take a clean end
    // for a complete one (RFC 9293 3.10.5).
    conn_ = nullptr;
    rx_.clear();
    send_reset();
    return true;
  }
  switch (state_) {
    case tcp_state::established:
    case tcp_state::close_wait:
      send_fin();  // the application closed without a shutdown: FIN now
      break;
    case tcp_state::syn_sent:
    case tcp_state::syn_received:
    case tcp_state::closed:
      conn_ = nullptr;
      return true;
    default:
      break;
  }
  conn_ = nullptr;
  rx_.clear();
  keepalive_timer_.cancel();
  if (state_ == tcp_state::fin_wait_2) {
    mode_ = rtx_mode::fin_wait_2;
    layer_.loop().timers().arm_after(rtx_timer_, layer_.config().fin_wait_2);
  }
  return false;
}

std::string tcp_control_block::describe() const {
  auto n = [](auto v) { return std::to_string(v); };
  return std::string(to_string(state_)) + " port " + n(tuple_.local_port) + "->" + n(tuple_.remote_port) +
         " una " + n(snd_una_) + " nxt " + n(snd_nxt_) + " max " + n(snd_max_) + " wnd " + n(snd_wnd_) + " cwnd " +
         n(cc_.cwnd()) + " ssthresh " + n(cc_.ssthresh()) + " unsent " + n(unsent()) + " queued " +
         n(conn_ != nullptr ? conn_->output().size() : 0) + " rcv_nxt " + n(rcv_nxt_) + " adv " + n(rcv_adv_ - rcv_nxt_) +
         " ooo " + n(ooo_.segments()) + " rx " + n(rx_.size()) + " recovery " + n(in_recovery_) + " dupacks " +
         n(dupacks_) + " sacked " + n(sacked_.sacked_bytes()) + " rto_ms " +
         n(std::chrono::duration_cast<std::chrono::milliseconds>(rtt_.rto()).count()) + " mode " +
         n(static_cast<int>(mode_)) + " timer " + n(rtx_timer_.armed()) + " retries " + n(retries_) + " fin " +
         n(fin_queued_) + " attached " + n(conn_ != nullptr);
}

// ---- timers -------------------------------------------------------------------------------------

void tcp_control_block::arm_rtx() noexcept {
  mode_ = rtx_mode::retransmit;
  layer_.loop().timers().arm_after(rtx_timer_, rtt_.rto());
}

void tcp_control_block::arm_persist() noexcept {
  if (mode_ == rtx_mode::persist && rtx_timer_.armed()) return;
  if (mode_ == rtx_mode::retransmit && rtx_timer_.armed() && flight() != 0) return;
  // persist_timeout counts from the moment the connection enters the
  // persist state (the window opening or the override timeout leave it for
  // another mode), or from the last data the peer took while in it.
  if (mode_ != rtx_mode::persist) persist_since_ = layer_.now();
  mode_ = rtx_mode::persist;
  // RFC 9293 3.8.6.1: probe with exponential back-off.
  if (persist_backoff_ == duration::zero()) persist_backoff_ = rtt_.rto();
  layer_.loop().timers().arm_after(rtx_timer_, persist_backoff_);
}

void tcp_control_block::arm_keepalive() noexcept {
  const duration idle = layer_.config().keepalive_idle;
  if (idle == duration::zero() || conn_ == nullptr) return;
  layer_.loop().timers().arm(keepalive_timer_, last_heard_ + idle);
}

void tcp_control_block::on_rtx_timer() noexcept {
  const tcp_config& cfg = layer_.config();
  inet_stats& st = layer_.stats();
  switch (mode_) {
    case rtx_mode::time_wait:
    case rtx_mode::fin_wait_2:
      state_ = tcp_state::closed;
      layer_.destroy(this);
      return;
    case rtx_mode::persist: {
      if (unsent() == 0 || snd_wnd_ > snd_nxt_ - snd_una_) {
        // RFC 9293 3.8.6.2.1 (d): the override timeout: what the window
        // takes goes now, however small.
        mode_ = rtx_mode::none;
        persist_backoff_ = duration::zero();
        sws_override_ = true;
        output();
        sws_override_ = false;
        return;
      }
      if (layer_.now() - persist_since_ >= cfg.persist_timeout) {
        // The window stayed shut too long: whoever holds it shut (a dead
        // reader, or a peer that means to keep us) does not keep us.
        st.tcp_persist_timeouts.add();
        fail(close_reason::io_error, ETIMEDOUT);
        send_reset();
        state_ = tcp_state::closed;
        layer_.destroy(this);
        return;
      }
      // A window probe: one byte beyond the window, not counted as sent
      // (SND.NXT stays); the peer's ACK tells its window again.
      st.tcp_zero_window_probes.add();
      if (transmit(0, snd_nxt_, 1) && seq_gt(snd_nxt_ + 1, probe_end_)) probe_end_ = snd_nxt_ + 1;
      persist_backoff_ = std::min(persist_backoff_ * 2, cfg.max_rto);
      layer_.loop().timers().arm_after(rtx_timer_, persist_backoff_);
      return;
    }
    case rtx_mode::none:
      return;
    case rtx_mode::retransmit:
      break;
  }
  if (mtu_probe_mss_ != 0 && flight() != 0) {
    // RFC 4821: the probe (last in its flight) was not acknowledged: the
    // path does not take that size. What is unacknowledged goes again at
    // the path MSS, with no back-off and no congestion response; the next
    // probe waits an interval.
    mtu_probe_mss_ = 0;
    next_mtu_probe_ = layer_.now() + cfg.mtu_probe_interval;
    rtt_timing_ = false;
    snd_nxt_ = snd_una_;
    output();
    if (!rtx_timer_.armed()) arm_rtx();
    return;
  }
  mtu_probe_mss_ = 0;
  ++retries_;
  if (state_ == tcp_state::syn_sent || state_ == tcp_state::syn_received) {
    const unsigned limit = state_ == tcp_state::syn_sent ? cfg.syn_retries : cfg.synack_retries;
    if (retries_ > limit) {
      if (state_ == tcp_state::syn_sent || !passive_) fail(close_reason::connect_timeout, ETIMEDOUT);
      state_ = tcp_state::closed;
      layer_.destroy(this);
      return;
    }
    st.tcp_timeouts.add();
    st.tcp_retransmits.add();
    rtt_.back_off();
    rtt_timing_ = false;
    (void)transmit(tcp_syn, iss_, 0);
    arm_rtx();
    return;
  }
  if (flight() == 0) {
    mode_ = rtx_mode::none;
    return;
  }
  if (retries_ > cfg.max_retransmits) {
    // RFC 9293 3.8.3: R2 reached; the connection is given up.
    fail(close_reason::io_error, ETIMEDOUT);
    send_reset();
    state_ = tcp_state::closed;
    layer_.destroy(this);
    return;
  }
  st.tcp_timeouts.add();
  if (retries_ >= 2 && cfg.mtu_blackhole_detection) {
    // RFC 4821 7.7: timeouts in a row may be a path that drops our DF
    // segments and filters the ICMP that would say so: step the path MSS
    // down (the loss may be plain loss: a smaller MSS costs little).
    constexpr std::uint32_t steps[] = {984, 512};  // MTUs 1024 and 552
    for (const std::uint32_t m : steps) {
      if (path_mss_ > m && std::min<std::uint32_t>(peer_mss_, our_mss_) > m) {
        path_mss_ = m;
        cc_.set_mss(send_mss());
        st.tcp_pmtu_blackholes.add();
        next_mtu_probe_ = layer_.now() + cfg.mtu_probe_interval;
        break;
      }
    }
  }
  // RFC 5681 3.1 / RFC 9438 4.8: on the first timeout of a series the
  // window's memory goes to ssthresh; every timeout resends from SND.UNA
  // with one segment.
  if (retries_ == 1) {
    cc_.on_timeout(flight(), layer_.now());
  } else {
    cc_.set_window(send_mss());
  }
  rtt_.back_off();
  in_recovery_ = false;
  dupacks_ = 0;
  recover_ = snd_max_;  // RFC 6582 3.2: no fast retransmit from the go-back-N's duplicates
  // RFC 2018 section 8: after a timeout the SACKed bits are not trusted.
  sacked_.clear();
  rtt_timing_ = false;
  snd_nxt_ = snd_una_;
  output();
  if (!rtx_timer_.armed()) arm_rtx();
}

void tcp_control_block::on_delack_timer() noexcept {
  if (ack_pending_ || ack_delayed_) send_ack();
}

void tcp_control_block::on_keepalive_timer() noexcept {
  const tcp_config& cfg = layer_.config();
  if (conn_ == nullptr || state_ != tcp_state::established || cfg.keepalive_idle == duration::zero()) return;
  const time_point now = layer_.now();
  if (keepalive_sent_ == 0 && now - last_heard_ < cfg.keepalive_idle) {
    arm_keepalive();  // heard from since: wait the rest
    return;
  }
  if (keepalive_sent_ >= cfg.keepalive_probes) {
    // RFC 9293 3.8.4: the peer is gone.
    fail(close_reason::io_error, ETIMEDOUT);
    send_reset();
    state_ = tcp_state::closed;
    layer_.destroy(this);
    return;
  }
  // A probe the peer must answer: one sequence number below SND.UNA.
  layer_.stats().tcp_keepalive_probes.add();
  ++keepalive_sent_;
  (void)transmit(0, snd_una_ - 1, 0);
  layer_.loop().timers().arm_after(keepalive_timer_, cfg.keepalive_interval);
}

}  // namespace sluice::inet
