#pragma once
// A snapshot of counters for people and scripts: named values, gathered on
// request (control plane), never on the data path. Names are dotted paths,
// e.g. "loop0.datagrams_in", "dpdk.port0.imissed", "loop1.inet.drop.ipv4_bad_checksum".
//
// Any thread may build one from counters (they are relaxed atomics).

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

// One named counter value in a snapshot.
struct metric {
  std::string name;         // dotted path: "loop0.connections"
  std::uint64_t value = 0;  // the counter's value when the snapshot was taken
};

// A snapshot: metrics in the order they were gathered.
using metric_list = std::vector<metric>;

// "name value" lines, one per metric, in order.
[[nodiscard]] std::string format_metrics(const metric_list& metrics);

}  // namespace sluice
