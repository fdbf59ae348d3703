#pragma once
// Per-loop counters. One loop writes them; any thread may read them (metrics,
// tests), so each is a relaxed atomic that compiles to a plain add on x86.

#include <array>
#include <atomic>
#include <cstdint>

#include "sluice/core/close_reason.hpp"

namespace sluice {

class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

struct loop_stats {
  counter iterations;
  counter polls_blocking;     // polls that were allowed to sleep
  counter events;             // transport events dispatched
  // Time spent blocked in the transport with nothing to do; the busy ratio
  // over an interval is 1 - idle_ns / elapsed.
  counter idle_ns;

  counter connections;        // open right now
  counter accepted;
  counter connected;          // outgoing connections established
  counter connect_failed;
  counter accept_errors;
  counter accept_fd_exhausted;  // EMFILE/ENFILE: accepting paused, not spinning
  counter accept_rejected;      // over max_connections: closed at once
  std::array<counter, close_reason_count> closed_by_reason;

  counter bytes_read;
  counter bytes_written;
  counter read_calls;
  counter write_calls;
  counter reads_paused_input_full;   // reading stopped because the input limit was reached
  counter reads_starved;             // reading stopped because the pool was exhausted
  counter writes_rejected;           // writes refused over max_output_bytes or pool exhaustion
  // Protocol input refused; the connection was closed (reason protocol_error,
  // or resource_limit when buffer memory ran out while splitting a frame).
  counter frames_rejected;           // a codec refused a frame: over its maximum or a bad length field
  counter requests_rejected;         // an HTTP request answered 4xx/5xx by the parser (malformed, over a limit)

  counter datagrams_in;
  counter datagrams_out;
  counter datagrams_dropped;         // truncated, unsendable or queue full (counted, never silent)
  counter timers_fired;
  counter mail_sent;        // messages sent to other loops
  counter mail_received;    // messages run from other loops
  counter wakeups_sent;     // sleeping peers woken (busy peers are never disturbed)
};

}  // namespace sluice
