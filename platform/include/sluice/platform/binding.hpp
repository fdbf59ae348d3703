#pragma once
// Putting a loop where its plan says: its thread on its CPU, its memory on its
// NUMA node. Both are real only on this machine's topology; elsewhere (and
// where the OS cannot bind memory) they say so instead of pretending.

#include <cstddef>
#include <memory>
#include <string>

#include "sluice/base/allocator.hpp"
#include "sluice/base/result.hpp"
#include "sluice/platform/topology.hpp"

struct hwloc_bitmap_s;  // hwloc's bitmap (hwloc.h stays out of this header)

namespace sluice::platform {

// Binds the calling thread to `cpu` and checks with sched_getcpu() that it
// runs there. On a topology that is not this machine's, does nothing and
// returns an error saying so.
result<void> bind_this_thread(const topology& topo, unsigned cpu);

// The calling thread's CPU binding as it was when made, put back when
// destroyed: for a loop that runs on a thread it does not own (the caller of
// runtime::run()), which must not stay pinned once the loop has ended.
class thread_binding_keeper {
 public:
  // Saves the calling thread's binding (only on this machine's topology;
  // elsewhere there is nothing to save). topo must outlive the keeper.
  explicit thread_binding_keeper(const topology& topo);
  ~thread_binding_keeper();
  thread_binding_keeper(const thread_binding_keeper&) = delete;
  thread_binding_keeper& operator=(const thread_binding_keeper&) = delete;

 private:
  const topology* topo_;
  ::hwloc_bitmap_s* saved_ = nullptr;  // nullptr: nothing to put back
};

// Memory for a loop's pools, placed on one NUMA node through
// hwloc_alloc_membind. Owned by the runtime for as long as the loop's pools
// live; the allocator it hands out points at it.
class numa_memory {
 public:
  // Memory on NUMA node `node` of topo, if this machine and OS can bind it;
  // otherwise ordinary memory, and why_not() says why. topo must outlive it.
  numa_memory(const topology& topo, int node);
  // Whether allocations really are bound; if not, why (they then come from
  // ordinary memory, which still works).
  [[nodiscard]] bool bound() const noexcept { return bound_; }
  // Why allocations are not bound (empty when they are).
  [[nodiscard]] const std::string& why_not() const noexcept { return why_not_; }
  // The allocator to give segment_pool::options; it points at this object,
  // which must outlive the pool.
  [[nodiscard]] memory_allocator allocator() noexcept;

 private:
  static void* allocate(std::size_t bytes, void* ctx) noexcept;
  static void deallocate(void* p, std::size_t bytes, void* ctx) noexcept;

  const topology* topo_;
  int node_;
  bool bound_ = false;
  std::string why_not_;
};

}  // namespace sluice::platform
