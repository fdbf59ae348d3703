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
  // --tls: TLS over every connection (a client context per loop), the server
  // verified against tls_ca if given, tls_sni sent as SNI if not empty, and
  // with tls_resume each new connection offers the loop's last session.
  bool tls = false;
  std::string tls_ca;
  std::string tls_sni;
  bool tls_resume = false;
  // Close each connection after this many replies and open a new one in its
  // place (0: keep connections for the whole run).
  std::uint64_t conn_messages = 0;
  // Filled in by main before the workers start: when measuring begins, the
  // common origin of every worker's timeline.
  time_point measure_origin{};
};

}  // namespace sluice::bench
