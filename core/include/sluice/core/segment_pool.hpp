#pragma once
// Per-core pool of fixed-size buffer segments, plus a scratch arena for the few
// contiguous views that must be copied because they span segments.
//
// Memory comes in slabs from a pluggable allocator (the runtime binds it to the
// loop's NUMA node); after warm-up, allocate/free are free-list pops and pushes,
// so the data path does no heap allocation. The pool never grows past
// max_bytes: allocate() then returns nullptr and counts the exhaustion; callers
// stop reading or report a failed write (backpressure, nothing silently lost).
//
// Owner core only. Segments must be freed on the core that allocated them.

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sluice/base/allocator.hpp"
#include "sluice/core/segment.hpp"

namespace sluice {

// The buffer memory of one loop (see the file comment): data segments, clone
// and wrap descriptors, and the scratch arena. loop_base::pool() is the loop's.
class segment_pool {
 public:
  // How a pool is sized and where its memory comes from.
  struct options {
    std::uint32_t segment_size = 16 * 1024;  // bytes per data segment
    std::uint32_t segments_per_slab = 64;    // segments per slab, the unit of growth
    // Upper bound on slab bytes held by this pool (data only).
    std::size_t max_bytes = std::size_t{512} << 20;
    memory_allocator allocator{};  // where slabs come from (default: operator new)
  };

  segment_pool();
  // A pool with these options. Allocates nothing until the first segment is
  // asked for.
  explicit segment_pool(const options& opts);
  segment_pool(const segment_pool&) = delete;
  segment_pool& operator=(const segment_pool&) = delete;
  // Asserts (in debug builds) that every segment came back.
  ~segment_pool();

  // A fresh writable segment with `headroom` bytes reserved at its front, or
  // nullptr when the pool is at max_bytes or the allocator failed.
  [[nodiscard]] segment* allocate(std::uint32_t headroom = 0) noexcept;

  // A descriptor for bytes that live elsewhere and outlive every chain holding
  // them (static data, a file mapping). Read-only. nullptr on exhaustion.
  [[nodiscard]] segment* wrap(const void* data, std::uint32_t size) noexcept;

  // A descriptor that shares `[offset, offset + size)` of owner's data (zero copy).
  [[nodiscard]] segment* clone(segment* of, std::uint32_t offset, std::uint32_t size) noexcept;

  // While deferring, segments released are parked and only become reusable at
  // reclaim(). The loop defers while an application handler runs, so views the
  // handler took stay valid until it returns, whatever it releases or moves.
  void set_deferred(bool on) noexcept { deferred_ = on; }
  // Runs after every handler: inline, and two tests when nothing was parked.
  void reclaim() noexcept {
    if (!limbo_.empty()) return_parked();
    reset_scratch();
  }

  // Scratch bytes for a contiguous copy of a span that crosses segments; valid
  // until reset_scratch(). Grows only when a larger total is asked for than ever
  // before. nullptr if memory cannot be had.
  [[nodiscard]] std::byte* scratch(std::size_t n) noexcept;
  // Forgets every scratch allocation (reclaim() calls it after each handler).
  void reset_scratch() noexcept {
    scratch_used_ = 0;
    if (!scratch_chunks_.empty()) fold_scratch();
  }

  // Bytes per data segment.
  [[nodiscard]] std::uint32_t segment_size() const noexcept { return opts_.segment_size; }
  // Data segments handed out and not yet back.
  [[nodiscard]] std::size_t segments_in_use() const noexcept { return in_use_; }
  // Data segments allocated so far, in use or free.
  [[nodiscard]] std::size_t segments_total() const noexcept { return total_; }
  // Slab bytes held: segments_total() * segment_size().
  [[nodiscard]] std::size_t bytes_reserved() const noexcept { return total_ * opts_.segment_size; }
  // Allocations refused so far (max_bytes reached or the allocator failed).
  [[nodiscard]] std::uint64_t exhausted_count() const noexcept { return exhausted_; }
  // True once an allocation failed, until the next segment comes back; lets the
  // loop retry starved readers only when there is something to give them.
  [[nodiscard]] bool starved() const noexcept { return starved_; }
  // Resets starved() (the loop does once it has retried its starved readers).
  void clear_starved() noexcept { starved_ = false; }

 private:
  using list_t = boost::intrusive::list<
      segment, boost::intrusive::member_hook<segment, boost::intrusive::list_member_hook<>, &segment::hook>,
      boost::intrusive::constant_time_size<false>>;

  static void release_data(segment* s) noexcept;
  static void release_descriptor(segment* s) noexcept;
  void park(segment* s) noexcept;
  void return_parked() noexcept;
  void fold_scratch() noexcept;
  bool grow() noexcept;
  segment* descriptor() noexcept;

  struct slab {
    std::byte* data;
    std::size_t bytes;
    segment* descriptors;
  };

  options opts_;
  list_t free_;          // data segments ready for reuse (LIFO: hot in cache)
  list_t free_desc_;     // descriptor-only segments (wraps and clones)
  list_t limbo_;         // released while deferred; reusable after reclaim()
  std::vector<slab> slabs_;
  std::vector<segment*> desc_blocks_;
  std::size_t in_use_ = 0;
  std::size_t total_ = 0;
  std::uint64_t exhausted_ = 0;
  bool deferred_ = false;
  bool starved_ = false;

  std::vector<std::byte*> scratch_chunks_;
  std::byte* scratch_ = nullptr;
  std::size_t scratch_cap_ = 0;
  std::size_t scratch_used_ = 0;
  std::size_t overflow_bytes_ = 0;
};

}  // namespace sluice
