#pragma once
// One DPDK port, set up for the placement plan: one RX/TX queue pair per
// loop, a packet-buffer pool (mempool) per NUMA node that runs loops, each
// queue fed from its loop's node, checksum offloads (IPv4, UDP, TCP) where
// the device has them, and flow steering: where the device has RSS, its
// Toeplitz key and indirection table (RETA) are programmed by us to the
// very function inet::flow_steering computes, so every TCP segment lands
// on the queue of the loop that owns its connection; where it has not (tap,
// af_packet), the stacks forward misdelivered segments themselves
// (hardware_steering() false). Its statistics (device-wide and per queue:
// ipackets, imissed, ierrors, rx_nombuf, ...) and link state feed the app's
// metrics.
//
// Made and destroyed on the process's main thread (the registry's
// init_process and finish_process); its queues are then used by their loops
// only (dpdk_queue), except while a control thread has closed the queue
// gates to restart the port (a net_memif client reconnecting, see
// queue_gate). No DPDK header here: the rest of sluice never sees one.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/core/metrics.hpp"
#include "sluice/base/result.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet_port.hpp"

struct rte_mempool;

namespace sluice::dpdk {

// How to set up the port: queues, ring sizes, buffers and steering. Filled in
// by the DPDK registry entry from the placement plan.
struct device_config {
  // The NUMA node of each queue's loop (-1: anywhere), one entry per queue.
  std::vector<int> queue_nodes;
  std::uint16_t rx_descriptors = 1024;  // RX ring size of each queue (descriptors)
  std::uint16_t tx_descriptors = 1024;  // TX ring size of each queue (descriptors)
  // Buffers one loop's stack may hold besides the rings (its TX queue,
  // packets waiting for ARP or reassembly, datagrams an application keeps,
  // TCP payloads in receive and out-of-order queues: zero copy keeps them
  // in the device's buffers until the application consumes them).
  unsigned held_per_loop = 8192;
  // The RX/TX queue of each loop (index: loop id), for the RETA: entry i
  // sends its flows to the queue of loop i % loops.
  std::vector<std::uint16_t> loop_queues;
};

// How many packet buffers a node's pool gets: every ring full, every stack
// holding its share, the per-lcore caches, and some slack; rounded up to
// 2^k - 1 (the mempool's best size).
[[nodiscard]] unsigned pool_size(unsigned loops_on_node, const device_config& cfg) noexcept;
// Buffers each lcore keeps in its mempool cache.
inline constexpr unsigned pool_cache = 256;

// One started DPDK port (see the file comment). Made by open(); owned by the
// DPDK registry entry for the process's life.
class dpdk_device {
 public:
  // Configures and starts `port`.
  static result<std::unique_ptr<dpdk_device>> open(std::uint16_t port, const device_config& cfg);
  dpdk_device(const dpdk_device&) = delete;
  dpdk_device& operator=(const dpdk_device&) = delete;
  // Stops and closes the port and frees its pools.
  ~dpdk_device();

  // The DPDK port id.
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // RX/TX queue pairs: one per loop.
  [[nodiscard]] unsigned queues() const noexcept { return static_cast<unsigned>(cfg_.queue_nodes.size()); }
  // The port's MAC address.
  [[nodiscard]] const inet::mac_address& mac() const noexcept { return mac_; }
  // What the device offloads (checksums) and whether it steers by RSS.
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept { return caps_; }
  // The mempool that feeds `queue` (its loop's NUMA node).
  [[nodiscard]] rte_mempool* pool_of(unsigned queue) const noexcept;
  // "port 0 (net_tap, 02:..): 2 queue pairs, RSS off (...), checksum offload ..., link up ..."
  [[nodiscard]] std::string describe() const;
  // "link up, 10000 Mbps, full duplex", "link down" or "link state unknown".
  [[nodiscard]] std::string link() const;
  // True when RSS was programmed with flow_steering's key and table: the
  // device itself steers each flow to its owner's queue.
  [[nodiscard]] bool hardware_steering() const noexcept { return hardware_steering_; }
  // The indirection table size the software steering must use to agree
  // with the device (128 without RSS).
  [[nodiscard]] std::uint16_t reta_size() const noexcept { return reta_size_; }
  // How flows reach their loops on this port, in words (also in describe()).
  [[nodiscard]] const std::string& steering() const noexcept { return steering_; }
  // The PMD's name ("net_memif", "net_af_xdp", ...).
  [[nodiscard]] const std::string& driver() const noexcept { return driver_; }
  // Before any loop polls it: waits up to `each` for the link, restarting
  // the port (stop, start) up to `tries` times when it stays down. For a
  // net_memif client, which asks its server once, at start, and is turned
  // away while the server still tears down its previous peer. True once up.
  // Main thread, before the loops start.
  [[nodiscard]] bool wait_for_link(std::chrono::milliseconds each, unsigned tries) noexcept;
  // dpdk.portN.{ipackets,...} and dpdk.portN.qK.{ipackets,opackets,errors};
  // for a watched net_memif client also memif_link_downs and
  // memif_reconnects. Any thread.
  void metrics(metric_list& out) const;

  // The queue gates: how a control thread takes the port's queues away from
  // the loops while it restarts the port (a net_memif client reconnecting),
  // with no lock on the data path. The gates are open while the epoch is
  // even. A loop, before each burst on queue q, reads the epoch (acquire),
  // writes it to q's `seen` when it changed (release), and bursts only when
  // it is even. close_gates() makes the epoch odd and waits until every
  // queue's `seen` equals it: from then on no loop is inside a burst or will
  // start one, so rte_eth_dev_stop/start may run.
  struct alignas(64) queue_gate {
    std::atomic<std::uint32_t> seen{0};  // the last epoch this queue's loop saw
  };
  // The epoch and queue q's gate, for that queue's loop (dpdk_queue).
  [[nodiscard]] const std::atomic<std::uint32_t>& gate_epoch() const noexcept { return epoch_; }
  // Queue q's gate (its loop writes `seen`).
  [[nodiscard]] queue_gate& gate(unsigned queue) const noexcept { return gates_[queue]; }
  // Closes the gates (see queue_gate) and waits up to `timeout` for every
  // queue's loop to see it, looking every 100 us; gives up early when `stop`
  // becomes true. False (gates open again) if some loop did not answer.
  // One control thread at a time.
  [[nodiscard]] bool close_gates(std::chrono::nanoseconds timeout, const std::atomic<bool>& stop) noexcept;
  // Lets the loops burst again. One control thread, after close_gates().
  void open_gates() noexcept;
  // Stops the port (when it runs) and starts it again; true if it started.
  // For a net_memif client, start is when the PMD connects to its server.
  // With the gates closed, or before the loops exist.
  [[nodiscard]] bool restart() noexcept;
  // The link is up (rte_eth_link_get_nowait). Any thread.
  [[nodiscard]] bool link_up() const noexcept;
  // A net_memif client watched for reconnects (memif_reconnect): its
  // counters, shown by metrics(). Set before the loops start.
  void watch_memif_reconnects() noexcept { memif_watched_ = true; }
  // The memif link went down (dpdk.port0.memif_link_downs). Any thread.
  void count_memif_link_down() noexcept { memif_link_downs_.fetch_add(1, std::memory_order_relaxed); }
  // The memif client reconnected (dpdk.port0.memif_reconnects). Any thread.
  void count_memif_reconnect() noexcept { memif_reconnects_.fetch_add(1, std::memory_order_relaxed); }

 private:
  dpdk_device() = default;

  std::uint16_t port_ = 0;
  device_config cfg_;
  std::string driver_;
  int socket_ = -1;
  std::string steering_;
  bool hardware_steering_ = false;
  std::uint16_t reta_size_ = 128;
  inet::mac_address mac_;
  inet::port_capabilities caps_;
  struct node_pool {
    int node;
    rte_mempool* pool;
  };
  std::vector<node_pool> pools_;
  bool started_ = false;  // opened and started once: closed by the destructor
  bool running_ = false;  // started now (a restart's start may fail)
  std::atomic<std::uint32_t> epoch_{0};
  std::unique_ptr<queue_gate[]> gates_;
  bool memif_watched_ = false;
  std::atomic<std::uint64_t> memif_link_downs_{0};
  std::atomic<std::uint64_t> memif_reconnects_{0};
};

}  // namespace sluice::dpdk
