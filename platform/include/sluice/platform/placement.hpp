#pragma once
// Placement: a pure function (topology, request) -> plan that says which CPU
// each loop runs on, its NUMA node, where its memory lives and which NIC queue
// it serves. Unit-tested on synthetic and XML topologies.
//
// Defaults: one loop per physical core of the allowed CPUs (hyperthread
// siblings unused unless `smt`); with a NIC, the cores of the NIC's NUMA node
// come first. A request that cannot be met is an error naming the flag.

#include <optional>
#include <string>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/platform/cpu_list.hpp"
#include "sluice/platform/topology.hpp"

namespace sluice::platform {

// What the placement flags ask for (app_options fills it in); every field's
// default means "no constraint".
struct placement_request {
  unsigned loops = 0;                 // --cores=N; 0: one per physical core (at most nic_queues when known)
  std::optional<cpu_list> cpuset;     // --cpuset=LIST: only these CPUs
  std::optional<int> numa_node;       // --numa-node=N: only this node's CPUs
  std::string nic;                    // --nic=NAME|PCI: cores near it first
  bool oversubscribe = false;         // --oversubscribe: more loops than cores
  bool smt = false;                   // --smt: hyperthread siblings count as cores
  bool nic_bound = false;             // the transport drives the NIC (one queue per loop)
  unsigned nic_queues = 0;            // queues the NIC offers (0: unknown, as many as loops)
  bool share_cores = false;           // --share-cores: ignore other processes' CPU claims (cpu_claim.hpp)
};

// Where one loop runs: its CPU, core, package, NUMA node, memory node and NIC
// queue.
struct loop_placement {
  unsigned loop;  // the loop's index (0..loops-1)
  unsigned cpu;        // OS CPU index the loop's thread is bound to
  unsigned core;       // topology core index
  unsigned package;  // topology package (socket) index
  int numa_node;       // -1 if the topology has no NUMA information
  int memory_node;     // where its pools live (-1: anywhere)
  int nic_queue;       // -1: no NIC queue (kernel transports)
};

// The result of make_plan(): one loop_placement per loop, and what people
// should know about it.
struct placement_plan {
  std::vector<loop_placement> loops;  // in loop order
  std::optional<nic_info> nic;        // the NIC asked for (--nic), if any
  bool binding_real = true;     // false on synthetic/XML topologies
  bool shares_cores = false;    // oversubscribed: some cores run several loops
  std::vector<std::string> notes;  // remarks for people (oversubscribed, not this machine, no NIC locality)
  // The plan for people, a line per loop.
  [[nodiscard]] std::string describe() const;
};

// The plan for `req` on `topo` (see the file comment); an error naming the flag
// when the request cannot be met. Pure: touches nothing.
[[nodiscard]] result<placement_plan> make_plan(const topology& topo, const placement_request& req);

}  // namespace sluice::platform
