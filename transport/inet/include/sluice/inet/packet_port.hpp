#pragma once
// The device under the user-space stack: burst receive and burst transmit of
// packet buffers, and fresh buffers to build frames in. Implemented by one
// DPDK RX/TX queue pair (transport/dpdk) and by one end of the in-process
// memory wire (transport/memory).
//
// One port instance per loop (a queue pair, not the whole NIC); owner core
// only. The data-path calls are virtual but taken once per burst, never per
// packet (the stack batches).

#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/core/metrics.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet.hpp"

namespace sluice::inet {

// What a port's device does in hardware, and the geometry of its buffers. The
// stack reads it once, at start.
struct port_capabilities {
  // The device marks received IPv4 header / UDP checksums good or bad
  // (packet_meta::rx); otherwise the stack verifies them in software.
  bool rx_ipv4_checksum = false;
  bool rx_udp_checksum = false;  // ... and UDP checksums
  bool rx_tcp_checksum = false;  // ... and TCP checksums
  // The device fills in transmitted checksums (packet_meta::tx).
  bool tx_ipv4_checksum = false;
  bool tx_udp_checksum = false;  // ... and UDP checksums
  bool tx_tcp_checksum = false;  // ... and TCP checksums
  std::uint16_t mtu = 1500;      // largest IP packet the link carries (bytes, Ethernet header excluded)
  // A fresh buffer has this many bytes before its data (room for headers)...
  std::uint32_t headroom = 128;
  // ...and this many after the headroom.
  std::uint32_t data_room = 2048;
};

// The device of one loop's stack (see the file comment). Implementations:
// dpdk::dpdk_queue, memory::memory_port.
class packet_port {
 public:
  virtual ~packet_port() = default;

  // Up to n received packets into out; returns how many. The caller owns
  // them (segment_unref(&p->seg) gives one back).
  [[nodiscard]] virtual std::size_t receive(packet** out, std::size_t n) noexcept = 0;
  // Offers n finished frames (seg.begin..seg.end is the frame); returns how
  // many the device took (now its own). The rest stay the caller's, in order.
  [[nodiscard]] virtual std::size_t transmit(packet** pkts, std::size_t n) noexcept = 0;
  // Up to n empty buffers (data at the headroom, size 0); returns how many.
  [[nodiscard]] virtual std::size_t allocate(packet** out, std::size_t n) noexcept = 0;

  // The port's Ethernet address.
  [[nodiscard]] virtual mac_address mac() const noexcept = 0;
  // What the device offloads; the reference stays valid for the port's life.
  [[nodiscard]] virtual const port_capabilities& capabilities() const noexcept = 0;
  // The release function of this port's buffers: tells its packets apart
  // from other segments (a reply may reuse a received buffer only if it is one).
  [[nodiscard]] virtual segment_release_fn release_function() const noexcept = 0;
  // Per-queue counters, names prefixed (control plane).
  virtual void metrics(const std::string& prefix, metric_list& out) const {
    (void)prefix;
    (void)out;
  }
};

}  // namespace sluice::inet
