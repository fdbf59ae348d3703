#pragma once
// The EAL start shared by the benchmark programs in tests/perf: no PCI, no
// telemetry, warnings only; without hugepages (--no-huge -m 256 --no-shconf)
// unless the caller's extra arguments ask for --in-memory; extra is a
// space-separated list of further EAL arguments (--eal=...).

#include <rte_eal.h>
#include <rte_errno.h>

#include <string>
#include <vector>

namespace sluice::bench {

// Empty on success, else why the EAL did not start.
inline std::string init_eal(const char* program, const std::string& lcores, const std::string& extra) {
  std::vector<std::string> words = {program, lcores, "--no-pci", "--no-telemetry", "--log-level=*:warning"};
  if (extra.find("--in-memory") == std::string::npos) {
    for (const char* w : {"--no-huge", "-m", "256", "--no-shconf"}) words.emplace_back(w);
  }
  for (std::size_t pos = 0; pos < extra.size();) {
    std::size_t end = extra.find(' ', pos);
    if (end == std::string::npos) end = extra.size();
    if (end > pos) words.push_back(extra.substr(pos, end - pos));
    pos = end + 1;
  }
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    return std::string("rte_eal_init: ") + rte_strerror(rte_errno);
  }
  return {};
}

}  // namespace sluice::bench
