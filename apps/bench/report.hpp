#pragma once
// Formatting of sluice-bench results: human text and JSON.

#include <cstdint>
#include <string>

#include "sluice/core/histogram.hpp"

namespace sluice::bench {

struct summary {
  std::string mode;
  std::string target;
  unsigned connections = 0;
  std::size_t size = 0;
  unsigned pipeline = 0;
  double rate = 0;  // open loop: intended messages per second (0: closed loop)
  double seconds = 0;
  unsigned loops = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t closed_early = 0;
  std::uint64_t mismatches = 0;
  std::string first_error;
  histogram latency;
};

// "812us", "1.25ms", "3.1s".
std::string format_ns(std::uint64_t ns);
std::string to_text(const summary& s);
std::string to_json(const summary& s);

}  // namespace sluice::bench
