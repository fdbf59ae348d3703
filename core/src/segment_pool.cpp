#include "sluice/core/segment_pool.hpp"

#include <cassert>
#include <cstdlib>
#include <new>

namespace sluice {

void segment_unref(segment* s) noexcept {
  if (s->parent != nullptr) {
    segment* p = s->parent;
    s->parent = nullptr;
    s->release(s);
    segment_unref(p);
    return;
  }
  assert(s->refs > 0);
  if (--s->refs == 0) s->release(s);
}

namespace {

void* default_allocate(std::size_t bytes, void*) noexcept {
  return ::operator new(bytes, std::align_val_t{64}, std::nothrow);
}

void default_deallocate(void* p, std::size_t, void*) noexcept { ::operator delete(p, std::align_val_t{64}); }

constexpr std::size_t descriptors_per_block = 256;

}  // namespace

segment_pool::segment_pool() : segment_pool(options{}) {}

segment_pool::segment_pool(const options& opts) : opts_(opts) {
  if (opts_.allocator.allocate == nullptr) {
    opts_.allocator.allocate = default_allocate;
    opts_.allocator.deallocate = default_deallocate;
  }
  if (opts_.segments_per_slab == 0) opts_.segments_per_slab = 1;
  if (opts_.segment_size < 64) opts_.segment_size = 64;
}

segment_pool::~segment_pool() {
  reclaim();
  assert(in_use_ == 0 && "segments still in use when their pool was destroyed");
  free_.clear();
  free_desc_.clear();
  for (auto& s : slabs_) {
    opts_.allocator.deallocate(s.data, s.bytes, opts_.allocator.ctx);
    delete[] s.descriptors;
  }
  for (auto* d : desc_blocks_) delete[] d;
  for (auto* c : scratch_chunks_) std::free(c);
  std::free(scratch_);
}

bool segment_pool::grow() noexcept {
  // A full slab, or what is left under max_bytes.
  std::size_t n = opts_.segments_per_slab;
  const std::size_t left = opts_.max_bytes > bytes_reserved() ? (opts_.max_bytes - bytes_reserved()) / opts_.segment_size : 0;
  if (left < n) n = left;
  if (n == 0) return false;
  const std::size_t bytes = n * opts_.segment_size;
  auto* data = static_cast<std::byte*>(opts_.allocator.allocate(bytes, opts_.allocator.ctx));
  if (data == nullptr) return false;
  auto* descs = new (std::nothrow) segment[n];
  if (descs == nullptr) {
    opts_.allocator.deallocate(data, bytes, opts_.allocator.ctx);
    return false;
  }
  // Control-plane growth: the vector may allocate here, never per message.
  try {
    slabs_.push_back(slab{data, bytes, descs});
  } catch (...) {
    delete[] descs;
    opts_.allocator.deallocate(data, bytes, opts_.allocator.ctx);
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    segment& s = descs[i];
    s.base = data + i * opts_.segment_size;
    s.capacity = opts_.segment_size;
    s.release = &segment_pool::release_data;
    s.owner = this;
    free_.push_back(s);
  }
  total_ += n;
  return true;
}

segment* segment_pool::allocate(std::uint32_t headroom) noexcept {
  if (free_.empty() && !grow()) {
    ++exhausted_;
    starved_ = true;
    return nullptr;
  }
  segment& s = free_.front();
  free_.pop_front();
  s.begin = s.end = headroom < s.capacity ? headroom : 0;
  s.refs = 1;
  s.writable = true;
  s.parent = nullptr;
  ++in_use_;
  return &s;
}

segment* segment_pool::descriptor() noexcept {
  if (free_desc_.empty()) {
    auto* block = new (std::nothrow) segment[descriptors_per_block];
    if (block == nullptr) return nullptr;
    try {
      desc_blocks_.push_back(block);
    } catch (...) {
      delete[] block;
      return nullptr;
    }
    for (std::size_t i = 0; i < descriptors_per_block; ++i) {
      block[i].release = &segment_pool::release_descriptor;
      block[i].owner = this;
      free_desc_.push_back(block[i]);
    }
  }
  segment& s = free_desc_.front();
  free_desc_.pop_front();
  s.refs = 1;
  s.writable = false;
  s.parent = nullptr;
  return &s;
}

segment* segment_pool::wrap(const void* data, std::uint32_t size) noexcept {
  segment* s = descriptor();
  if (s == nullptr) {
    ++exhausted_;
    return nullptr;
  }
  // Read-only by contract: writable == false keeps writers away.
  s->base = static_cast<std::byte*>(const_cast<void*>(data));
  s->capacity = size;
  s->begin = 0;
  s->end = size;
  return s;
}

segment* segment_pool::clone(segment* of, std::uint32_t offset, std::uint32_t size) noexcept {
  segment* root = of->parent != nullptr ? of->parent : of;
  segment* s = descriptor();
  if (s == nullptr) {
    ++exhausted_;
    return nullptr;
  }
  s->base = of->base;
  s->capacity = of->capacity;
  s->begin = of->begin + offset;
  s->end = s->begin + size;
  s->parent = root;
  ++root->refs;
  return s;
}

void segment_pool::release_data(segment* s) noexcept {
  auto* pool = static_cast<segment_pool*>(s->owner);
  --pool->in_use_;
  pool->park(s);
}

void segment_pool::release_descriptor(segment* s) noexcept {
  auto* pool = static_cast<segment_pool*>(s->owner);
  // A descriptor carries no bytes of its own (its parent's bytes are parked by
  // the parent's own release), so it is reusable at once even while deferring.
  s->base = nullptr;
  pool->free_desc_.push_front(*s);
}

void segment_pool::park(segment* s) noexcept {
  if (deferred_) {
    limbo_.push_back(*s);
  } else {
    free_.push_front(*s);
    starved_ = false;
  }
}

void segment_pool::return_parked() noexcept {
  free_.splice(free_.begin(), limbo_);
  starved_ = false;
}

void segment_pool::fold_scratch() noexcept {
  // The views of the last dispatch are gone: fold the overflow chunks into one
  // bigger arena, so that the same demand next time needs no allocation.
  std::size_t want = scratch_cap_ + overflow_bytes_;
  for (auto* c : scratch_chunks_) std::free(c);
  scratch_chunks_.clear();
  overflow_bytes_ = 0;
  if (auto* bigger = static_cast<std::byte*>(std::malloc(want))) {
    std::free(scratch_);
    scratch_ = bigger;
    scratch_cap_ = want;
  }
}

std::byte* segment_pool::scratch(std::size_t n) noexcept {
  if (scratch_ == nullptr) {
    std::size_t cap = std::size_t{opts_.segment_size} * 2;
    while (cap < n) cap *= 2;
    scratch_ = static_cast<std::byte*>(std::malloc(cap));
    if (scratch_ == nullptr) return nullptr;
    scratch_cap_ = cap;
  }
  if (scratch_used_ + n <= scratch_cap_) {
    std::byte* p = scratch_ + scratch_used_;
    scratch_used_ += n;
    return p;
  }
  // The arena is full and earlier views must stay valid: overflow into a chunk
  // of its own until the next reset.
  auto* chunk = static_cast<std::byte*>(std::malloc(n));
  if (chunk == nullptr) return nullptr;
  try {
    scratch_chunks_.push_back(chunk);
  } catch (...) {
    std::free(chunk);
    return nullptr;
  }
  overflow_bytes_ += n;
  return chunk;
}

}  // namespace sluice
