#pragma once
// Frames for the packet fuzzers: the input cut into frames (for_each_frame),
// each copied into a heap buffer of exactly its size (a read past the frame
// is an ASan report) and counted, so a harness can check that the code under
// test gave every buffer back; the small reassembly limits both use.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <string_view>

#include "sluice/base/time.hpp"
#include "sluice/inet/ipv4_reassembler.hpp"
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

// Small reassembly limits, so that short inputs reach them.
inline reassembly_options small_reassembly() {
  reassembly_options ro;
  ro.max_datagrams = 4;
  ro.max_fragments = 8;
  ro.max_held_packets = 16;
  ro.timeout = std::chrono::milliseconds(50);
  return ro;
}

// Cuts a fuzz input into frames, each a 16-bit big-endian length (cut to
// what is left), a byte of milliseconds the clock advances first, then the
// frame; calls fn(frame, length, clock) for each, the clock starting at 1 s.
template <class Fn>
void for_each_frame(std::string_view rest, Fn&& fn) {
  time_point now{std::chrono::seconds(1)};
  while (rest.size() >= 3) {
    const std::size_t len = std::min<std::size_t>(
        rest.size() - 3, (static_cast<unsigned char>(rest[0]) << 8) | static_cast<unsigned char>(rest[1]));
    now += std::chrono::milliseconds(static_cast<unsigned char>(rest[2]));
    const auto* frame = reinterpret_cast<const std::uint8_t*>(rest.data() + 3);
    rest.remove_prefix(3 + len);
    fn(frame, len, now);
  }
}

}  // namespace sluice::inet::exact_frames
