#include "sluice/platform/placement.hpp"

#include <algorithm>
#include <cstdio>

namespace sluice::platform {

namespace {

std::string list_nics(const topology& t) {
  std::string out;
  for (const auto& n : t.nics()) out += (out.empty() ? "" : ", ") + n.name + (n.pci.empty() ? "" : " " + n.pci);
  return out.empty() ? "none" : out;
}

}  // namespace

result<placement_plan> make_plan(const topology& topo, const placement_request& req) {
  placement_plan plan;
  plan.binding_real = topo.is_this_system();
  const cpu_list allowed = topo.allowed_cpus();

  // 1. The CPUs we may use.
  cpu_list candidates = allowed;
  if (req.cpuset) {
    for (unsigned cpu : *req.cpuset) {
      if (topo.pu(cpu) == nullptr) {
        return error{"--cpuset=" + format_cpu_list(*req.cpuset) + ": CPU " + std::to_string(cpu) +
                         " does not exist (CPUs here: " + format_cpu_list(allowed) + ")", {}};
      }
      if (!std::binary_search(allowed.begin(), allowed.end(), cpu)) {
        return error{"--cpuset=" + format_cpu_list(*req.cpuset) + ": CPU " + std::to_string(cpu) +
                         " is not allowed for this process (allowed: " + format_cpu_list(allowed) + ")", {}};
      }
    }
    candidates = *req.cpuset;
  }
  if (req.numa_node) {
    auto it = std::find_if(topo.numa_nodes().begin(), topo.numa_nodes().end(),
                           [&](const numa_info& n) { return n.os_index == *req.numa_node; });
    if (it == topo.numa_nodes().end()) {
      std::string nodes;
      for (const auto& n : topo.numa_nodes()) nodes += (nodes.empty() ? "" : ",") + std::to_string(n.os_index);
      return error{"--numa-node=" + std::to_string(*req.numa_node) + ": no such NUMA node (nodes: " + nodes + ")", {}};
    }
    cpu_list on_node;
    for (unsigned c : candidates)
      if (std::binary_search(it->cpus.begin(), it->cpus.end(), c)) on_node.push_back(c);
    if (on_node.empty()) {
      return error{"--numa-node=" + std::to_string(*req.numa_node) + ": none of its CPUs (" + format_cpu_list(it->cpus) +
                       ") is allowed here", {}};
    }
    candidates = on_node;
  }
  if (!req.nic.empty()) {
    const nic_info* nic = topo.find_nic(req.nic);
    if (nic == nullptr) return error{"--nic=" + req.nic + ": unknown NIC (NICs hwloc sees: " + list_nics(topo) + ")", {}};
    plan.nic = *nic;
  }
  if (candidates.empty()) return error{"no CPU is allowed for this process", {}};

  // 2. Slots: each core's first allowed hardware thread; with smt, the
  // siblings after all first threads.
  struct slot {
    const pu_info* pu;
    const core_info* core;
  };
  std::vector<slot> slots;
  for (unsigned rank = 0;; ++rank) {
    bool any = false;
    for (const auto& core : topo.cores()) {
      // The rank-th candidate thread of this core.
      unsigned seen = 0;
      for (unsigned cpu : core.pus) {
        if (!std::binary_search(candidates.begin(), candidates.end(), cpu)) continue;
        if (seen++ == rank) {
          slots.push_back({topo.pu(cpu), &core});
          any = true;
          break;
        }
      }
    }
    if (!any || !req.smt) break;
  }
  // 3. Near the NIC first (stable: topology order otherwise).
  if (plan.nic && plan.nic->numa_node >= 0) {
    std::stable_partition(slots.begin(), slots.end(), [&](const slot& s) { return s.core->numa_node == plan.nic->numa_node; });
  } else if (plan.nic) {
    plan.notes.push_back("NIC " + plan.nic->name + " has no NUMA locality: cores in topology order");
  }

  // 4. How many loops.
  unsigned want = req.loops != 0 ? req.loops : static_cast<unsigned>(slots.size());
  // A port with a known number of queues: one loop per queue by default.
  if (req.loops == 0 && req.nic_bound && req.nic_queues != 0) want = std::min(want, req.nic_queues);
  if (want > slots.size() && !req.oversubscribe) {
    return error{"--cores=" + std::to_string(want) + ": only " + std::to_string(slots.size()) + " core" +
                     (slots.size() == 1 ? " is" : "s are") + " available (CPUs " + format_cpu_list(candidates) +
                     (req.smt ? "" : ", one loop per physical core") + "); add --oversubscribe to run more loops than cores",
                 {}};
  }
  if (req.nic_bound && req.nic_queues != 0 && want > req.nic_queues) {
    return error{"--cores=" + std::to_string(want) + ": the NIC offers only " + std::to_string(req.nic_queues) +
                     " queue pairs, one per loop", {}};
  }
  plan.shares_cores = want > slots.size();
  for (unsigned i = 0; i < want; ++i) {
    const slot& s = slots[i % slots.size()];
    int node = s.core->numa_node;
    plan.loops.push_back({i, s.pu->os_index, s.core->index, s.core->package, node, node,
                          req.nic_bound ? static_cast<int>(i) : -1});
  }
  if (plan.shares_cores) plan.notes.push_back("oversubscribed: several loops share a core");
  if (!plan.binding_real) plan.notes.push_back("not this machine's topology: loops will not really be pinned");
  return plan;
}

std::string placement_plan::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "plan: %zu loop%s, pinning %s\n", loops.size(), loops.size() == 1 ? "" : "s",
                binding_real ? "real (each loop's thread bound to its CPU)" : "NOT real on this topology");
  std::string out = buf;
  for (const auto& l : loops) {
    std::snprintf(buf, sizeof buf, "  loop %u: CPU %u (core %u, package %u, NUMA node %s), memory on %s%s\n", l.loop, l.cpu,
                  l.core, l.package, l.numa_node >= 0 ? std::to_string(l.numa_node).c_str() : "-",
                  l.memory_node >= 0 ? ("node " + std::to_string(l.memory_node)).c_str() : "any node",
                  l.nic_queue >= 0 ? (", NIC queue " + std::to_string(l.nic_queue)).c_str() : "");
    out += buf;
  }
  if (nic) {
    out += "  NIC " + nic->name + (nic->pci.empty() ? "" : " (PCI " + nic->pci + ")") +
           (nic->numa_node >= 0 ? ", NUMA node " + std::to_string(nic->numa_node) : ", no NUMA locality") + "\n";
  }
  for (const auto& n : notes) out += "  note: " + n + "\n";
  return out;
}

}  // namespace sluice::platform
