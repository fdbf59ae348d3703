#pragma once
// One loop's view of an upstream pool: which upstreams take traffic and
// which one a new connection or request goes to. (http) The idle keep-alive
// connections to each are in the http proxy's sluice::keepalive_pool, under
// the member's `keepalive` id.
//
// Shared-nothing: every loop has its own upstream_pool for each configured
// pool, with its own health verdicts (from its own checks and its own
// failures), counters and keep-alive connections; nothing is locked and no
// data-path decision crosses a core.
//
// Availability: an upstream takes traffic when its active health check says
// it is up (always, without checks) and it is not ejected. max_fails
// consecutive failures eject it for eject_time; after that it is tried
// again, and one success clears its failure count. When no upstream of the
// pool is available at all, the pool tries them anyway (better a try than a
// certain 502), still never one a request already tried.
//
// Owner core only.

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "gateway_stats.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/keepalive_pool.hpp"

namespace sluice::gateway {

class upstream_pool {
 public:
  struct member {
    endpoint address;
    std::string_view name;
    upstream_stats* stats = nullptr;
    bool check_up = true;              // the active health check's verdict
    unsigned check_passes = 0;         // consecutive, while down
    unsigned check_fails = 0;          // consecutive, while up
    unsigned failures = 0;             // consecutive passive failures
    time_point ejected_until{};        // ejected while now < this
    unsigned active = 0;               // connections in use from this loop
    keepalive_pool::upstream_id keepalive = keepalive_pool::none;  // its idle connections (http)
  };

  upstream_pool(const pool_config& cfg, upstream_stats* stats);
  upstream_pool(upstream_pool&&) noexcept = default;

  // The upstream for a new connection: one that `tried` (a bit per member)
  // does not hold, by the pool's policy; nullopt when none is left.
  // `key` is the hash the hashing policies use (client address, host or path).
  [[nodiscard]] std::optional<unsigned> pick(std::uint64_t key, std::uint64_t tried, time_point now) noexcept;

  // Outcomes, for passive ejection.
  void succeeded(unsigned i) noexcept;
  void failed(unsigned i, time_point now) noexcept;
  // An active health check's result.
  void checked(unsigned i, bool passed) noexcept;
  [[nodiscard]] bool available(unsigned i, time_point now) const noexcept;

  // Connections in use (least-conn counts these).
  void acquire(unsigned i) noexcept;
  void release(unsigned i) noexcept;

  [[nodiscard]] member& at(unsigned i) noexcept { return members_[i]; }
  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(members_.size()); }
  [[nodiscard]] const pool_config& config() const noexcept { return *cfg_; }

  // A stable 64-bit hash of bytes (FNV-1a, then mixed), for hash keys.
  [[nodiscard]] static std::uint64_t hash(std::string_view bytes) noexcept;

 private:
  [[nodiscard]] std::optional<unsigned> choose(std::uint64_t candidates, std::uint64_t key) noexcept;

  const pool_config* cfg_;
  std::vector<member> members_;
  // Consistent hashing: points on a ring (hash, member), sorted by hash;
  // each member owns `ring_points` points so load spreads evenly and a
  // member's removal moves only its own keys.
  static constexpr unsigned ring_points = 100;
  std::vector<std::pair<std::uint64_t, unsigned>> ring_;
  unsigned next_ = 0;  // round-robin position
};

}  // namespace sluice::gateway
