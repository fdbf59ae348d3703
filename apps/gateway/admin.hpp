#pragma once
// The admin endpoint (--admin=HOST:PORT), served by loop 0 alone:
//   GET /metrics  Prometheus text format: per loop, connections, bytes,
//                 requests and responses, upstream errors and health,
//                 latency histograms, the loop's busy ratio
//   GET /healthz  200 "ok" while serving, 503 "stopping" once stopping
// It only reads counters (relaxed atomics the other loops write), so it
// never stops or slows a data-path loop.
//
// Owner core: loop 0.

#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "gateway_stats.hpp"
#include "object_pool.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/runtime.hpp"

namespace sluice::gateway {

class admin_handler final : public handler {
 public:
  admin_handler(runtime& rt, const config& cfg, const std::vector<std::unique_ptr<shard_stats>>& stats);
  void on_open(connection& c) noexcept override;
  void on_data(connection& c) noexcept override;
  void on_close(connection& c, close_reason why) noexcept override;

  // The metrics page as it reads now (owner core: it keeps the last busy
  // sample per loop).
  [[nodiscard]] std::string render_metrics();

 private:
  runtime& rt_;
  const config& cfg_;
  const std::vector<std::unique_ptr<shard_stats>>& stats_;
  // Per loop, the idle time and clock at the previous scrape (busy ratio
  // over the interval between scrapes).
  std::vector<std::uint64_t> last_idle_ns_;
  std::vector<time_point> last_at_;
  time_point started_;
  object_pool<http::request_parser> parsers_;  // one per admin connection, reused
};

}  // namespace sluice::gateway
