#pragma once
// An in-process Ethernet wire between two ends (a and b) for deterministic
// tests of the user-space stack: frames sent at one end arrive at the other
// after a fixed delay, with seeded loss, duplication and reordering. The same
// seed, clock and sends give the same deliveries, every run.
//
// Each end has a fixed pool of packet buffers, made at construction; frames
// live in the sender's pool until the receiver lets them go. The wire must
// outlive every buffer (destroy the loops that use it first).
//
// Not thread-safe: both ends are driven from one thread (a test stepping two
// loops with run_once, or a loop and the test itself).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "sluice/base/time.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet.hpp"
#include "sluice/inet/packet_port.hpp"

namespace sluice::memory {

// What one direction of the wire does to the frames sent over it (all off by
// default). Probabilities are drawn from the wire's seeded generator.
struct impairments {
  double loss = 0.0;       // probability a frame is lost
  double duplicate = 0.0;  // probability a frame arrives twice
  double reorder = 0.0;    // probability a frame overtakes the one sent before it
  duration delay = duration::zero();  // how long a frame takes to arrive (by the wire's clock)
};

// The wire itself (see the file comment): two ends, a and b, each with its
// buffer pool, and the frames in flight between them. Made by a test, which
// drives both ends from one thread.
class memory_wire {
 public:
  // One end of the wire.
  enum class side : std::uint8_t { a = 0, b = 1 };

  // How the wire is made.
  struct options {
    clock_source clock{};                               // the time frames are delayed by (a test's manual clock, usually)
    impairments a_to_b{};                               // what happens to frames from a to b
    impairments b_to_a{};                               // what happens to frames from b to a
    std::uint64_t seed = 1;                             // seed of the loss, duplication and reordering draws
    std::size_t buffers_per_end = 1024;                 // packet buffers in each end's pool
    inet::port_capabilities caps{};                     // what both ends report they offload (checksums, steering)
    inet::mac_address mac_a{{0x02, 0, 0, 0, 0, 0x0a}};  // the MAC address of end a
    inet::mac_address mac_b{{0x02, 0, 0, 0, 0, 0x0b}};  // the MAC address of end b
  };

  // What happened to the frames sent one way, counted since the wire was made.
  struct direction_stats {
    std::uint64_t sent = 0;        // frames handed to the wire
    std::uint64_t lost = 0;        // frames dropped by the loss draw
    std::uint64_t duplicated = 0;  // frames sent twice by the duplication draw
    std::uint64_t reordered = 0;   // frames that overtook the one before them
    std::uint64_t delivered = 0;   // frames received at the other end
  };

  // A wire with these options; allocates both ends' buffer pools now.
  explicit memory_wire(const options& opts);
  memory_wire(const memory_wire&) = delete;
  memory_wire& operator=(const memory_wire&) = delete;
  // Asserts (debug builds) that every buffer came home.
  ~memory_wire();

  // The port operations of one end (memory_port forwards here).
  std::size_t receive(side at, inet::packet** out, std::size_t n) noexcept;
  // Sends frames from end `from`: each goes through that direction's
  // impairments, then waits out the delay. Returns how many were taken (the
  // rest: the wire is full).
  std::size_t transmit(side from, inet::packet** pkts, std::size_t n) noexcept;
  // Fresh buffers from end `at`'s pool; returns how many (fewer when the pool
  // runs low).
  std::size_t allocate(side at, inet::packet** out, std::size_t n) noexcept;
  // The MAC address of end `at`.
  [[nodiscard]] inet::mac_address mac(side at) const noexcept { return at == side::a ? opts_.mac_a : opts_.mac_b; }
  // What both ends offload.
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept { return opts_.caps; }
  // The release function of the wire's buffers (segments go back to their end's
  // pool).
  [[nodiscard]] static segment_release_fn release_function() noexcept { return &release_buffer; }

  // Frames sent from `from` (to the other end).
  [[nodiscard]] const direction_stats& stats(side from) const noexcept { return dir_[index(from)].stats; }
  // Frames on their way to `to` (sent, not yet received).
  [[nodiscard]] std::size_t in_flight(side to) const noexcept;
  // Buffers of `at`'s pool not in use.
  [[nodiscard]] std::size_t free_buffers(side at) const noexcept { return pools_[index(at)]->free.size(); }

  // Bytes reserved in front of each frame (for headers to prepend).
  static constexpr std::uint32_t headroom = 128;
  // Bytes of frame data each buffer holds.
  static constexpr std::uint32_t data_room = 2048;

 private:
  struct pool {
    std::unique_ptr<std::byte[]> bytes;
    std::unique_ptr<inet::packet[]> packets;
    std::vector<inet::packet*> free;
  };
  struct flight {
    inet::packet* p;
    time_point at;
  };
  struct direction {
    impairments imp;
    std::mt19937_64 rng;
    std::vector<flight> ring;  // fixed capacity, FIFO
    std::size_t head = 0;
    std::size_t count = 0;
    direction_stats stats;
  };

  [[nodiscard]] static std::size_t index(side s) noexcept { return static_cast<std::size_t>(s); }
  static void release_buffer(segment* s) noexcept;
  [[nodiscard]] bool chance(direction& d, double p) noexcept;
  void push(direction& d, inet::packet* p, time_point at) noexcept;

  options opts_;
  std::unique_ptr<pool> pools_[2];
  direction dir_[2];  // indexed by the sending side
};

}  // namespace sluice::memory
