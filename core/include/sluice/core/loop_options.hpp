#pragma once
// Per-loop settings. Every limit has a safe default; apps set them from flags.

#include <cstddef>
#include <cstdint>

#include "sluice/core/segment_pool.hpp"
#include "sluice/base/time.hpp"

namespace sluice {

// The settings of one loop: buffer memory, polling, per-connection limits and
// default deadlines. A plain value, copied into the loop; runtime_config::loop
// is every loop's.
struct loop_options {
  // The loop's buffer memory: segment size, growth and the byte limit
  // (max_bytes) that backpressure starts at.
  segment_pool::options pool{};
  // The timer wheel's tick: deadlines fire at most this late.
  duration timer_resolution = std::chrono::milliseconds(1);

  // Spin instead of blocking when idle: lowest latency, burns the core.
  bool busy_poll = false;
  // Without busy_poll: keep polling without blocking for this long after the
  // last work before going to sleep (0: sleep at once). DPDK's adaptive
  // polling needs it; on kernel transports it saves the wake-up when work
  // comes back to back (measured: about a third of a 23 us loopback HTTP
  // round trip on the 2-core VM), for up to this much CPU per idle gap.
  duration spin_budget = duration::zero();
  // Write each connection's output as soon as the handler of the event that
  // produced it returns, instead of once per iteration after every event of
  // the poll has been dispatched (transports that offer it: epoll).
  bool flush_each_event = false;

  // Open connections per loop; accepts beyond it are closed at once (counted in
  // accept_rejected) and connect() fails.
  std::size_t max_connections = 65536;
  // Per connection: reading stops while this many input bytes are unconsumed.
  std::size_t max_input_bytes = 256 * 1024;
  // Per connection: writable() is false at or above high water; on_writable
  // fires once output drains below low water again.
  std::size_t output_high_water = 256 * 1024;
  // See output_high_water.
  std::size_t output_low_water = 64 * 1024;
  // Per connection: write()/send() refuse to buffer more than this.
  std::size_t max_output_bytes = 16 * 1024 * 1024;
  // Bytes read from one connection per readiness event before giving others a
  // turn (fairness); the rest is read later in the same iteration's ready pass.
  std::size_t read_budget = 256 * 1024;
  // Connections accepted per listener per iteration.
  unsigned accept_batch = 64;
  // After EMFILE/ENFILE, accepting resumes when a connection closes here or
  // after this long, whichever comes first.
  duration accept_retry = std::chrono::milliseconds(100);

  // Defaults for new connections (zero: no deadline).
  duration read_timeout = duration::zero();
  // Pending output must make progress within this (write timeout).
  duration write_timeout = duration::zero();
  // Something must move, either way, within this (idle timeout).
  duration idle_timeout = duration::zero();
  // An outgoing connection must be established within this
  // (on_close(connect_timeout) otherwise).
  duration connect_timeout = std::chrono::seconds(10);
  // A graceful close sends FIN after the last output, then keeps reading (and
  // discarding) until the peer's FIN or this long, so that closing with unread
  // input never turns into an RST that could destroy the output in flight.
  duration linger_timeout = std::chrono::seconds(2);

  // Where time comes from (tests use a manual clock).
  clock_source clock{};
};

}  // namespace sluice
