#pragma once
// Frames for the packet fuzzers: each copied into a heap buffer of exactly
// its size (a read past the frame is an ASan report), and counted, so a
// harness can check that the code under test gave every buffer back.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sluice/inet/packet.hpp"

namespace sluice::inet::exact_frames {

// Frames made by copy_frame and not yet released.
inline std::size_t live_buffers = 0;

// The release function of those frames.
inline void release_exact(segment* s) noexcept {
  delete[] s->base;
  delete packet_of(s);
  --live_buffers;
}

// A packet holding the n bytes at data, in a buffer of exactly n bytes.
inline packet* copy_frame(const std::uint8_t* data, std::size_t n) {
  auto* p = new packet();
  auto* bytes = new std::byte[n == 0 ? 1 : n];
  std::memcpy(bytes, data, n);
  p->reset(bytes, static_cast<std::uint32_t>(n), 0, &release_exact, nullptr);
  p->seg.end = static_cast<std::uint32_t>(n);
  ++live_buffers;
  return p;
}

}  // namespace sluice::inet::exact_frames
