#pragma once
// What a sluice-bench run was asked to do, shared (read-only) by every worker.

#include <cstddef>
#include <cstdint>
#include <string>

#include "sluice/core/endpoint.hpp"
#include "sluice/base/time.hpp"

namespace sluice::bench {

struct settings {
  std::string mode;
  std::string target_text;
  endpoint target;
  unsigned connections = 50;
  std::size_t size = 64;  // echo/frames: message (payload) bytes
  unsigned pipeline = 0;  // 0: 1 in closed loop, 1000 in open loop
  duration run_time = std::chrono::seconds(5);
  duration warmup = std::chrono::seconds(1);
  double rate = 0;
  // Stop after this many messages in all (0: run for --duration).
  std::uint64_t messages = 0;
  bool json = false;
  // http: what to ask for and what the answer must be.
  std::string path = "/";
  unsigned expect_status = 200;
  bool check_body = false;
  std::string expect_body;
  // --plot: where, and how long each point of the timeline covers.
  std::string plot;
  duration plot_interval = std::chrono::milliseconds(100);
  // Filled in by main before the workers start: when measuring begins, the
  // common origin of every worker's timeline.
  time_point measure_origin{};
};

}  // namespace sluice::bench
