#pragma once
// The EAL command line: the user's --dpdk-args, split like a shell would
// split them, read for what sluice must know before it starts anything
// (memory mode, devices, forbidden lcore flags), and completed with the lcore
// layout of the placement plan (sluice decides where loops run; a user's -l
// would contradict it, so it is refused with a reason).
//
// Pure functions of text and the plan: any thread, no DPDK call, so they are
// unit-tested without an EAL.

#include <string>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/platform/placement.hpp"

namespace sluice::dpdk {

// What the user's --dpdk-args say (see the file comment): the words, and the
// flags sluice must know about before it starts the EAL.
struct eal_args {
  std::vector<std::string> words;  // as given, split
  bool no_huge = false;          // --no-huge: ordinary memory instead of hugepages
  bool no_pci = false;           // --no-pci: no PCI device scan
  bool in_memory = false;        // --in-memory: no shared files
  bool has_file_prefix = false;  // --file-prefix given
  bool no_shconf = false;        // --no-shconf given
  bool has_memory_size = false;    // -m or --socket-mem
  std::vector<std::string> vdevs;  // "net_tap0,iface=sl0"
  std::vector<std::string> allow;  // -a / --allow PCI addresses
  std::string refused;             // the first lcore flag given (-l, -c, --lcores, --main-lcore)

  // Splits text into words (single and double quotes, backslash escapes)
  // and reads them. An unbalanced quote is an error.
  static result<eal_args> parse(std::string_view text);

  // A vdev's driver name ("net_tap0,iface=x" -> "net_tap") and one of its
  // key=value arguments ("" if absent).
  [[nodiscard]] static std::string driver_of(std::string_view vdev);
  // The value of `key` in a vdev's arguments ("net_tap0,iface=x", "iface" ->
  // "x"); "" if absent.
  [[nodiscard]] static std::string vdev_arg(std::string_view vdev, std::string_view key);
};

// A net_memif vdev with a MAC that stays the same across restarts: the
// PMD's default is random per run, so a peer that restarts comes back with
// a new MAC while the survivor's ARP cache (which does not let a live
// neighbour be redirected) still holds the old one, and the reconnected
// peer's frames are "not for us". Without mac=, one is derived from the
// socket path, the role and the id (locally administered, unicast); the two
// roles get different MACs. Any other vdev, or one with mac=, is returned
// unchanged.
[[nodiscard]] std::string memif_with_stable_mac(std::string_view vdev);

// The full argv for rte_eal_init: program name, the lcore layout from the
// plan (main lcore 0 on every planned CPU: loop threads are pinned by sluice
// and join the EAL as registered threads), --no-shconf unless the user chose
// a --file-prefix (or --in-memory), then the user's words (net_memif vdevs
// given a stable MAC, see memif_with_stable_mac).
[[nodiscard]] std::vector<std::string> eal_argv(const eal_args& args, const platform::placement_plan& plan,
                                                std::string_view program, int pid);

}  // namespace sluice::dpdk
