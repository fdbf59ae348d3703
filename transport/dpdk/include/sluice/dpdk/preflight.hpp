#pragma once
// What DPDK needs from the machine, checked before anything is started, with
// the missing piece said in plain words: hugepages (or --no-huge), a port
// (a --vdev, or a PCI NIC bound to a DPDK driver rather than a kernel one),
// the permissions its virtual devices need, and the stack's address. The
// facts are gathered from /proc and /sys (host_facts::gather) and judged by
// a pure function (preflight), which the unit tests feed with made-up facts.
//
// Any thread; gather() only reads files and calls if_nametoindex.

#include <map>
#include <string>

#include "sluice/dpdk/eal_args.hpp"

namespace sluice::dpdk {

// What preflight() judges from, as gathered from this host (or made up by a
// test).
struct host_facts {
  bool root = false;                  // running as root (effective uid 0)
  bool cap_net_admin = false;         // has CAP_NET_ADMIN (net_tap, af_xdp)
  bool cap_net_raw = false;           // has CAP_NET_RAW (net_af_packet)
  std::uint64_t hugepages_total = 0;  // hugepages configured (/proc/meminfo HugePages_Total)
  std::uint64_t hugepages_free = 0;   // hugepages free (HugePages_Free)
  bool hugetlbfs_mounted = false;     // a hugetlbfs is mounted
  // /dev/net/tun could be opened (net_tap), else why not.
  std::string tun_error;
  // Interfaces named by vdevs (net_af_packet's iface=, net_af_xdp's iface=)
  // and whether they exist in this network namespace.
  std::map<std::string, bool> interfaces;
  // net_memif role=client vdevs: their socket path and whether a socket is
  // there (the server side must be up: the PMD connects once, at start).
  std::map<std::string, bool> memif_sockets;
  // Each -a PCI address: its kernel driver ("" if none, "?" if no such device).
  std::map<std::string, std::string> pci_drivers;
  // PCI network devices bound to a DPDK-capable driver (for a run without -a).
  unsigned dpdk_bound_nics = 0;

  // Reads the facts from /proc, /sys and /dev for these arguments (which
  // interfaces and PCI devices to look at).
  static host_facts gather(const eal_args& args);
};

// Empty when DPDK can be started with these arguments on this host;
// otherwise one line saying what is missing and how to fix it.
[[nodiscard]] std::string preflight(const eal_args& args, const host_facts& facts);

// Drivers through which DPDK can own a PCI NIC.
[[nodiscard]] bool is_dpdk_driver(const std::string& driver);

}  // namespace sluice::dpdk
