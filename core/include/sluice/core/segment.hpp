#pragma once
// A segment is one contiguous piece of bytes in a buffer chain.
//
//   base                begin            end            capacity
//   |<--- headroom ---->|<---- data ---->|<- tailroom ->|
//
// A segment either owns its bytes (a pool slab, a DPDK mbuf) or is a clone that
// refers to a part of another segment's bytes. Clones let a chain be split at any
// byte without copying: the owner counts its references and goes back to where it
// came from (its release action) when the last one is dropped.
//
// Ownership: a segment belongs to exactly one chain, free list or limbo list at a
// time (its single hook), on the core that allocated it. Not thread-safe.

#include <boost/intrusive/list_hook.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

struct segment;
// Returns an owning segment (refs reached zero) to its owner. Never throws.
using segment_release_fn = void (*)(segment* s) noexcept;

// One piece of a buffer chain (see the file comment). A plain struct that
// pools, chains and transports fill in; applications read segments through
// buffer_chain.
struct segment {
  boost::intrusive::list_member_hook<> hook;  // links it into one chain, free list or limbo list
  std::byte* base = nullptr;                  // start of the bytes (owner's memory, or the parent's for a clone)
  std::uint32_t capacity = 0;                 // bytes from base to the end of the memory
  std::uint32_t begin = 0;                    // offset of the first data byte (the headroom)
  std::uint32_t end = 0;                      // offset past the last data byte
  // References to this segment's bytes: itself plus its live clones. Owners only.
  std::uint32_t refs = 1;
  // True when the bytes past `end` may be written (a fresh pool slab not shared).
  bool writable = false;
  // The segment whose bytes a clone refers to; nullptr for an owner.
  segment* parent = nullptr;
  // How an owner goes home, and to whom (a pool, an mbuf, user memory).
  segment_release_fn release = nullptr;
  void* owner = nullptr;  // context of `release` (the pool, the mbuf...)

  // The first data byte.
  [[nodiscard]] std::byte* data() noexcept { return base + begin; }
  // The first data byte.
  [[nodiscard]] const std::byte* data() const noexcept { return base + begin; }
  // Data bytes.
  [[nodiscard]] std::uint32_t size() const noexcept { return end - begin; }
  // Bytes that may follow the data (writable only if tail_writable()).
  [[nodiscard]] std::uint32_t tailroom() const noexcept { return capacity - end; }
  // Bytes before the data (room for a header to prepend).
  [[nodiscard]] std::uint32_t headroom() const noexcept { return begin; }
  // The data as characters.
  [[nodiscard]] std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size()};
  }
  // May the tail be appended to? Only an unshared writable owner.
  [[nodiscard]] bool tail_writable() const noexcept { return writable && parent == nullptr && refs == 1; }
};

// Drops one reference: a clone goes back to its descriptor pool and unreferences
// its parent; an owner whose count reaches zero is released to its owner.
void segment_unref(segment* s) noexcept;

}  // namespace sluice
