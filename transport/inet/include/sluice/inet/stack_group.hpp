#pragma once
// The stacks of one runtime, indexed by loop id, so that a loop can address
// another loop's stack in a mailbox task (which then runs on that loop).
// Each loop enters its own stack while it is made, before any loop serves
// (the runtime starts serving only after every loop is made); afterwards the
// table is only read. A member is touched only on its own loop; first_report
// is the one thing loops share (an atomic).

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::inet {

class stack;

// The stacks of one runtime by loop id (see the file comment). Owned by the
// DPDK registry entry for the process's life.
class stack_group {
 public:
  // Room for `loops` stacks, none joined yet.
  explicit stack_group(unsigned loops) : members_(loops, nullptr) {}
  // Enters loop loop_id's stack (ignored for an id beyond the group).
  void join(unsigned loop_id, stack* s) noexcept {
    if (loop_id < members_.size()) members_[loop_id] = s;
  }
  // Removes loop loop_id's stack (before it is destroyed).
  void leave(unsigned loop_id) noexcept { join(loop_id, nullptr); }
  // The stack of loop loop_id, or nullptr (not joined, or beyond the group).
  [[nodiscard]] stack* member(unsigned loop_id) const noexcept {
    return loop_id < members_.size() ? members_[loop_id] : nullptr;
  }
  // The number of loops the group has room for.
  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(members_.size()); }
  // True the first time it is asked for `which` (0 to 31), from any loop:
  // so that something seen by several loops (a duplicate address) is
  // reported once per process.
  [[nodiscard]] bool first_report(unsigned which) noexcept {
    const std::uint32_t bit = std::uint32_t{1} << (which & 31);
    return (reported_.fetch_or(bit, std::memory_order_relaxed) & bit) == 0;
  }

 private:
  std::vector<stack*> members_;
  std::atomic<std::uint32_t> reported_{0};
};

}  // namespace sluice::inet
