#pragma once
// The part of sluice-bench every mode shares: one worker per loop drives its
// share of the connections; the mode's Protocol (protocol.hpp) says what a
// message is and how its reply is recognised and checked.
//
// Closed loop (default): every connection keeps --pipeline messages in
// flight and sends the next as soon as a reply comes back. Open loop
// (--rate): messages are due at fixed intended times and latency is measured
// from the intended time, so a stalled server cannot hide its stalls (no
// coordinated omission); at most --pipeline are in flight per connection,
// the rest wait and their wait counts.
//
// A warm-up runs before measuring; --messages stops after a fixed count
// instead of a duration. A wrong reply is a mismatch (counted, first one
// described); a reply that cannot be framed closes that connection.
//
// Each connection's progress is a session (worker::conn) that the worker's
// sessions<> handler makes at connect and destroys after on_close; the
// worker keeps only handles (for the open-loop tick) and totals.
//
// --tls (Tls = true): the same sessions run under tls::client_sessions, one
// client context per worker; its counters give the handshakes, resumptions
// and handshake failures of the measured window. --conn-messages=N closes
// each connection after N replies and opens a new one in its place (a new
// handshake each time: handshakes/s).
//
// Owner core only (the loop that runs it); progress() from any thread.

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "protocol.hpp"
#include "settings.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/histogram.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/session.hpp"
#include "timeline.hpp"
#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include "sluice/tls/server_sessions.hpp"
#endif

namespace sluice::bench {

// Results of one worker, read once its loop has ended.
struct worker_results {
  histogram latency;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  double window_seconds = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t closed_early = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t protocol_errors = 0;
  std::string first_error;
  std::unique_ptr<bench::timeline> timeline;
  // Connections opened in the measured window (TCP, or TLS handshakes done).
  std::uint64_t handshakes = 0;
  std::uint64_t resumed = 0;             // of which resumed a session (--tls)
  std::uint64_t handshake_failures = 0;  // --tls: handshakes that failed, in the window
};

template <class Protocol, bool Tls = false>
class worker {
  // One connection: its place in the run and its progress. Made when its
  // connect starts (begin() says which id it is), so on_close reaches it
  // even if it never opens.
  struct conn {
    conn(worker* w, connection&) noexcept : owner(w), id(w->next_id_), quota(w->quota_of(id)), done(quota == 0) {}
    void on_open(connection& c) noexcept { owner->opened(c, *this); }
    void on_data(connection& c) noexcept { owner->replied(c, *this); }
    void on_close(connection& c, close_reason why) noexcept { owner->closed(c, *this, why); }

    worker* owner;
    std::uint32_t id = 0;
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t quota = UINT64_MAX;  // messages this connection sends in all
    bool opened = false;
    bool broken = false;  // closed by us: its replies could not be framed
    bool recycle = false;  // closed by us after --conn-messages: a new one follows
    bool done = false;    // reached its quota, or gone
    typename Protocol::conn_state proto{};
  };

 public:
#if SLUICE_HAVE_TLS
  using conns_type = std::conditional_t<Tls, tls::client_sessions<conn, worker*>, sessions<conn, worker*>>;
#else
  using conns_type = sessions<conn, worker*>;
#endif

  // A worker for `count` connections from id `first`; with Tls, `tls_ctx`
  // is its client context (moved in).
  template <class... TlsContext>
  worker(loop_base& l, const settings& s, unsigned first, unsigned count, TlsContext&&... tls_ctx)
      : loop_(l),
        s_(s),
        proto_(s),
        first_(first),
        handles_(count),
        send_times_(static_cast<std::size_t>(count) * s.pipeline) {
    conns_.emplace(std::forward<TlsContext>(tls_ctx)..., this);
#if SLUICE_HAVE_TLS
    if constexpr (Tls) {
      conns_->context().server_name = s.tls_sni;
      conns_->context().resume = s.tls_resume;
    }
#endif
    // Connections with no message to send are done before they start.
    for (unsigned i = 0; i < count; ++i) done_ += quota_of(first + i) == 0 ? 1 : 0;
    if (!s.plot.empty()) {
      const std::size_t planned = s.messages != 0 ? 1 : static_cast<std::size_t>(s.run_time / s.plot_interval) + 2;
      res_.timeline = std::make_unique<bench::timeline>(s.measure_origin, s.plot_interval, planned);
    }
    warmup_timer_.bind<&worker::warmup_done>(this);
    end_timer_.bind<&worker::finish>(this);
    tick_timer_.bind<&worker::tick>(this);
  }

  result<void> begin() {
    start_ = loop_.now();
    for (std::size_t i = 0; i < handles_.size(); ++i) {
      next_id_ = first_ + static_cast<std::uint32_t>(i);
      auto h = conns_->connect(loop_, s_.target);
      if (!h) return h.err();
      handles_[i] = *h;
    }
    loop_.timers().arm(warmup_timer_, start_ + s_.warmup);
    if (s_.messages == 0) loop_.timers().arm(end_timer_, start_ + s_.warmup + s_.run_time);
    if (done_ == handles_.size()) finish();
    if (s_.rate > 0) {
      per_conn_interval_ = duration(static_cast<std::int64_t>(1e9 * s_.connections / s_.rate));
      loop_.timers().arm_after(tick_timer_, tick_);
    }
    return {};
  }

  // Any thread: replies so far, for the progress line.
  [[nodiscard]] std::uint64_t progress() const noexcept { return progress_.load(std::memory_order_relaxed); }
  // After the loop has ended.
  [[nodiscard]] worker_results& results() noexcept {
    res_.window_seconds = std::chrono::duration<double>(measure_end_ - measure_start_).count();
    return res_;
  }

 private:
  // An even share of --messages (the first ones take the remainder).
  [[nodiscard]] std::uint64_t quota_of(std::uint32_t id) const noexcept {
    if (s_.messages == 0) return UINT64_MAX;
    return s_.messages / s_.connections + (id < s_.messages % s_.connections ? 1 : 0);
  }

  void opened(connection& c, conn& st) noexcept {
    st.opened = true;
    if (measuring_ && !Tls) ++res_.handshakes;
    proto_.open(st.proto);
    opened_at_ = std::max(opened_at_, loop_.now());
    if (s_.rate > 0) return;  // the tick sends on schedule
    for (unsigned i = 0; i < s_.pipeline; ++i) send_one(c, st, steady_now());
  }

  void replied(connection& c, conn& st) noexcept {
    const time_point arrived = steady_now();
    buffer_chain& in = c.input();
    for (;;) {
      const reply_result r = proto_.receive(in, st.proto, st.id, st.received, why_);
      if (measuring_) res_.bytes += r.bytes;
      if (r.kind == reply::none) break;
      if (r.kind == reply::broken) {
        ++res_.protocol_errors;
        note_error("connection " + std::to_string(st.id) + ": " + why_);
        st.broken = true;
        c.close(close_reason::protocol_error);
        mark_done(st);
        return;
      }
      if (r.kind == reply::mismatch) {
        ++res_.mismatches;
        note_error("connection " + std::to_string(st.id) + " message " + std::to_string(st.received) + ": " + why_);
      }
      const time_point sent_at = send_times_[slot(st, st.received)];
      ++st.received;
      progress_.fetch_add(1, std::memory_order_relaxed);
      if (measuring_) {
        const auto latency = static_cast<std::uint64_t>((arrived - sent_at).count());
        res_.latency.record(latency);
        if (res_.timeline) res_.timeline->record(arrived, latency);
        ++res_.messages;
      }
      if (st.received == st.quota) {
        mark_done(st);
        return;
      }
      if (s_.conn_messages != 0 && st.received == s_.conn_messages && !stopping_) {
        st.recycle = true;
        c.close(close_reason::local);
        return;
      }
      if (s_.rate == 0 && !stopping_) send_one(c, st, arrived);
    }
    if (s_.rate > 0) send_due(c, st);
  }

  void closed(connection& c, conn& st, close_reason why) noexcept {
    if (stopping_ || st.broken) return;
    if (st.recycle) {
      reconnect(st.id);
      return;
    }
    std::string what;
    if (!st.opened) {
      ++res_.connect_failures;
      what = "cannot connect to " + s_.target.to_string() + ": " + std::string(to_string(why));
    } else {
      ++res_.closed_early;
      what = "connection " + std::to_string(st.id) + " closed by " + std::string(to_string(why));
    }
    if (c.error() != 0) what += " (" + std::string(std::strerror(c.error())) + ")";
    note_error(what);
    // Every connection finished or failed: nothing more to measure.
    mark_done(st);
  }

  // --conn-messages: a new connection in place of connection `id`.
  void reconnect(std::uint32_t id) noexcept {
    next_id_ = id;
    auto h = conns_->connect(loop_, s_.target);
    if (h) {
      handles_[id - first_] = *h;
      return;
    }
    ++res_.connect_failures;
    note_error("cannot connect to " + s_.target.to_string() + ": " + h.err().message);
    if (++done_ == handles_.size()) finish();
  }

  std::size_t slot(const conn& st, std::uint64_t seq) const {
    return static_cast<std::size_t>(st.id - first_) * s_.pipeline + seq % s_.pipeline;
  }

  void note_error(const std::string& what) {
    if (res_.first_error.empty()) res_.first_error = what;
  }

  void mark_done(conn& st) noexcept {
    if (st.done) return;
    st.done = true;
    if (++done_ == handles_.size()) finish();
  }

  void send_one(connection& c, conn& st, time_point intended) noexcept {
    if (st.sent >= st.quota) return;
    send_times_[slot(st, st.sent)] = intended;
    if (!proto_.send(c, st.proto, st.id, st.sent)) return;
    ++st.sent;
  }

  // Open loop: send every message whose intended time has come, up to the
  // in-flight cap; the rest wait, their latency still counted from their
  // intended time.
  void send_due(connection& c, conn& st) noexcept {
    if (stopping_) return;
    const time_point now = steady_now();
    while (st.sent - st.received < s_.pipeline) {
      const time_point intended = opened_at_ + per_conn_interval_ * static_cast<std::int64_t>(st.sent);
      if (intended > now) break;
      const std::uint64_t before = st.sent;
      send_one(c, st, intended);
      if (st.sent == before) break;  // quota reached, or the output refused it
    }
  }

  void tick() noexcept {
    for (const connection_handle& h : handles_) {
      connection* c = loop_.get(h);
      if (c == nullptr || !c->is_open()) continue;
      if constexpr (Tls) {
        if (auto* ts = conns_->find(*c)) ts->with_plaintext(*c, [&] { send_due(*c, ts->inner()); });
      } else {
        if (conn* st = conns_->find(*c)) send_due(*c, *st);
      }
    }
    if (!stopping_) loop_.timers().arm_after(tick_timer_, tick_);
  }

  void warmup_done() noexcept {
    measuring_ = true;
    res_.latency.reset();
    res_.messages = 0;
    res_.bytes = 0;
    res_.handshakes = 0;
    measure_start_ = steady_now();
#if SLUICE_HAVE_TLS
    if constexpr (Tls) tls_at_start_ = conns_->context().tls.stats();
#endif
  }

  void finish() noexcept {
    if (stopping_) return;
    measure_end_ = steady_now();
    if (!measuring_) measure_start_ = measure_end_;
#if SLUICE_HAVE_TLS
    if constexpr (Tls) {
      // --messages has no warm-up: the window is the whole run.
      const tls::stats& now = conns_->context().tls.stats();
      const tls::stats from = measuring_ || s_.messages != 0 ? tls_at_start_ : now;
      res_.handshakes = now.handshakes - from.handshakes;
      res_.resumed = now.resumed - from.resumed;
      res_.handshake_failures = now.handshake_failures - from.handshake_failures;
    }
#endif
    measuring_ = false;
    stopping_ = true;
    tick_timer_.cancel();
    warmup_timer_.cancel();
    end_timer_.cancel();
    loop_.stop(duration::zero());
  }

  loop_base& loop_;
  const settings& s_;
  Protocol proto_;
  std::uint32_t first_;  // the id of this worker's first connection
  std::uint32_t next_id_ = 0;  // the id of the connection being started
  std::vector<connection_handle> handles_;  // by id - first_
  std::vector<time_point> send_times_;
  worker_results res_;
  std::string why_;  // what the protocol found wrong with the last reply
  std::size_t done_ = 0;
  std::atomic<std::uint64_t> progress_{0};
  bool measuring_ = false;
  bool stopping_ = false;
  time_point start_{};
  time_point opened_at_{};
  time_point measure_start_{};
  time_point measure_end_{};
  duration per_conn_interval_{};
  duration tick_ = std::chrono::microseconds(50);
  timer warmup_timer_;
  timer end_timer_;
  timer tick_timer_;
#if SLUICE_HAVE_TLS
  tls::stats tls_at_start_{};  // the client context's counters when measuring began
#endif
  std::optional<conns_type> conns_;  // the connections (last: they reach the members above)
};

}  // namespace sluice::bench
