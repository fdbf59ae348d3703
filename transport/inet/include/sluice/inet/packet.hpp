#pragma once
// A packet buffer as the user-space stack sees it: a core segment (so that a
// buffer chain can hold the payload without copying) plus the little the
// stack and the device exchange per packet (checksum offload flags and the
// header lengths an offloading NIC needs).
//
//   packet:  [ segment seg | packet_meta meta ]
//   bytes:   base ... [headroom][frame: eth | ip | l4 | payload][tailroom]
//                              ^seg.begin                     ^seg.end
//
// A port embeds one packet per device buffer (DPDK: in the mbuf's private
// area) and sets seg.release to its own function, so that dropping the last
// reference returns the buffer to the device's pool. A packet belongs to one
// loop at a time: owner core only.

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sluice/core/segment.hpp"

namespace sluice::inet {

// What a packet carries besides its bytes: checksum offload flags and header
// lengths.
struct packet_meta {
  // Set by the port on receive: what the device verified.
  enum rx_flag : std::uint8_t {
    rx_ip_checksum_good = 1,
    rx_ip_checksum_bad = 2,
    rx_l4_checksum_good = 4,
    rx_l4_checksum_bad = 8,
    rx_chained = 16,  // more device segments follow (scatter): the stack drops it
    rx_loopback = 32, // sent by this host to itself: its checksums may be left to an offload, trust them
  };
  // Set by the stack on transmit: what the device is to fill in.
  enum tx_flag : std::uint8_t {
    tx_ip_checksum = 1,
    tx_udp_checksum = 2,  // the UDP checksum field then holds the pseudo-header sum
    tx_tcp_checksum = 4,  // the same for TCP
  };
  std::uint8_t rx = 0;      // rx_flag bits, set by the port on receive
  std::uint8_t tx = 0;      // tx_flag bits, set by the stack for the device
  std::uint8_t l2_len = 0;  // Ethernet header bytes (for the device's offloads)
  std::uint8_t l3_len = 0;  // IPv4 header bytes (for the device's offloads)
};

// One frame in one device buffer (see the file comment).
struct packet {
  segment seg;  // first: a packet's address is its segment's
  packet_meta meta;  // offload flags and header lengths

  // Prepares a fresh buffer of `capacity` bytes at `base`, data at `headroom`.
  void reset(std::byte* base, std::uint32_t capacity, std::uint32_t headroom, segment_release_fn release,
             void* owner) noexcept {
    seg.base = base;
    seg.capacity = capacity;
    seg.begin = seg.end = headroom;
    seg.refs = 1;
    seg.writable = false;
    seg.parent = nullptr;
    seg.release = release;
    seg.owner = owner;
    meta = {};
  }
  // The frame's first byte.
  [[nodiscard]] std::byte* data() noexcept { return seg.data(); }
  // The frame's length in bytes.
  [[nodiscard]] std::uint32_t size() const noexcept { return seg.size(); }
  // Grows the frame at its front by n bytes (headroom must allow it).
  std::byte* prepend(std::uint32_t n) noexcept {
    seg.begin -= n;
    return seg.data();
  }
};

static_assert(std::is_standard_layout_v<packet>, "a packet must be reachable from its segment's address");

// The packet a port-owned segment belongs to. Only for owner segments that a
// port made (their release is the port's).
[[nodiscard]] inline packet* packet_of(segment* s) noexcept { return reinterpret_cast<packet*>(s); }

}  // namespace sluice::inet
