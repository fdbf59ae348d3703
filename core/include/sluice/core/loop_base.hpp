#pragma once
// The transport-independent part of a run-to-completion loop: connection
// slots, buffer pool, timer wheel, the lists the phases walk, and the rules of a
// connection's life (limits, deadlines, backpressure, two-phase close). The
// transport-specific part is loop<Transport> (loop.hpp), which derives from this
// and implements the control-plane virtuals; the data path calls no virtual
// function except the application's handler.
//
// Ownership: a loop and everything it holds belong to the thread that runs it
// (its "owner core"). Methods are owner core only unless marked "any thread".

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/connection_table.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/listener.hpp"
#include "sluice/core/loop_options.hpp"
#include "sluice/core/mail_hub.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/task.hpp"
#include "sluice/base/result.hpp"
#include "sluice/core/segment_pool.hpp"
#include "sluice/core/stats.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice/core/udp_socket.hpp"

namespace sluice {

// One event loop: what a loop is to the application (listen, connect, timers,
// stop, messaging to other loops) and to its transport (the "for transports"
// calls). Made for one transport as loop<Transport> (loop.hpp), by the runtime
// or a test, and run on one thread; everything it holds is owner core only
// unless marked "any thread".
class loop_base {
 public:
  // A loop with the limits and clock of `opts`; `id` is its index in the
  // runtime (0 when alone), stamped into connection handles. Allocates its
  // tables; opens nothing.
  loop_base(const loop_options& opts, std::uint16_t id);
  loop_base(const loop_base&) = delete;
  loop_base& operator=(const loop_base&) = delete;
  // Asserts (debug builds) that no connection, segment or timer is left.
  virtual ~loop_base();

  // ---- control plane: implemented by the transport's loop<T> ----------------
  // Listens on `at`; accepted connections get `h`.
  virtual result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts = {}) = 0;
  // Starts connecting to `to`; `h` gets on_open when established, or only
  // on_close (connect_refused, connect_timeout, unreachable, ...) if not.
  virtual result<connection_handle> connect(const endpoint& to, handler& h, void* context = nullptr) = 0;
  // Binds a UDP socket to `at`; datagrams go to `h`. The socket is open until
  // close_udp() or the loop's end.
  virtual result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h) = 0;
  // Stops accepting on l (the listener stays allocated until the loop dies).
  virtual void close_listener(listener& l) noexcept = 0;
  // Serves a socket accepted elsewhere (kernel transports; the runtime's
  // single-acceptor balance policies). Closes fd if this transport cannot.
  virtual void adopt(int fd, const endpoint& peer, handler& h) noexcept = 0;
  // Closes s's socket: no more datagrams arrive. s stays allocated (the
  // pointer valid) until the loop dies.
  virtual void close_udp(udp_socket& s) noexcept = 0;
  // The transport's name, as the registry lists it ("epoll", "dpdk", ...).
  [[nodiscard]] virtual std::string_view transport_name() const noexcept = 0;
  // Appends the transport's own counters (the user-space stack's drops per
  // reason, polling work and idle time, queue statistics), each name prefixed
  // with `prefix`. Any thread (counters are relaxed atomics); control plane.
  virtual void transport_metrics(const std::string& prefix, metric_list& out) const {
    (void)prefix;
    (void)out;
  }
  // Runs iterations until the loop has stopped and every connection is gone.
  virtual void run() = 0;
  // Interrupts a blocking poll. Any thread.
  virtual void wake() noexcept = 0;

  // ---- application API (owner core) -------------------------------------------
  // The live connection `h` names, or nullptr if it has closed (or h never
  // named one on this loop).
  [[nodiscard]] connection* get(connection_handle h) const noexcept { return table_.get(h); }
  // The time at the start of this iteration's dispatch.
  [[nodiscard]] time_point now() const noexcept { return now_; }
  // This loop's timers: application timers are armed here (timer_wheel::arm).
  [[nodiscard]] timer_wheel& timers() noexcept { return timers_; }
  // This loop's buffer memory: the segments every connection's input and output
  // use.
  [[nodiscard]] segment_pool& pool() noexcept { return pool_; }
  // The options the loop was made with.
  [[nodiscard]] const loop_options& options() const noexcept { return opts_; }
  // This loop's index in its runtime (0 when alone): the `target` of send_to
  // from other loops.
  [[nodiscard]] std::uint16_t id() const noexcept { return id_; }
  // Connections open or closing (not yet freed).
  [[nodiscard]] std::size_t connection_count() const noexcept { return table_.live(); }
  // The listeners this loop has opened (closed ones included).
  [[nodiscard]] const std::vector<std::unique_ptr<listener>>& listeners() const noexcept { return listeners_; }
  // Counters; any thread may read them.
  [[nodiscard]] loop_stats& stats() noexcept { return stats_; }
  // Counters, read-only. Any thread.
  [[nodiscard]] const loop_stats& stats() const noexcept { return stats_; }
  // A chain that allocates from this loop's pool.
  [[nodiscard]] buffer_chain make_chain() noexcept { return buffer_chain(&pool_); }

  // Graceful stop: close every listener and UDP socket now, let connections
  // finish for `grace`, then close the rest (reason shutdown). run() returns
  // when none is left. Owner core.
  void stop(duration grace) noexcept;
  // The same, from any thread.
  void request_stop(duration grace);
  // The same, from a signal handler: async-signal-safe (an atomic store and,
  // if the loop sleeps, the transport's wakeup write); the loop's next
  // iteration calls stop(grace). A runtime whose only loop runs on the
  // caller's thread stops it this way on SIGINT/SIGTERM.
  void request_stop_from_signal(duration grace) noexcept;
  // stop() has begun: listeners are closed and the grace period runs.
  [[nodiscard]] bool stopping() const noexcept { return stopping_; }
  // Runs fn when stop() begins, after the listeners closed: where an
  // application closes what only it knows to be idle (keep-alive connections
  // between requests, pooled upstream connections, its own timers) instead of
  // letting them wait for the grace period. Owner core; control plane.
  void on_stop(std::function<void()> fn) { stop_hooks_.push_back(std::move(fn)); }
  // Runs fn on this loop's thread at the start of a coming iteration. Any
  // thread; control plane (may allocate). Loops talk to each other through
  // send_to/submit_to instead.
  void post(std::function<void()> fn);

  // ---- cross-core messaging (owner core) --------------------------------------
  // Runs t on loop `target` of the same runtime at the start of one of its
  // next iterations. Messages from one loop to another run in the order sent.
  // Never lost: when the ring is full they wait here, in order, and go as
  // space frees. A sleeping target is woken; a busy one is not disturbed.
  void send_to(unsigned target, task t) noexcept;
  // Runs fn(target_loop) there, then then(this_loop, result) back here.
  template <class F, class Then>
  void submit_to(unsigned target, F fn, Then then) noexcept {
    const unsigned from = id_;
    send_to(target, task([fn = std::move(fn), then = std::move(then), from](loop_base& there) mutable {
      if constexpr (std::is_void_v<decltype(fn(there))>) {
        fn(there);
        there.send_to(from, task([then = std::move(then)](loop_base& back) mutable { then(back); }));
      } else {
        auto r = fn(there);
        there.send_to(from, task([then = std::move(then), r = std::move(r)](loop_base& back) mutable {
          then(back, std::move(r));
        }));
      }
    }));
  }
  // The number of loops reachable by send_to (1 without a runtime).
  [[nodiscard]] unsigned peers() const noexcept { return hub_ != nullptr ? hub_->size() : 1; }
  // Joins the runtime's mailboxes (before run(); the runtime calls it).
  void attach_mail(mail_hub* hub);

  // Only transports reach what follows (through transport_loop, in the
  // transport contract: transport/include/sluice/transport/loop.hpp); an
  // application's view of a loop ends here.
 protected:
  // ---- for transports (owner core) -------------------------------------------------
  // A fresh connection slot for a new socket, or nullptr at max_connections.
  [[nodiscard]] connection* new_connection(handler& h, const endpoint& peer, bool outgoing) noexcept;
  // Established: arms deadlines, calls on_open.
  void opened(connection& c) noexcept;
  // Bytes were appended to c.input(): calls on_data and applies the input limit.
  void data_arrived(connection& c) noexcept;
  // The peer sent FIN.
  void peer_shutdown(connection& c) noexcept;
  // n bytes of c.output() reached the transport: drops them, fires on_writable.
  void wrote(connection& c, std::size_t n) noexcept;
  // The transport found c finished (reset, error, refused): it is closed now.
  void failed(connection& c, close_reason why, int err) noexcept;
  // May the transport read from c now? If not, c is remembered and read again
  // when the reason goes away (the transport keeps read_pending).
  [[nodiscard]] bool may_read(connection& c) noexcept;
  // The transport could not get a buffer segment for c: read it again once
  // segments come back (never spins while the pool stays exhausted).
  void read_starved(connection& c) noexcept;
  // Marks c as possibly holding unread bytes, to be read in this iteration's
  // ready pass (edge-triggered transports after a read budget ran out).
  void read_later(connection& c) noexcept;
  // Sets or clears c's "may hold unread bytes" flag (edge-triggered
  // transports).
  void set_read_pending(connection& c, bool v) noexcept { c.flags_.read_pending = v; }
  // Whether c may hold unread bytes (see set_read_pending).
  [[nodiscard]] static bool read_pending(const connection& c) noexcept { return c.flags_.read_pending; }
  // Whether c was aborted (send RST rather than FIN).
  [[nodiscard]] static bool abort_requested(const connection& c) noexcept { return c.flags_.abort; }
  // The transport could not write everything; it will call flush_ready() when
  // the socket is writable again.
  void write_blocked(connection& c) noexcept;
  // The socket of c became writable again after write_blocked(): flushes what
  // is pending.
  void flush_ready(connection& c) noexcept;
  // A connection was freed: a paused listener may accept again.
  [[nodiscard]] bool fd_released_since_pause() const noexcept { return fd_released_; }
  // The listener paused accepting (out of descriptors);
  // fd_released_since_pause() turns true when a connection frees one.
  void note_accept_paused() noexcept { fd_released_ = false; }
  // Keeps a listener the transport made, for stop() and for the loop's
  // lifetime.
  void track_listener(std::unique_ptr<listener> l);
  // Keeps a UDP socket the transport made, for stop() and for the loop's
  // lifetime.
  void track_udp(std::unique_ptr<udp_socket> s);
  // s has datagrams queued for sending: it is flushed in this iteration's flush
  // phase.
  void udp_queued(udp_socket& s) noexcept;
  // Any thread; true if the owner may be blocked (then call wake()).
  [[nodiscard]] bool take_sleeping() noexcept { return sleeping_.exchange(false, std::memory_order_acq_rel); }

  // ---- phases, called by loop<T>::run() --------------------------------------
  // Runs what other threads and loops sent (post, send_to) and a stop asked
  // from a signal handler; true if it ran anything.
  [[nodiscard]] bool drain_inbox();
  // Work that must not wait for a blocking poll.
  [[nodiscard]] bool has_pending_work() const noexcept;
  // How long the next poll may block (zero when there is pending work).
  [[nodiscard]] duration poll_timeout() noexcept;
  // Announces a sleep; the fence orders it before the check for mail that
  // follows (senders fence between their push and their look at the flag).
  void begin_sleep() noexcept;
  // Ends the sleep announced by begin_sleep(), after the poll returned.
  void end_sleep() noexcept { sleeping_.store(false, std::memory_order_relaxed); }
  // Reads the loop's clock into now().
  void refresh_now() noexcept { now_ = opts_.clock.now(); }
  // Connections whose read was deferred and may go on now.
  void wake_waiting_readers() noexcept;
  // Fires the timers due at now() (counted in timers_fired).
  void advance_timers() noexcept;
  // Returns true once the loop has stopped and is empty.
  [[nodiscard]] bool finished() noexcept;

  // Flush phase helpers: what to do with c given what the transport did.
  [[nodiscard]] connection::flush_list& flush_list() noexcept { return flush_list_; }
  // Connections to read again in this iteration (read budget spent, reading
  // resumed).
  [[nodiscard]] connection::ready_list& ready_list() noexcept { return ready_list_; }
  // Connections closed in this iteration, to free in the close phase.
  [[nodiscard]] connection::close_list& close_list() noexcept { return close_list_; }
  // UDP sockets with datagrams queued for sending.
  [[nodiscard]] std::vector<udp_socket*>& udp_flush_list() noexcept { return udp_flush_; }
  // A handler asked for its output to leave once its event is handled
  // (connection::expedite); reading clears the request.
  [[nodiscard]] bool take_expedite() noexcept {
    const bool e = expedite_;
    expedite_ = false;
    return e;
  }
  // After the transport flushed c: FIN once drained if asked, finish a
  // graceful close, arm the write deadline if output is stuck.
  // Returns true if the transport should send FIN now.
  [[nodiscard]] bool after_flush(connection& c) noexcept;
  // FIN went out for c: a closing connection starts its linger deadline; one
  // whose peer already sent FIN closes.
  void shut_sent(connection& c) noexcept;
  // Close phase: on_close, then the slot goes back (the transport has
  // released the socket before).
  void finish_close(connection& c) noexcept;
  // Marks every live connection closed (reason shutdown), for teardown.
  void abandon_all() noexcept { close_all(close_reason::shutdown); }

  // The loop's counters, written by the loop and its transport.
  loop_stats stats_;

 private:
  friend class connection;
  friend class udp_socket;
  void mark_closed(connection& c, close_reason why) noexcept;
  void unlink_ready(connection& c) noexcept;
  void make_ready(connection& c) noexcept;
  void schedule_flush(connection& c) noexcept;
  void arm_deadline(connection& c) noexcept;
  void on_deadline(connection& c) noexcept;
  [[nodiscard]] time_point next_deadline(const connection& c) const noexcept;
  void after_callback(connection& c) noexcept;
  void close_all(close_reason why) noexcept;
  static void deadline_fired(timer& t) noexcept;

  loop_options opts_;
  std::uint16_t id_;
  time_point now_;
  segment_pool pool_;
  timer_wheel timers_;
  connection_table table_;

  connection::flush_list flush_list_;
  connection::ready_list ready_list_;     // read again this iteration
  connection::ready_list waiting_list_;   // read when the input limit or pool allows
  connection::close_list close_list_;
  std::vector<udp_socket*> udp_flush_;

  std::vector<std::unique_ptr<listener>> listeners_;
  std::vector<std::unique_ptr<udp_socket>> udp_sockets_;

  bool stopping_ = false;
  bool expedite_ = false;  // see take_expedite()
  bool fd_released_ = false;
  time_point stop_deadline_{};
  timer stop_timer_;
  std::vector<std::function<void()>> stop_hooks_;

  mail_hub* hub_ = nullptr;
  // The rings other loops send to this one (from attach_mail): what
  // drain_mail and has_pending_work scan, nothing for a runtime of one loop.
  std::vector<spsc_ring*> inbound_;
  // Per target: messages waiting for ring space (and, for this loop itself,
  // messages to self), drained in order every iteration.
  std::vector<std::deque<task>> pending_mail_;
  std::size_t pending_mail_count_ = 0;
  bool drain_mail() noexcept;
  void wake_if_sleeping(unsigned target) noexcept;

  std::atomic<bool> sleeping_{false};
  std::atomic<bool> inbox_nonempty_{false};
  // request_stop_from_signal's grace in ns; -1 when none is pending.
  std::atomic<std::int64_t> signal_stop_ns_{-1};
  static_assert(std::atomic<std::int64_t>::is_always_lock_free, "a signal handler stores it");
  std::mutex inbox_mutex_;
  std::vector<std::function<void()>> inbox_;
  std::vector<std::function<void()>> inbox_batch_;
};

}  // namespace sluice
