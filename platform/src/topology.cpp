#include "sluice/platform/topology.hpp"

#include <hwloc.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <map>

namespace sluice::platform {

namespace {

// Never destroyed (see topology::load); an atomic so the store is kept.
std::atomic<hwloc_topology_t> plugin_anchor{nullptr};

enum load_mode { from_system = 0, from_synthetic_text = 1, from_xml_file = 2 };

cpu_list to_list(hwloc_const_bitmap_t set) {
  cpu_list out;
  if (set == nullptr) return out;
  int i;
  hwloc_bitmap_foreach_begin(i, set) out.push_back(static_cast<unsigned>(i));
  hwloc_bitmap_foreach_end();
  return out;
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.0f GiB", static_cast<double>(b) / (1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(b) / (1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(b) / 1024);
  return buf;
}

}  // namespace

result<topology> topology::discover() { return load(from_system, {}); }
result<topology> topology::from_synthetic(std::string_view description) { return load(from_synthetic_text, description); }
result<topology> topology::from_xml(const std::string& path) { return load(from_xml_file, path); }

result<topology> topology::load(int mode, std::string_view arg) {
  // hwloc loads its discovery plugins while any topology exists and unloads
  // them with the last one. Keep them loaded for the life of the process:
  // reloading costs start-up time each time, and libpciaccess keeps memory
  // for good that LeakSanitizer reports once the plugin is unloaded.
  static std::once_flag once;
  std::call_once(once, [] {
    hwloc_topology_t a = nullptr;
    if (hwloc_topology_init(&a) == 0) plugin_anchor.store(a);
  });
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return error{"hwloc: cannot initialise a topology", {}};
  std::shared_ptr<hwloc_topology> handle(raw, [](hwloc_topology_t t) { hwloc_topology_destroy(t); });
  // Keep NICs (PCI devices with an OS device) to place loops near them.
  hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  // GPU and accelerator plugins (OpenCL, GL, CUDA...) find nothing a network
  // loop needs, cost start-up time, and their libraries leak at exit.
  for (const char* c : {"opencl", "gl", "cuda", "nvml", "rsmi", "levelzero"}) {
    hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, c);
  }
  topology t;
  std::string arg_z(arg);
  if (mode == from_synthetic_text) {
    if (hwloc_topology_set_synthetic(raw, arg_z.c_str()) != 0) {
      return error{"bad synthetic topology '" + arg_z + "'", {}};
    }
    t.source_ = "synthetic: " + arg_z;
  } else if (mode == from_xml_file) {
    if (hwloc_topology_set_xml(raw, arg_z.c_str()) != 0) return error{"cannot read topology XML " + arg_z, {}};
    t.source_ = "XML: " + arg_z;
  } else if (const char* s = std::getenv("HWLOC_SYNTHETIC"); s != nullptr && *s != '\0') {
    t.source_ = std::string("synthetic (HWLOC_SYNTHETIC): ") + s;
  } else if (const char* x = std::getenv("HWLOC_XMLFILE"); x != nullptr && *x != '\0') {
    t.source_ = std::string("XML (HWLOC_XMLFILE): ") + x;
  } else {
    t.source_ = "this machine";
  }
  if (hwloc_topology_load(raw) != 0) return error{"hwloc: cannot load the topology (" + t.source_ + ")", {}};
  t.this_system_ = hwloc_topology_is_thissystem(raw) != 0;
  t.handle_ = handle;

  // NUMA nodes.
  int nnuma = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < nnuma; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(raw, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    t.numa_.push_back({static_cast<int>(n->os_index), n->attr ? n->attr->numanode.local_memory : 0, to_list(n->cpuset)});
  }
  auto numa_of = [&](hwloc_const_bitmap_t cpus) {
    for (const auto& n : t.numa_) {
      hwloc_obj_t obj = hwloc_get_numanode_obj_by_os_index(raw, static_cast<unsigned>(n.os_index));
      if (obj != nullptr && hwloc_bitmap_isincluded(cpus, obj->cpuset)) return n.os_index;
    }
    return -1;
  };

  int npack = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_PACKAGE);
  t.packages_ = npack > 0 ? static_cast<unsigned>(npack) : 1;

  // Cores and their hardware threads. Without Core objects (e.g. "pu:4"),
  // every PU counts as a core of its own.
  int ncores = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_CORE);
  hwloc_obj_type_t core_type = ncores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  if (ncores <= 0) ncores = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_PU);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t c = hwloc_get_obj_by_type(raw, core_type, static_cast<unsigned>(i));
    hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(raw, HWLOC_OBJ_PACKAGE, c);
    core_info ci{static_cast<unsigned>(i), pkg ? pkg->logical_index : 0u, numa_of(c->cpuset), {}};
    unsigned rank = 0;
    int pu_id;
    hwloc_bitmap_foreach_begin(pu_id, c->cpuset) {
      ci.pus.push_back(static_cast<unsigned>(pu_id));
      t.pus_.push_back({static_cast<unsigned>(pu_id), ci.index, rank++, false});
    }
    hwloc_bitmap_foreach_end();
    t.cores_.push_back(std::move(ci));
  }
  std::sort(t.pus_.begin(), t.pus_.end(), [](const pu_info& a, const pu_info& b) { return a.os_index < b.os_index; });
  for (unsigned cpu : t.allowed_cpus()) {
    auto it = std::find_if(t.pus_.begin(), t.pus_.end(), [&](const pu_info& p) { return p.os_index == cpu; });
    if (it != t.pus_.end()) it->allowed = true;
  }

  // Data and unified caches.
  for (hwloc_obj_type_t type : {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE}) {
    int n = hwloc_get_nbobjs_by_type(raw, type);
    for (int i = 0; i < n; ++i) {
      hwloc_obj_t c = hwloc_get_obj_by_type(raw, type, static_cast<unsigned>(i));
      t.caches_.push_back({c->attr->cache.depth, c->attr->cache.size, to_list(c->cpuset)});
    }
  }

  // Network devices and where they sit.
  for (hwloc_obj_t o = hwloc_get_next_osdev(raw, nullptr); o != nullptr; o = hwloc_get_next_osdev(raw, o)) {
    if (o->attr->osdev.type != HWLOC_OBJ_OSDEV_NETWORK || o->name == nullptr) continue;
    nic_info nic;
    nic.name = o->name;
    for (hwloc_obj_t p = o->parent; p != nullptr; p = p->parent) {
      if (p->type == HWLOC_OBJ_PCI_DEVICE) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%01x", p->attr->pcidev.domain, p->attr->pcidev.bus,
                      p->attr->pcidev.dev, p->attr->pcidev.func);
        nic.pci = buf;
        break;
      }
    }
    if (const char* mac = hwloc_obj_get_info_by_name(o, "Address")) nic.address = mac;
    hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(raw, o);
    if (anchor != nullptr) {
      nic.local_cpus = to_list(anchor->cpuset);
      // Hung under the whole machine means no locality (a virtual NIC).
      if (anchor->parent != nullptr && hwloc_bitmap_weight(anchor->nodeset) == 1) {
        nic.numa_node = hwloc_bitmap_first(anchor->nodeset);
      }
    }
    t.nics_.push_back(std::move(nic));
  }
  return t;
}

cpu_list topology::allowed_cpus() const {
  cpu_list in_topology = to_list(hwloc_topology_get_allowed_cpuset(handle_.get()));
  if (!this_system_) return in_topology;
  // On the real machine, also honour the process's affinity (taskset, cgroups).
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) return in_topology;
  cpu_list out;
  for (unsigned c : in_topology)
    if (c < CPU_SETSIZE && CPU_ISSET(c, &mask)) out.push_back(c);
  return out;
}

const pu_info* topology::pu(unsigned os_index) const noexcept {
  for (const auto& p : pus_)
    if (p.os_index == os_index) return &p;
  return nullptr;
}

const nic_info* topology::find_nic(std::string_view key) const noexcept {
  for (const auto& n : nics_) {
    if (n.name == key || (!n.pci.empty() && (n.pci == key || n.pci.substr(5) == key))) return &n;
  }
  return nullptr;
}

std::string topology::summary() const {
  std::string out = "topology: " + source_ + (this_system_ ? "" : " (not this machine: binding is not real)") + "\n";
  std::size_t smt = 0;
  for (const auto& c : cores_) smt = std::max(smt, c.pus.size());
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %u package%s, %zu NUMA node%s, %zu cores, %zu hardware threads (%zu per core); allowed CPUs %s\n",
                packages_, packages_ == 1 ? "" : "s", numa_.size(), numa_.size() == 1 ? "" : "s", cores_.size(), pus_.size(),
                smt, format_cpu_list(allowed_cpus()).c_str());
  out += buf;
  for (const auto& n : numa_) {
    out += "  NUMA node " + std::to_string(n.os_index) + ": CPUs " + format_cpu_list(n.cpus);
    if (n.local_memory != 0) out += ", " + human_bytes(n.local_memory);
    out += "\n";
  }
  std::map<unsigned, std::pair<std::uint64_t, std::size_t>> by_level;
  for (const auto& c : caches_) {
    auto& e = by_level[c.level];
    e.first = c.size;
    ++e.second;
  }
  if (!by_level.empty()) {
    out += "  caches:";
    for (auto& [level, e] : by_level) out += " L" + std::to_string(level) + " " + human_bytes(e.first) + " x" + std::to_string(e.second);
    out += "\n";
  }
  if (nics_.empty()) out += "  NICs: none that hwloc sees\n";
  for (const auto& n : nics_) {
    out += "  NIC " + n.name + (n.pci.empty() ? "" : " (PCI " + n.pci + ")") + ": " +
           (n.numa_node >= 0 ? "NUMA node " + std::to_string(n.numa_node) + ", CPUs " + format_cpu_list(n.local_cpus)
                             : "no NUMA locality") + "\n";
  }
  return out;
}

}  // namespace sluice::platform
