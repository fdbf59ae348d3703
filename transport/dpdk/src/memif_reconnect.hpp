#pragma once
// Reconnects a net_memif client whose server went away (issue 21).
//
// The DPDK 22.11 memif PMD connects a client only in rte_eth_dev_start:
// when its server exits or is killed, the PMD's control thread (the EAL
// interrupt thread) disconnects (link down, shared memory unmapped) and the
// port stays down for ever. memif_reconnect watches the link from an EAL
// alarm, which runs on that same interrupt thread, so that its stop/start
// never overlaps the PMD's own connect and disconnect handling. When the
// link drops it says so once on stderr and closes the port's queue gates
// (the loops stop touching the queues and drop what they send, as on a
// NIC whose link is down; see dpdk_device::queue_gate); then, once a second
// while a new server listens on the socket (see same_server_wait), it
// restarts the port (which makes the PMD connect again) and waits for the
// link; when it is up, it opens the gates and says so once. Nothing of
// this is on the data path. Counted in dpdk.portN.memif_link_downs / memif_reconnects.
//
// Made on the main thread after the port has started (and before the
// loops), destroyed before the device.

#include <atomic>
#include <chrono>
#include <string>

#include "sluice/dpdk/dpdk_device.hpp"

namespace sluice::dpdk {

class memif_reconnect {
 public:
  // Watches `device`, a started net_memif role=client port made from
  // `vdev`. `loop_sleep`: the loops' longest idle sleep, which bounds how
  // long a loop takes to see a closed gate.
  memif_reconnect(dpdk_device& device, std::string vdev, std::chrono::nanoseconds loop_sleep);
  // Cancels the alarm (waiting for one that runs) and opens the gates.
  ~memif_reconnect();
  memif_reconnect(const memif_reconnect&) = delete;
  memif_reconnect& operator=(const memif_reconnect&) = delete;

  // How often the link is looked at while up, and how often a reconnect
  // is tried while down.
  static constexpr std::chrono::milliseconds check_every{100};
  static constexpr std::chrono::milliseconds try_every{1000};
  // The 22.11 PMD's server, when its port closes, frees its listener's
  // state but leaves the listening socket open and its interrupt callback
  // registered until the process exits: a client connecting in that window
  // makes the server's interrupt thread read freed memory (seen: a server
  // exiting cleanly died of SIGSEGV after "memif_listener_handler(): Failed
  // to accept connection request on socket fd -1"). So after a drop the
  // client connects at once only to a different listener (a new server
  // process), and to the one that dropped it only once that one has stayed
  // this long (a live server that restarted its port).
  static constexpr std::chrono::milliseconds same_server_wait{5000};

 private:
  static void on_alarm(void* self);
  // One look (interrupt thread); returns when to look next.
  std::chrono::microseconds step();
  void arm(std::chrono::microseconds after) noexcept;

  enum class state { up, down, connecting };
  dpdk_device& device_;
  std::string vdev_;
  std::string socket_;  // for messages
  std::chrono::nanoseconds gate_timeout_;
  std::atomic<bool> stopping_{false};
  state state_ = state::up;
  bool gates_closed_ = false;
  bool said_no_server_ = false;
  std::uint64_t listener_ = 0;  // memif_listener_id of the server we were last connected to
  std::chrono::steady_clock::time_point down_since_{};
  std::chrono::steady_clock::time_point next_try_{};
};

}  // namespace sluice::dpdk
