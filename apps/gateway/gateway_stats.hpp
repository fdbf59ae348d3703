#pragma once
// The gateway's counters, one block per loop: written by that loop only,
// read by the admin endpoint from loop 0 (relaxed atomics, see
// sluice/core/stats.hpp). Sized once from the configuration at start-up.

#include <array>
#include <cstddef>
#include <memory>
#include <vector>

#include "config.hpp"
#include "sluice/core/stats.hpp"
#include "sluice/base/time.hpp"

namespace sluice::gateway {

// A latency histogram with fixed upper bounds, as Prometheus histograms are
// exported (cumulative when rendered). Recording scans 18 bounds: no
// allocation, no lock.
class latency_histogram {
 public:
  static constexpr std::array<std::int64_t, 18> bounds_ns = {
      25'000,     50'000,      100'000,     250'000,     500'000,       1'000'000,
      2'500'000,  5'000'000,   10'000'000,  25'000'000,  50'000'000,    100'000'000,
      250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

  void record(duration d) noexcept {
    const std::int64_t ns = d.count() < 0 ? 0 : d.count();
    std::size_t i = 0;
    while (i < bounds_ns.size() && ns > bounds_ns[i]) ++i;
    buckets_[i].add();
    sum_ns_.add(static_cast<std::uint64_t>(ns));
  }
  // Observations in bucket i (i == bounds_ns.size(): above every bound).
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].get(); }
  [[nodiscard]] std::uint64_t sum_ns() const noexcept { return sum_ns_.get(); }

 private:
  std::array<counter, bounds_ns.size() + 1> buckets_;
  counter sum_ns_;
};

struct upstream_stats {
  counter requests;          // http exchanges sent to it; tcp sessions connected to it
  counter connects;          // connections opened to it
  counter connect_failures;  // refused, timed out, unreachable
  counter failures;          // after connecting: reset, closed or timed out before a response
  counter timeouts;          // http: no response within the response timeout
  counter ejections;         // taken out by passive ejection
  counter checks_failed;     // active health checks that failed
  // Whether it takes traffic on this loop: check_up and not ejected (the
  // steady clock is below ejected_until_ns); the admin endpoint combines them.
  counter check_up;          // gauge: the active health check says up
  counter ejected_until_ns;  // steady-clock time the passive ejection ends
  counter active;            // gauge: connections in use (least-conn's measure)
  counter idle;              // gauge: keep-alive connections waiting in the pool
};

// Why a TLS handshake (or, for record, a TLS connection) failed; one
// counter each per side (tls_side_stats::failures).
enum class tls_failure : std::uint8_t {
  not_tls,    // the first bytes were not a TLS handshake record (plaintext HTTP, garbage)
  handshake,  // the handshake failed: a malformed hello, no common version or cipher, an alert
  verify,     // the upstream's certificate did not verify (CA, name, dates)
  timeout,    // the handshake did not finish within timeouts.handshake
  truncated,  // the peer closed the connection during the handshake
  record,     // after the handshake: a bad record or a fatal alert
  memory,     // buffer memory ran out mid-record
  other,      // closed during the handshake for another reason (the other side left, shutdown)
};
inline constexpr std::size_t tls_failure_count = 8;
// The reason's name in metrics ("not_tls").
[[nodiscard]] constexpr const char* to_string(tls_failure f) noexcept {
  constexpr const char* names[tls_failure_count] = {"not_tls",   "handshake", "verify", "timeout",
                                                    "truncated", "record",    "memory", "other"};
  return names[static_cast<std::size_t>(f)];
}

// TLS counters of one side (client connections, or upstream connections) of
// one loop.
struct tls_side_stats {
  counter handshakes;  // handshakes completed
  counter resumed;     // of which resumed an earlier session
  counter tls12;       // completed with TLS 1.2
  counter tls13;       // completed with TLS 1.3
  std::array<counter, tls_failure_count> failures;  // by tls_failure
};

struct shard_stats {
  explicit shard_stats(const config& c) {
    for (const pool_config& p : c.pools) {
      upstreams.emplace_back(std::make_unique<upstream_stats[]>(p.upstreams.size()));
      for (std::size_t i = 0; i < p.upstreams.size(); ++i) upstreams.back()[i].check_up.set(1);
    }
  }
  counter sessions;             // gauge: downstream connections open (tcp and http)
  counter sessions_total;
  counter requests;             // http requests received (parsed heads)
  std::array<counter, 6> responses_by_class;  // index = status / 100 (0: none sent)
  counter bad_gateway;          // 502: no upstream could be reached, or it failed before answering
  counter gateway_timeout;      // 504: the upstream did not answer in time
  counter no_route;             // 404: no route matched and no default pool
  counter responses_cut;        // the upstream failed mid-response: the client was reset
  tls_side_stats tls_client;    // TLS terminated on client connections
  tls_side_stats tls_upstream;  // TLS originated to upstreams
  latency_histogram request_latency;   // http: request head parsed -> response complete
  latency_histogram connect_latency;   // upstream connect duration
  std::vector<std::unique_ptr<upstream_stats[]>> upstreams;  // [pool][upstream]
};

}  // namespace sluice::gateway
