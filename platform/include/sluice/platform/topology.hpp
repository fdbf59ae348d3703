#pragma once
// A snapshot of the machine through hwloc: packages, NUMA nodes, cores,
// hardware threads (PUs), caches, and network devices with their locality.
//
// discover() reads the real machine, or the topology named by the standard
// hwloc environment variables (HWLOC_SYNTHETIC="pack:2 numa:1 core:8 pu:2",
// HWLOC_XMLFILE=file.xml), so tests and `--print-plan` can plan for machines
// that are not this one. On such topologies binding is not real
// (is_this_system() is false): hwloc_set_cpubind "succeeds" but binds nothing,
// and sluice says so instead of pretending.
//
// Immutable after construction; any thread may read it. The hwloc handle
// inside is shared with the binding helpers (hwloc is thread-safe for
// read-only use).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/platform/cpu_list.hpp"

struct hwloc_topology;

namespace sluice::platform {

// A hardware thread (processing unit).
struct pu_info {
  unsigned os_index;      // the CPU number the OS uses (taskset, sched_getcpu)
  unsigned core;          // index into topology::cores()
  unsigned smt_rank;      // 0 for a core's first hardware thread, 1 for its sibling...
  bool allowed;           // in this process's allowed CPUs
};

// A physical core and its hardware threads.
struct core_info {
  unsigned index;         // logical index, 0..cores-1
  unsigned package;       // index into packages
  int numa_node;          // OS index of its NUMA node, -1 if none
  std::vector<unsigned> pus;  // OS indexes of its hardware threads
};

// A NUMA node: its memory and its CPUs.
struct numa_info {
  int os_index;  // the OS's node number (numactl, /sys/devices/system/node)
  std::uint64_t local_memory;  // as reported (do not size anything from it on VMs)
  cpu_list cpus;  // its PUs
};

// A CPU cache and the PUs that share it.
struct cache_info {
  unsigned level;         // 1, 2, 3...
  std::uint64_t size;  // bytes
  cpu_list cpus;          // the PUs that share it
};

// A network device and where it sits.
struct nic_info {
  std::string name;       // "eth0", "ens1f0"
  std::string pci;        // "0000:81:00.0", empty if not on PCI
  std::string address;    // MAC, if known
  int numa_node = -1;     // -1: no locality known (hwloc hangs it under the machine)
  cpu_list local_cpus;    // the PUs closest to it
};

// The machine's topology (see the file comment). Made by discover(),
// from_synthetic() or from_xml(); copyable (the hwloc handle is shared).
class topology {
 public:
  // The machine, or HWLOC_SYNTHETIC / HWLOC_XMLFILE when set.
  static result<topology> discover();
  // A synthetic topology in hwloc's syntax ("pack:2 numa:1 core:8 pu:2"), for
  // tests; binding on it is not real.
  static result<topology> from_synthetic(std::string_view description);
  // A topology saved by hwloc (lstopo file.xml), for tests and planning for
  // another machine; binding on it is not real.
  static result<topology> from_xml(const std::string& path);

  // Every hardware thread, allowed or not.
  [[nodiscard]] const std::vector<pu_info>& pus() const noexcept { return pus_; }
  // Every physical core.
  [[nodiscard]] const std::vector<core_info>& cores() const noexcept { return cores_; }
  // Every NUMA node (empty if hwloc reports none).
  [[nodiscard]] const std::vector<numa_info>& numa_nodes() const noexcept { return numa_; }
  // Every data or unified cache.
  [[nodiscard]] const std::vector<cache_info>& caches() const noexcept { return caches_; }
  // Every network device hwloc reports.
  [[nodiscard]] const std::vector<nic_info>& nics() const noexcept { return nics_; }
  // Packages (sockets).
  [[nodiscard]] unsigned packages() const noexcept { return packages_; }
  // Binding and memory placement are real (not a synthetic or XML topology).
  [[nodiscard]] bool is_this_system() const noexcept { return this_system_; }
  // Where the topology came from: "this machine", "synthetic: ...", "XML: path".
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  // OS indexes of the PUs this process may run on.
  [[nodiscard]] cpu_list allowed_cpus() const;
  // A PU by OS index, or nullptr.
  [[nodiscard]] const pu_info* pu(unsigned os_index) const noexcept;
  // A NIC by interface name or PCI address (full "0000:81:00.0" or short "81:00.0").
  [[nodiscard]] const nic_info* find_nic(std::string_view name_or_pci) const noexcept;
  // A few lines for people: packages, NUMA nodes, cores, PUs, caches, NICs.
  [[nodiscard]] std::string summary() const;

  // For binding.hpp: the hwloc topology (shared, read-only).
  [[nodiscard]] hwloc_topology* handle() const noexcept { return handle_.get(); }

 private:
  static result<topology> load(int mode, std::string_view arg);

  std::shared_ptr<hwloc_topology> handle_;
  std::vector<pu_info> pus_;
  std::vector<core_info> cores_;
  std::vector<numa_info> numa_;
  std::vector<cache_info> caches_;
  std::vector<nic_info> nics_;
  unsigned packages_ = 0;
  bool this_system_ = true;
  std::string source_;
};

}  // namespace sluice::platform
