#pragma once
// A byte-stream connection owned by one loop.
//
// Owner core only: every method must be called on the loop that owns the
// connection. Applications keep connection_handle values, not pointers, across
// callbacks: loop_base::get(handle) returns nullptr once the connection is gone
// (the slot's generation moved on), so a stale handle can never reach a new
// connection that reuses the slot.
//
// Writes are buffered in output() and sent when the current dispatch ends (the
// loop's flush phase), so several writes in one callback become one writev.
// Closing is two-phase: close()/abort() take effect at once for the application
// (no more callbacks but on_close), the socket and memory are released after the
// iteration.

#include <boost/intrusive/list_hook.hpp>

#include <cstdint>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/close_reason.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/base/time.hpp"
#include "sluice/core/timer_wheel.hpp"

namespace sluice {

class loop_base;
class handler;

// Names a connection across callbacks and threads without keeping a pointer to
// it: the slot in its loop's connection table, the slot's generation (bumped
// each time the slot is reused) and the loop's id. Copyable and trivial;
// resolve it with loop_base::get(), on the owning loop only.
struct connection_handle {
  std::uint32_t index = UINT32_MAX;  // slot in the loop's connection table; UINT32_MAX: never set
  std::uint32_t generation = 0;      // the slot's generation when the handle was made
  std::uint16_t loop = 0;            // id of the loop that owns the connection
  // True if the handle was ever set; whether it is still alive: loop.get(h).
  [[nodiscard]] bool valid() const noexcept { return index != UINT32_MAX; }
  // Same slot, same generation and same loop: the same connection.
  friend bool operator==(const connection_handle&, const connection_handle&) = default;
};

// A TCP connection (kernel or user-space TCP), from accept or connect to close.
// Lives in a slot of its loop's connection table, which makes and frees it:
// applications get references in handler callbacks, valid until on_close
// returns, and keep connection_handle values beyond that.
class connection {
 public:
  // Where the connection is in its life. Applications read it through is_open()
  // and friends; only the loop moves it.
  enum class state : std::uint8_t { free, connecting, open, closing, closed };

  connection() noexcept = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // ---- buffers --------------------------------------------------------------
  // Bytes received and not yet consumed. Consume them in on_data (next, skip,
  // until, read_line, take); the loop releases what was consumed afterwards.
  [[nodiscard]] buffer_chain& input() noexcept { return input_; }
  // Bytes waiting to be sent. Prefer write()/send(), which enforce the limit.
  [[nodiscard]] buffer_chain& output() noexcept { return output_; }

  // ---- writing --------------------------------------------------------------
  // Copies bytes into output; false (nothing buffered, counted) when that
  // would exceed max_output_bytes or buffer memory ran out, or when closing.
  [[nodiscard]] bool write(std::string_view bytes) noexcept;
  // Moves a chain's bytes into output without copying; false (chain left
  // untouched) when over max_output_bytes or closing.
  [[nodiscard]] bool send(buffer_chain&& chain) noexcept;
  // Sends output at the end of the current dispatch (one writev for all writes
  // made since the last flush).
  void flush() noexcept;
  // flush(), and as soon as the handler of the current event returns rather
  // than after every event of the poll was handled (transports that can:
  // epoll; elsewhere the same as flush()). For output that took long to
  // make, such as a TLS handshake flight: it then does not wait for the
  // other connections' work in the same iteration. The same number of
  // writes per connection.
  void expedite() noexcept;
  // write() then flush(). The common case.
  [[nodiscard]] bool write_and_flush(std::string_view bytes) noexcept {
    bool ok = write(bytes);
    flush();
    return ok;
  }
  // Output is below the high-water mark. Once this is false, stop producing
  // and wait for on_writable.
  [[nodiscard]] bool writable() const noexcept;

  // ---- reading --------------------------------------------------------------
  // Stops reading from the peer (its sends then block: backpressure), until
  // resume_reading(). Data already buffered stays in input().
  void pause_reading() noexcept;
  // Undoes pause_reading(): the transport reads again, and on_data follows if
  // input is buffered.
  void resume_reading() noexcept;
  // pause_reading() is in effect.
  [[nodiscard]] bool reading_paused() const noexcept { return flags_.paused; }

  // ---- ending ---------------------------------------------------------------
  // Sends FIN after pending output; reading goes on (half-close).
  void shutdown_write() noexcept;
  // Stops reading, sends pending output, then closes. on_close(why) follows.
  void close(close_reason why = close_reason::local) noexcept;
  // Discards pending output and resets the connection (RST). on_close(aborted).
  void abort() noexcept;

  // ---- deadlines (zero turns one off) ----------------------------------------
  // Read: the peer must send something within d of its last bytes.
  void set_read_timeout(duration d) noexcept;
  // Write: pending output must make progress within d.
  void set_write_timeout(duration d) noexcept;
  // Idle: something must move, either way, within d.
  void set_idle_timeout(duration d) noexcept;

  // ---- identity and status ----------------------------------------------------
  // A handle to this connection, to keep across callbacks or hand to other code
  // (see connection_handle).
  [[nodiscard]] connection_handle handle() const noexcept { return {index_, generation_, loop_id_}; }
  // The loop that owns this connection: the only thread that may call its
  // methods.
  [[nodiscard]] loop_base& loop() const noexcept { return *loop_; }
  // The remote address and port.
  [[nodiscard]] const endpoint& peer() const noexcept { return peer_; }
  // The lifecycle state (see state).
  [[nodiscard]] state current_state() const noexcept { return state_; }
  // Open for the application: not closing, closed or still connecting.
  [[nodiscard]] bool is_open() const noexcept { return state_ == state::open; }
  // Made by connect() (true) or accepted by a listener (false).
  [[nodiscard]] bool outgoing() const noexcept { return flags_.outgoing; }
  // The peer sent FIN: no more input will arrive.
  [[nodiscard]] bool peer_shut() const noexcept { return flags_.read_eof; }
  // shutdown_write() or close() was asked for.
  [[nodiscard]] bool write_shut() const noexcept { return flags_.shut_requested || state_ >= state::closing; }
  // Why the connection ended (close_reason::none while it is open).
  [[nodiscard]] close_reason reason() const noexcept { return reason_; }
  // errno behind io_error, connect_refused, unreachable, peer_reset (0 if none).
  [[nodiscard]] int error() const noexcept { return error_; }

  // Application data attached to the connection.
  void set_context(void* p) noexcept { context_ = p; }
  // The pointer given to set_context(), or nullptr. Not owned by the
  // connection.
  [[nodiscard]] void* context() const noexcept { return context_; }
  // context() cast to T*; the caller knows what it stored.
  template <class T>
  [[nodiscard]] T* context_as() const noexcept {
    return static_cast<T*>(context_);
  }
  // The handler that gets this connection's callbacks (the listener's, or the
  // one given to connect()).
  [[nodiscard]] handler& get_handler() const noexcept { return *handler_; }
  // Moves the connection's callbacks to `h` from the next event on (a protocol
  // switch); `h` must outlive the connection.
  void set_handler(handler& h) noexcept { handler_ = &h; }

  // Transport-owned per-connection state: an fd and readiness bits for kernel
  // transports, a control block for the user-space stack. Reached by
  // transports only (transport_loop::slot).
  struct transport_slot {
    int fd = -1;             // kernel transports: the socket descriptor (-1: none)
    std::uint32_t bits = 0;  // readiness transports: edge bits (see transport/readiness_io.hpp)
    void* ptr = nullptr;     // user-space stack: the TCP control block
  };

 private:
  friend class loop_base;
  friend class connection_table;
  friend class transport_loop;

  struct flags {
    bool outgoing : 1;
    bool paused : 1;          // the application paused reading
    bool read_pending : 1;    // the socket may hold unread bytes (edge-triggered)
    bool read_eof : 1;        // the peer sent FIN
    bool shut_requested : 1;  // shutdown_write() asked; FIN after output drains
    bool shut_done : 1;       // FIN sent
    bool above_high : 1;      // writable() turned false; on_writable owed
    bool abort : 1;           // reset instead of a clean close
    bool write_blocked : 1;   // the last write hit EAGAIN; waiting for writability
    bool waiting : 1;         // ready_hook_ is in the loop's waiting list (not ready list)
  };

  using list_hook = boost::intrusive::list_member_hook<>;

  // Hot fields first: what dispatch and flush touch per event.
  buffer_chain input_;
  buffer_chain output_;
  handler* handler_ = nullptr;
  loop_base* loop_ = nullptr;
  void* context_ = nullptr;
  transport_slot slot_{};
  state state_ = state::free;
  close_reason reason_ = close_reason::none;
  flags flags_{};
  std::uint16_t loop_id_ = 0;
  std::uint32_t index_ = 0;
  std::uint32_t generation_ = 0;
  int error_ = 0;

  list_hook flush_hook_;  // in the loop's flush list
  list_hook ready_hook_;  // in the loop's ready (read again) or waiting list
  list_hook close_hook_;  // in the loop's close list (or the table's free list)

  // Deadlines: one timer armed for the earliest one, checked lazily.
  timer deadline_;
  time_point last_read_{};
  time_point last_write_{};
  duration read_timeout_{};
  duration write_timeout_{};
  duration idle_timeout_{};
  // Start of connecting (connect deadline) or of a graceful close (linger).
  time_point phase_start_{};

  endpoint peer_;

 public:
  // Intrusive lists a loop keeps connections in, without allocating. For
  // loops and transports only. This one: connections with output to flush.
  using flush_list = boost::intrusive::list<
      connection, boost::intrusive::member_hook<connection, list_hook, &connection::flush_hook_>,
      boost::intrusive::constant_time_size<true>>;
  // Connections to read again in this iteration, or waiting for memory.
  using ready_list = boost::intrusive::list<
      connection, boost::intrusive::member_hook<connection, list_hook, &connection::ready_hook_>,
      boost::intrusive::constant_time_size<true>>;
  // Connections closed in this iteration, to free (and the table's free slots).
  using close_list = boost::intrusive::list<
      connection, boost::intrusive::member_hook<connection, list_hook, &connection::close_hook_>,
      boost::intrusive::constant_time_size<true>>;
};

}  // namespace sluice
