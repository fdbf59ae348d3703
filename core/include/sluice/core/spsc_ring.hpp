#pragma once
// A bounded single-producer single-consumer ring of tasks between two loops.
//
//   producer (one loop) --push--> [ slots ... ] --pop--> consumer (one loop)
//
// head_ is written only by the consumer, tail_ only by the producer, each on
// its own cache line; each side caches the other's index so the common case
// touches no shared line. Capacity is a power of two.

#include <atomic>
#include <cstddef>
#include <memory>

#include "sluice/core/task.hpp"

namespace sluice {

// The ring from one loop to another (see the file comment). The producer loop
// calls push(), the consumer loop pop(); nothing else touches it.
class spsc_ring {
 public:
  // A ring of `capacity_pow2` slots, which must be a power of two.
  explicit spsc_ring(std::size_t capacity_pow2)
      : mask_(capacity_pow2 - 1), slots_(std::make_unique<task[]>(capacity_pow2)) {}

  // Producer only. False when full (the task is left untouched).
  [[nodiscard]] bool push(task& t) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) return false;
    }
    slots_[tail & mask_] = std::move(t);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer only. Runs every task present now, in order; returns how many.
  std::size_t drain(loop_base& here) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t n = tail - head;
    for (; head != tail; ++head) {
      task t = std::move(slots_[head & mask_]);
      // Free the slot before running: the task may send to the producer,
      // which may be this loop's own outgoing ring, never this one.
      head_.store(head + 1, std::memory_order_release);
      t.run(here);
    }
    return n;
  }

  // Either side: something is waiting (a hint; exact for the consumer).
  [[nodiscard]] bool nonempty() const noexcept {
    return tail_.load(std::memory_order_acquire) != head_.load(std::memory_order_relaxed);
  }

 private:
  const std::size_t mask_;
  std::unique_ptr<task[]> slots_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  std::size_t head_cache_ = 0;  // producer's copy of head_
};

}  // namespace sluice
