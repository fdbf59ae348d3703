#pragma once
// One RX/TX queue pair of a dpdk_device as the stack's packet_port: burst
// receive and transmit of mbufs, each carrying an inet::packet in its private
// area (so the stack and buffer chains reference the mbuf's bytes, never copy
// them), and fresh mbufs from the loop's NUMA-local pool.
//
// Owner core only (the loop serving this queue). The device outlives it.

#include <atomic>
#include <cstdint>
#include <string>

#include "sluice/core/stats.hpp"
#include "sluice/inet/packet_port.hpp"

struct rte_mempool;
struct rte_mbuf;

namespace sluice::dpdk {

class dpdk_device;

// The packet port of one loop on a DPDK port (see the file comment): what that
// loop's stack sends and receives through.
class dpdk_queue final : public inet::packet_port {
 public:
  // Queue pair `queue` of device, fed from the pool of that queue's NUMA node.
  dpdk_queue(const dpdk_device& device, std::uint16_t queue) noexcept;

  std::size_t receive(inet::packet** out, std::size_t n) noexcept override;
  std::size_t transmit(inet::packet** pkts, std::size_t n) noexcept override;
  std::size_t allocate(inet::packet** out, std::size_t n) noexcept override;
  [[nodiscard]] inet::mac_address mac() const noexcept override { return mac_; }
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept override { return caps_; }
  [[nodiscard]] segment_release_fn release_function() const noexcept override;
  void metrics(const std::string& prefix, metric_list& out) const override;

 private:
  // The PMD burst calls, through the fault guard where the PMD needs it
  // (net_memif; see src/fault_guard.hpp).
  std::uint16_t rx_burst(rte_mbuf** ms, std::uint16_t n) noexcept;
  std::uint16_t tx_burst(rte_mbuf** ms, std::uint16_t n) noexcept;
  std::uint16_t guarded_rx_burst(rte_mbuf** ms, std::uint16_t n) noexcept;
  std::uint16_t guarded_tx_burst(rte_mbuf** ms, std::uint16_t n) noexcept;
  // The device's queue gate (dpdk_device::queue_gate): true when this loop
  // may burst now; acknowledges a new epoch.
  bool gate_open() noexcept;

  std::uint16_t port_;
  std::uint16_t queue_;
  rte_mempool* pool_;
  inet::mac_address mac_;
  inet::port_capabilities caps_;
  counter rx_bursts_;
  counter rx_packets_;
  counter tx_packets_;
  counter tx_refused_;  // offered, but the device's ring was full (retried by the stack)
  counter alloc_failed_;
  bool guarded_ = false;  // bursts run under the fault guard (net_memif)
  counter memif_faults_;  // bursts the guard ended: the peer's memory went away under them
  // net_memif: the port's gate epoch and this queue's acknowledgement.
  const std::atomic<std::uint32_t>* gate_epoch_ = nullptr;
  std::atomic<std::uint32_t>* gate_seen_ = nullptr;
  counter gate_drops_;  // frames dropped while the gate was closed (the port restarting, its link down)
};

}  // namespace sluice::dpdk
