#pragma once
// Where a pool's memory comes from: a pair of functions and their context, so
// that the layer that knows the machine (platform: NUMA-bound memory) can feed
// the layer that pools buffers (core) without either knowing the other.

#include <cstddef>

namespace sluice {

// An allocator of large blocks (slabs). A default-constructed one (null
// functions) means aligned operator new.
struct memory_allocator {
  // Returns `bytes` of memory, or nullptr; must not throw.
  void* (*allocate)(std::size_t bytes, void* ctx) noexcept = nullptr;
  // Gives back what allocate returned, with the same size.
  void (*deallocate)(void* p, std::size_t bytes, void* ctx) noexcept = nullptr;
  // Passed to both functions.
  void* ctx = nullptr;
};

}  // namespace sluice
