#pragma once
// The cross-core mailboxes of one runtime: a single-producer single-consumer
// ring for every ordered pair of loops (N x N - N rings), drained once per
// iteration by the receiving loop. Created by the runtime before its loops;
// immutable afterwards except for the rings' contents.

#include <atomic>
#include <memory>
#include <vector>

#include "sluice/core/spsc_ring.hpp"

namespace sluice {

class loop_base;

// The mailboxes between `loops` loops (see the file comment). Owned by the
// runtime; loops keep a pointer to it (loop_base::attach_mail).
class mail_hub {
 public:
  // Makes a ring of `ring_capacity` tasks (rounded up to a power of two) for
  // every ordered pair of loops. Control plane: allocates.
  explicit mail_hub(unsigned loops, std::size_t ring_capacity = 1024);
  mail_hub(const mail_hub&) = delete;
  mail_hub& operator=(const mail_hub&) = delete;

  // The number of loops it connects.
  [[nodiscard]] unsigned size() const noexcept { return n_; }
  // The ring from loop `from` to loop `to` (from != to).
  [[nodiscard]] spsc_ring& ring(unsigned from, unsigned to) noexcept { return *rings_[from * n_ + to]; }
  // Loops register when made and unregister before they die. Any thread.
  void attach(unsigned id, loop_base* l) noexcept { loops_[id].store(l, std::memory_order_release); }
  // The loop registered under `id`, or nullptr when none is (not made yet, or
  // gone). Any thread.
  [[nodiscard]] loop_base* loop(unsigned id) const noexcept { return loops_[id].load(std::memory_order_acquire); }

 private:
  unsigned n_;
  std::vector<std::unique_ptr<spsc_ring>> rings_;
  std::unique_ptr<std::atomic<loop_base*>[]> loops_;
};

}  // namespace sluice
