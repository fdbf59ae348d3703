#pragma once
// Per-loop counters. One loop writes them; any thread may read them (metrics,
// tests), so each is a relaxed atomic that compiles to a plain add on x86.

#include <array>
#include <atomic>
#include <cstdint>

#include "sluice/core/close_reason.hpp"

namespace sluice {

// A counter one thread writes and any thread reads: a relaxed atomic whose add
// is a plain load, add and store (not an atomic read-modify-write, so only the
// owning loop may write it).
class counter {
 public:
  // Adds n. Owner only.
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  // Subtracts n (gauges such as connections). Owner only.
  void sub(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  // Sets the value (gauges). Owner only.
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  // The current value. Any thread.
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// The counters of one loop (see the file comment): loop_base::stats(), exported
// as "loopN.NAME" metrics.
struct loop_stats {
  counter iterations;  // loop iterations run
  counter polls_blocking;     // polls that were allowed to sleep
  counter events;             // transport events dispatched
  // Time spent blocked in the transport with nothing to do; the busy ratio
  // over an interval is 1 - idle_ns / elapsed.
  counter idle_ns;

  counter connections;        // open right now
  counter accepted;  // connections accepted
  counter connected;          // outgoing connections established
  counter connect_failed;  // outgoing connections that never opened (refused, timed out, unreachable)
  counter accept_errors;   // accept() failures other than running out of descriptors
  counter accept_fd_exhausted;  // EMFILE/ENFILE: accepting paused, not spinning
  counter accept_rejected;      // over max_connections: closed at once
  // Connections closed, indexed by close_reason.
  std::array<counter, close_reason_count> closed_by_reason;

  counter bytes_read;     // bytes received on connections
  counter bytes_written;  // bytes sent on connections
  counter read_calls;     // read system calls (kernel transports)
  counter write_calls;    // write system calls (kernel transports)
  counter reads_paused_input_full;   // reading stopped because the input limit was reached
  counter reads_starved;             // reading stopped because the pool was exhausted
  counter writes_rejected;           // writes refused over max_output_bytes or pool exhaustion
  // Protocol input refused; the connection was closed (reason protocol_error,
  // or resource_limit when buffer memory ran out while splitting a frame).
  counter frames_rejected;           // a codec refused a frame: over its maximum or a bad length field
  counter requests_rejected;         // an HTTP request answered 4xx/5xx by the parser (malformed, over a limit)

  counter datagrams_in;   // datagrams received
  counter datagrams_out;  // datagrams sent
  counter datagrams_dropped;         // truncated, unsendable or queue full (counted, never silent)
  counter timers_fired;  // timers fired (deadlines and application timers)
  counter mail_sent;        // messages sent to other loops
  counter mail_received;    // messages run from other loops
  counter wakeups_sent;     // sleeping peers woken (busy peers are never disturbed)
};

}  // namespace sluice
