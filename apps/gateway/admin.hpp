#pragma once
// The admin endpoint (--admin=HOST:PORT), served by loop 0 alone:
//   GET /metrics  Prometheus text format: per loop, connections, bytes,
//                 requests and responses, upstream errors and health,
//                 latency histograms, the loop's busy ratio; TLS
//                 handshakes, resumptions, versions and failures by reason,
//                 per side (client, upstream), summed over the loops
//   GET /healthz  200 "ok" while serving, 503 "stopping" once stopping
// It only reads counters (relaxed atomics the other loops write), so it
// never stops or slows a data-path loop.
//
// It answers GET and HEAD only (405 with Allow otherwise), takes small
// requests (a 1k request line, an 8k head, 32 fields, no body: 414, 431,
// 413), and a request must arrive whole within the header timeout
// (timeouts.header, --header-timeout: 10s by default) of when the
// connection began to wait for it: 408 and close if part of one came, a
// quiet close if none did. A slow or idle client cannot hold it open.
//
// Each admin connection has its own session (sluice::sessions): its request
// parser and its request deadline.
//
// Owner core: loop 0.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "gateway_stats.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/http/request_deadline.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice/core/session.hpp"
#include "sluice/core/timer_wheel.hpp"

namespace sluice::gateway {

class admin_endpoint {
 public:
  admin_endpoint(runtime& rt, const config& cfg, const std::vector<std::unique_ptr<shard_stats>>& stats);
  admin_endpoint(const admin_endpoint&) = delete;
  admin_endpoint& operator=(const admin_endpoint&) = delete;

  // The handler to listen with (on loop 0).
  [[nodiscard]] handler& front() noexcept { return sessions_; }

  // The limits of an admin request (see above).
  [[nodiscard]] static http::limits request_limits() noexcept;

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

  // One per admin connection.
  struct session {
    session(admin_endpoint*& a, connection&) noexcept;
    admin_endpoint* owner;
    std::optional<http::request_parser> parser;  // empty: no memory for it
    http::request_deadline deadline;              // the next request must be whole in time
    void on_open(connection& c) noexcept;
    void on_data(connection& c) noexcept;
    void on_close(connection& c, close_reason why) noexcept;
  };
  // Writes a whole response (a HEAD gets the head only); false if refused.
  [[nodiscard]] static bool respond(connection& c, int code, const char* type, std::string_view body, bool head_only,
                                    bool keep_alive, std::string_view extra = {});
  sessions<session, admin_endpoint*> sessions_;
};

}  // namespace sluice::gateway
