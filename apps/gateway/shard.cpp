#include "shard.hpp"

namespace sluice::gateway {

namespace {

std::vector<upstream_pool> make_pools(const config& cfg, shard_stats& stats) {
  std::vector<upstream_pool> pools;
  pools.reserve(cfg.pools.size());
  for (std::size_t i = 0; i < cfg.pools.size(); ++i) pools.emplace_back(cfg.pools[i], stats.upstreams[i].get());
  return pools;
}

}  // namespace

shard::shard(loop_base& loop, const config& cfg, shard_stats& stats)
    : loop_(loop),
      cfg_(cfg),
      stats_(stats),
      pools_(make_pools(cfg, stats)),
      health_(loop, pools_),
      tcp_(*this),
      http_(*this) {
  health_.start();
  loop_.on_stop([this] {
    health_.stop();
    http_.stop();
    // tcp streams get the grace period: only their peers know when they end.
  });
}

std::unique_ptr<handler> shard::make_front(const listener_config& l) {
  if (l.mode == proxy_mode::tcp) return tcp_.make_front(l.pool_index);
  return http_.make_front(l);
}

void shard::upstream_connected(std::size_t pool, unsigned member, time_point started) noexcept {
  pools_[pool].succeeded(member);
  pools_[pool].at(member).stats->connects.add();
  stats_.connect_latency.record(loop_.now() - started);
}

}  // namespace sluice::gateway
