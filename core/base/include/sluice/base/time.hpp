#pragma once
// Time as an input. Every loop reads its clock once per iteration through a
// clock_source, so tests can swap the steady clock for a manual one and replay
// timer behaviour exactly.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice {

// Durations everywhere in sluice: nanoseconds, signed 64-bit.
using duration = std::chrono::nanoseconds;
// Monotonic time in nanoseconds; the epoch is the steady clock's.
using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

using namespace std::chrono_literals;

// The steady clock, read without going through a function pointer.
[[nodiscard]] inline time_point steady_now() noexcept {
  return std::chrono::time_point_cast<duration>(std::chrono::steady_clock::now());
}

// A clock that moves only when told to. Owned by a test; any thread may read
// or move it (a test thread drives time while a loop thread reads it).
class manual_clock {
 public:
  // Starts at `start` (1 s past the epoch by default, so that time_point{} is
  // always in the past).
  explicit manual_clock(time_point start = time_point{1s}) noexcept : ns_(start.time_since_epoch().count()) {}
  // The current time: as set or advanced so far.
  [[nodiscard]] time_point now() const noexcept { return time_point(duration(ns_.load(std::memory_order_acquire))); }
  // Moves time forward by d (backward if d is negative: tests only do so on
  // purpose).
  void advance(duration d) noexcept { ns_.fetch_add(d.count(), std::memory_order_acq_rel); }
  // Sets the time to t.
  void set(time_point t) noexcept { ns_.store(t.time_since_epoch().count(), std::memory_order_release); }

 private:
  std::atomic<std::int64_t> ns_;
};

// Where a loop gets its time from: the steady clock (manual == nullptr) or a
// manual clock owned by a test. Copyable, trivially cheap.
struct clock_source {
  manual_clock* manual = nullptr;  // the test's clock, or nullptr for the steady clock; not owned
  // The time from the manual clock if one is set, else from the steady clock.
  [[nodiscard]] time_point now() const noexcept { return manual ? manual->now() : steady_now(); }
};

}  // namespace sluice
