#include "sluice/platform/binding.hpp"

#include <hwloc.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

namespace sluice::platform {

result<void> bind_this_thread(const topology& topo, unsigned cpu) {
  if (!topo.is_this_system()) {
    return error{"not pinned: the topology (" + topo.source() + ") is not this machine's", {}};
  }
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  hwloc_bitmap_only(set, cpu);
  int rc = hwloc_set_cpubind(topo.handle(), set, HWLOC_CPUBIND_THREAD | HWLOC_CPUBIND_STRICT);
  int err = errno;
  hwloc_bitmap_free(set);
  if (rc != 0) return error::from_errno(err, "cannot bind a loop thread to CPU " + std::to_string(cpu));
  // The kernel moves the calling thread before sched_setaffinity returns.
  int now = sched_getcpu();
  if (now != static_cast<int>(cpu)) {
    return error{"bound to CPU " + std::to_string(cpu) + " but running on CPU " + std::to_string(now), {}};
  }
  return {};
}

thread_binding_keeper::thread_binding_keeper(const topology& topo) : topo_(&topo) {
  if (!topo.is_this_system()) return;
  saved_ = hwloc_bitmap_alloc();
  if (saved_ != nullptr && hwloc_get_cpubind(topo.handle(), saved_, HWLOC_CPUBIND_THREAD) != 0) {
    hwloc_bitmap_free(saved_);
    saved_ = nullptr;
  }
}

thread_binding_keeper::~thread_binding_keeper() {
  if (saved_ == nullptr) return;
  (void)hwloc_set_cpubind(topo_->handle(), saved_, HWLOC_CPUBIND_THREAD);
  hwloc_bitmap_free(saved_);
}

numa_memory::numa_memory(const topology& topo, int node) : topo_(&topo), node_(node) {
  if (!topo.is_this_system()) {
    why_not_ = "the topology is not this machine's";
  } else if (node < 0) {
    why_not_ = "the loop's CPU has no NUMA node";
  } else {
    const hwloc_topology_support* s = hwloc_topology_get_support(topo.handle());
    if (s == nullptr || s->membind == nullptr || !s->membind->alloc_membind || !s->membind->bind_membind) {
      why_not_ = "this OS or hwloc build cannot bind memory to NUMA nodes";
    } else {
      bound_ = true;
    }
  }
}

memory_allocator numa_memory::allocator() noexcept { return memory_allocator{&allocate, &deallocate, this}; }

void* numa_memory::allocate(std::size_t bytes, void* ctx) noexcept {
  auto* self = static_cast<numa_memory*>(ctx);
  if (self->bound_) {
    hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
    hwloc_bitmap_only(nodes, static_cast<unsigned>(self->node_));
    void* p = hwloc_alloc_membind(self->topo_->handle(), bytes, nodes, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET);
    hwloc_bitmap_free(nodes);
    if (p != nullptr) return p;
    // Binding refused at run time (e.g. a node without memory): fall back,
    // the pool still works, and nothing pretends it is bound.
    self->bound_ = false;
    self->why_not_ = std::string("hwloc_alloc_membind failed: ") + std::strerror(errno);
  }
  // Unbound, but from the same allocator family, so deallocate() needs no
  // record of which call made which block.
  return hwloc_alloc(self->topo_->handle(), bytes);
}

void numa_memory::deallocate(void* p, std::size_t bytes, void* ctx) noexcept {
  auto* self = static_cast<numa_memory*>(ctx);
  hwloc_free(self->topo_->handle(), p, bytes);
}

}  // namespace sluice::platform
