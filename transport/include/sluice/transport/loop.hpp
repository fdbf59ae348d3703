#pragma once
// The transport contract, part 1 (part 2 is registry.hpp): what a transport
// implements (transport_backend), what it may call on a loop (transport_loop,
// the transport's view of a loop: the application's view, loop_base, does
// not show these), and loop<Transport>, a run-to-completion loop made
// concrete for one transport. Chosen once at startup (the transport registry
// instantiates it), so the hot path calls the transport directly: no virtual
// call per event or per packet.
//
// Applications never include this header; transports and the runtime do.

#include <unistd.h>

#include <concepts>
#include <cstddef>
#include <string_view>

#include "sluice/core/loop_base.hpp"

namespace sluice {

// A loop as its transport sees it: loop_base's application API plus the
// calls by which a transport reports what happened on its sockets or queues
// (documented in loop_base.hpp, "for transports"). Every loop is one (loop<T>
// derives from it), so a transport may turn the loop_base& of a connection
// into a transport_loop& with of().
class transport_loop : public loop_base {
 public:
  using loop_base::loop_base;

  // The transport's view of l (every loop is a loop<T>, hence one).
  [[nodiscard]] static transport_loop& of(loop_base& l) noexcept { return static_cast<transport_loop&>(l); }
  // The transport's view of the loop that owns c.
  [[nodiscard]] static transport_loop& of(connection& c) noexcept { return of(c.loop()); }
  // The transport's per-connection state (fd and readiness bits, or a TCP
  // control block).
  [[nodiscard]] static connection::transport_slot& slot(connection& c) noexcept { return c.slot_; }

  using loop_base::abort_requested;
  using loop_base::data_arrived;
  using loop_base::failed;
  using loop_base::fd_released_since_pause;
  using loop_base::flush_ready;
  using loop_base::may_read;
  using loop_base::new_connection;
  using loop_base::note_accept_paused;
  using loop_base::opened;
  using loop_base::peer_shutdown;
  using loop_base::read_later;
  using loop_base::read_pending;
  using loop_base::read_starved;
  using loop_base::set_read_pending;
  using loop_base::take_sleeping;
  using loop_base::track_listener;
  using loop_base::track_udp;
  using loop_base::udp_queued;
  using loop_base::write_blocked;
  using loop_base::wrote;
};

// What loop<T> needs from a transport backend. One instance per loop, owner
// core only. The data-path members are noexcept and report through the
// transport_loop API (data_arrived, wrote, failed, ...).
template <class T>
concept transport_backend = requires(T& t, connection& c, listener& l, udp_socket& u, const endpoint& ep,
                                     handler& h, datagram_handler& dh, duration d, const listen_options& lo,
                                     void* ctx) {
  { T::name } -> std::convertible_to<std::string_view>;
  // Waits up to d (zero: do not block; duration::max(): no limit) and
  // dispatches what it finds; returns the number of events handled.
  { t.poll(d) } noexcept -> std::same_as<std::size_t>;
  // Reads what c has now (the ready pass).
  { t.read(c) } noexcept;
  // Writes as much of c.output() as the transport takes.
  { t.flush(c) } noexcept;
  // Sends FIN.
  { t.shutdown_write(c) } noexcept;
  // Releases c's socket: reset if loop_base::abort_requested(c), else a clean close.
  { t.release(c) } noexcept;
  // Sends the queued datagrams of u.
  { t.flush_udp(u) } noexcept;
  // A connection was freed: listeners paused for lack of descriptors may resume.
  { t.fd_released() } noexcept;
  { t.wake() } noexcept;
  { t.listen(ep, h, lo) } -> std::same_as<result<listener*>>;
  { t.connect(ep, h, ctx) } -> std::same_as<result<connection_handle>>;
  { t.udp_bind(ep, dh) } -> std::same_as<result<udp_socket*>>;
  { t.close_listener(l) } noexcept;
  { t.close_udp(u) } noexcept;
};

// A loop made concrete for one transport (see the file comment): loop_base's
// control-plane virtuals forward to Transport, and run() calls it directly on
// the data path. The transport registry makes one per loop thread.
template <class Transport>
class loop final : public transport_loop {
 public:
  // A loop with these options and id whose transport is Transport(*this,
  // transport_args...).
  template <class... Args>
  explicit loop(const loop_options& opts, std::uint16_t id, Args&&... transport_args)
      : transport_loop(opts, id), transport_(static_cast<transport_loop&>(*this), std::forward<Args>(transport_args)...) {
    static_assert(transport_backend<Transport>);
  }
  ~loop() override { shutdown_now(); }

  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts = {}) override {
    return transport_.listen(at, h, opts);
  }
  result<connection_handle> connect(const endpoint& to, handler& h, void* context = nullptr) override {
    return transport_.connect(to, h, context);
  }
  // Binds a UDP socket to `at` through the transport; datagrams go to `h`.
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h) override {
    return transport_.udp_bind(at, h);
  }
  void close_listener(listener& l) noexcept override { transport_.close_listener(l); }
  void adopt(int fd, const endpoint& peer, handler& h) noexcept override {
    if constexpr (requires { transport_.adopt(fd, peer, h); }) {
      transport_.adopt(fd, peer, h);
    } else {
      (void)peer;
      (void)h;
      stats_.accept_rejected.add();
      ::close(fd);
    }
  }
  // Closes s through the transport (see loop_base::close_udp).
  void close_udp(udp_socket& s) noexcept override { transport_.close_udp(s); }
  // Transport::name.
  [[nodiscard]] std::string_view transport_name() const noexcept override { return Transport::name; }
  void transport_metrics(const std::string& prefix, metric_list& out) const override {
    if constexpr (requires { transport_.metrics(prefix, out); }) transport_.metrics(prefix, out);
  }
  void wake() noexcept override { transport_.wake(); }
  // The transport instance of this loop (tests and transport-specific tools).
  [[nodiscard]] Transport& transport() noexcept { return transport_; }

  // One iteration, in this order (DESIGN.md, "The loop"):
  //   1. drain the inbox (posted work from other threads)
  //   2. poll the transport and dispatch its events: accepts, reads (on_data),
  //      writability, errors. The poll blocks only when nothing is pending,
  //      and then only until the next timer is due (never with --busy-poll).
  //   3. read again the connections whose input was cut short (read budget,
  //      resumed readers)
  //   4. advance timers: deadlines and application timers
  //   5. flush connections with pending output (one writev each) and UDP queues
  //      (with flush_each_event, or after connection::expedite(), also right
  //      after the event of step 2 that asked)
  //   6. free closed connections: release the socket, on_close, slot back
  //   7. leave once stopped and empty
  void run() override {
    refresh_now();
    last_work_ = now();
    while (!finished()) iterate(false);
  }

  // One iteration whose poll never blocks: for tests driving a loop step by
  // step (with a manual clock) and for embedding a loop in another one.
  void run_once() { iterate(true); }

 private:
  void iterate(bool never_block) {
    bool work = drain_inbox();
    wake_waiting_readers();
    duration timeout = duration::zero();
    bool may_sleep = !never_block && !work && !options().busy_poll && now() - last_work_ >= options().spin_budget;
    if (may_sleep) {
      // Announce the sleep, then look again: a poster either sees the flag
      // and wakes us, or we see its message in poll_timeout().
      begin_sleep();
      timeout = poll_timeout();
      if (timeout != duration::zero()) stats_.polls_blocking.add();
    }
    time_point before = now();
    std::size_t events = poll(timeout);
    end_sleep();
    refresh_now();
    if (events == 0 && timeout != duration::zero()) {
      stats_.idle_ns.add(static_cast<std::uint64_t>((now() - before).count()));
    }
    stats_.events.add(events);

    std::size_t ready = ready_list().size();
    for (std::size_t i = 0; i < ready && !ready_list().empty(); ++i) {
      connection& c = ready_list().front();
      ready_list().pop_front();
      transport_.read(c);
    }
    advance_timers();
    flush_phase();
    std::size_t closed = close_phase();

    stats_.iterations.add();
    if (work || events != 0 || ready != 0 || closed != 0) last_work_ = now();
  }

  // With flush_each_event, output leaves as soon as the handler of each event
  // returns (where the transport offers the hook), not after every event of
  // the batch has been read: the first connection's reply no longer waits
  // for the reads of the others. Same number of writes per connection.
  // A handler that called connection::expedite() has its output flushed
  // the same way, once, whatever flush_each_event says.
  std::size_t poll(duration timeout) noexcept {
    if constexpr (requires { transport_.poll(timeout, [] {}); }) {
      return transport_.poll(timeout, [this]() noexcept {
        const bool now = take_expedite() || options().flush_each_event;
        if (now && (!flush_list().empty() || !udp_flush_list().empty())) flush_phase();
      });
    }
    return transport_.poll(timeout);
  }

  void flush_phase() noexcept {
    (void)take_expedite();  // everything scheduled goes now
    std::size_t n = flush_list().size();
    for (std::size_t i = 0; i < n && !flush_list().empty(); ++i) {
      connection& c = flush_list().front();
      flush_list().pop_front();
      if (c.current_state() == connection::state::closed) continue;
      if (!c.output().empty()) transport_.flush(c);
      if (after_flush(c)) {
        transport_.shutdown_write(c);
        shut_sent(c);
      }
    }
    auto& udp = udp_flush_list();
    for (udp_socket* s : udp) {
      s->io.in_flush_list = false;
      transport_.flush_udp(*s);
    }
    udp.clear();
    // A completion transport queues its sends during the phase and hands
    // them to the kernel together here (one system call for all of them).
    if constexpr (requires { transport_.flushed(); }) transport_.flushed();
  }

  std::size_t close_phase() noexcept {
    std::size_t n = 0;
    while (!close_list().empty()) {
      connection& c = close_list().front();
      close_list().pop_front();
      transport_.release(c);
      finish_close(c);
      ++n;
    }
    if (n != 0) transport_.fd_released();
    return n;
  }

  // Used by the destructor: whatever is left is closed without ceremony.
  void shutdown_now() noexcept {
    stop(duration::zero());
    abandon_all();
    close_phase();
  }

  Transport transport_;
  time_point last_work_{};
};

}  // namespace sluice
