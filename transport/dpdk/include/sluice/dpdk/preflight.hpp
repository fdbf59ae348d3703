#pragma once
// What DPDK needs from the machine, checked before anything is started, with
// the missing piece said in plain words: hugepages (or --no-huge), a port
// (a --vdev, or a PCI NIC bound to a DPDK driver rather than a kernel one),
// the permissions its virtual devices need, and the stack's address. The
// facts are gathered from /proc and /sys (host_facts::gather) and judged by
// a pure function (preflight), which the unit tests feed with made-up facts.
//
// Any thread; gather() only reads files and calls if_nametoindex.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  std::uint64_t hugepage_kb = 0;      // their size (Hugepagesize), KiB
  bool hugetlbfs_mounted = false;     // a hugetlbfs is mounted
  // /dev/net/tun could be opened (net_tap), else why not.
  std::string tun_error;
  // Interfaces named by vdevs (net_af_packet's iface=, net_af_xdp's iface=)
  // and whether they exist in this network namespace.
  std::map<std::string, bool> interfaces;
  // net_memif role=client vdevs: their socket path and whether a socket is
  // there (the server side must be up: the PMD connects once, at start).
  std::map<std::string, bool> memif_sockets;
  // net_af_xdp: what AF_XDP needs, for the vdev's interface (gathered with
  // ethtool ioctls, which see this network namespace, unlike /sys).
  struct af_xdp_facts {
    std::string iface;            // the vdev's iface=
    std::string driver;           // the interface's kernel driver ("veth", "ice", ...); "" if unknown
    unsigned queues = 0;          // its combined channels as the PMD counts them (1 if none); 0 if unknown
    std::string peer;             // veth: the other end, when it is in this namespace
    bool peer_tx_checksum = false;  // that end hands the kernel's partial checksums to us
    bool peer_elsewhere = false;  // veth whose other end is in another namespace (not checked)
  };
  std::vector<af_xdp_facts> af_xdp;  // one per net_af_xdp vdev whose interface exists
  std::string libxdp_object;      // xsk_def_xdp_prog.o found here ("" if not found)
  std::string libxdp_object_dirs; // where it was looked for
  bool bpffs_mounted = false;     // a bpf filesystem at /sys/fs/bpf (libxdp's dispatcher needs it)
  std::uint64_t memlock_limit = 0;  // RLIMIT_MEMLOCK soft limit, bytes (UINT64_MAX: unlimited)
  bool memlock_charged_to_memcg = true;  // kernel >= 5.11: AF_XDP memory is not limited by RLIMIT_MEMLOCK
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

// What AF_XDP will do on these facts, for --print-plan and start-up: the
// mode (copy or zero-copy), queues and loops, the XDP program, bpffs, the
// locked-memory limit, and warnings (the veth peer's checksum offload). One
// line per item, each starting "  af_xdp: ". Empty without a net_af_xdp vdev.
[[nodiscard]] std::string describe_af_xdp(const eal_args& args, const host_facts& facts, unsigned loops);

// Warnings that do not stop the start (the veth peer's TX checksum offload
// is on): one line each, for stderr at start-up.
[[nodiscard]] std::vector<std::string> preflight_warnings(const eal_args& args, const host_facts& facts);

// The EAL memory a run uses (issue 21): the user's --no-huge is kept; else
// hugepages when some are reserved and free (with --in-memory added when no
// hugetlbfs is mounted); else ordinary pages as the fallback (--no-huge, and
// -m 512 unless the user gave a size). `note` says which, for --print-plan
// and start-up. A user's --in-memory without free hugepages is left for
// preflight() to refuse.
struct memory_choice {
  eal_args args;     // what to start the EAL with (words and flags)
  std::string note;  // one line for people
};
// The memory_choice for these arguments on this host (see above).
[[nodiscard]] memory_choice choose_memory(const eal_args& args, const host_facts& facts);

// A net_memif vdev's server socket as host_facts::memif_sockets names it:
// "@NAME" for an abstract socket (the PMD's default), else the path.
[[nodiscard]] std::string memif_socket_name(const std::string& vdev);
// Whether a server listens on that socket now: an abstract one in this
// network namespace's /proc/net/unix, a path as a socket file. Any thread.
[[nodiscard]] bool memif_server_listening(const std::string& vdev);
// Which listening socket serves that name now: its inode from
// /proc/net/unix (the line with the listening flag), or for a path that
// this namespace does not list, the socket file's inode with the top bit
// set; 0 when none listens. A new server process has a new one. Any thread.
[[nodiscard]] std::uint64_t memif_listener_id(const std::string& vdev);

// Drivers through which DPDK can own a PCI NIC.
[[nodiscard]] bool is_dpdk_driver(const std::string& driver);

}  // namespace sluice::dpdk
