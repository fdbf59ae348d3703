#include "upstream_pool.hpp"

#include <algorithm>
#include <bit>
#include <string>

namespace sluice::gateway {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t upstream_pool::hash(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

upstream_pool::upstream_pool(const pool_config& cfg, upstream_stats* stats) : cfg_(&cfg) {
  members_.resize(cfg.upstreams.size());
  for (unsigned i = 0; i < members_.size(); ++i) {
    member& m = members_[i];
    m.address = cfg.upstreams[i];
    m.name = cfg.upstream_names[i];
    m.stats = &stats[i];
  }
  if (cfg.policy == lb_policy::consistent_hash) {
    ring_.reserve(members_.size() * ring_points);
    for (unsigned i = 0; i < members_.size(); ++i) {
      for (unsigned p = 0; p < ring_points; ++p) {
        ring_.emplace_back(hash(cfg.upstream_names[i] + "#" + std::to_string(p)), i);
      }
    }
    std::sort(ring_.begin(), ring_.end());
  }
}

bool upstream_pool::available(unsigned i, time_point now) const noexcept {
  const member& m = members_[i];
  return m.check_up && now >= m.ejected_until;
}

std::optional<unsigned> upstream_pool::pick(std::uint64_t key, std::uint64_t tried, time_point now) noexcept {
  std::uint64_t up = 0;
  std::uint64_t untried = 0;
  for (unsigned i = 0; i < members_.size(); ++i) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    if (available(i, now)) up |= bit;
    if ((tried & bit) == 0) untried |= bit;
  }
  // Available and untried first; when none of the pool is available, any
  // untried one (see the header).
  if (std::uint64_t c = up & untried; c != 0) return choose(c, key);
  if (up == 0 && untried != 0) return choose(untried, key);
  return std::nullopt;
}

std::optional<unsigned> upstream_pool::choose(std::uint64_t candidates, std::uint64_t key) noexcept {
  const unsigned n = size();
  auto is_candidate = [candidates](unsigned i) { return (candidates >> i) & 1; };
  switch (cfg_->policy) {
    case lb_policy::round_robin:
      for (unsigned k = 0; k < n; ++k) {
        const unsigned i = (next_ + k) % n;
        if (is_candidate(i)) {
          next_ = i + 1;
          return i;
        }
      }
      break;
    case lb_policy::least_conn: {
      // The fewest in use; among equals, round-robin order.
      std::optional<unsigned> best;
      for (unsigned k = 0; k < n; ++k) {
        const unsigned i = (next_ + k) % n;
        if (is_candidate(i) && (!best || members_[i].active < members_[*best].active)) best = i;
      }
      if (best) next_ = *best + 1;
      return best;
    }
    case lb_policy::source_hash:
      for (unsigned k = 0; k < n; ++k) {
        const unsigned i = static_cast<unsigned>((key + k) % n);
        if (is_candidate(i)) return i;
      }
      break;
    case lb_policy::consistent_hash: {
      auto it = std::lower_bound(ring_.begin(), ring_.end(), std::pair<std::uint64_t, unsigned>{key, 0});
      for (std::size_t k = 0; k < ring_.size(); ++k, ++it) {
        if (it == ring_.end()) it = ring_.begin();
        if (is_candidate(it->second)) return it->second;
      }
      break;
    }
  }
  return std::nullopt;
}

void upstream_pool::succeeded(unsigned i) noexcept { members_[i].failures = 0; }

void upstream_pool::failed(unsigned i, time_point now) noexcept {
  member& m = members_[i];
  if (++m.failures < cfg_->max_fails) return;
  // Eject (again, if the last ejection ended and it failed once more).
  m.failures = 0;
  m.ejected_until = now + cfg_->eject_time;
  m.stats->ejections.add();
  m.stats->ejected_until_ns.set(static_cast<std::uint64_t>(m.ejected_until.time_since_epoch().count()));
}

void upstream_pool::checked(unsigned i, bool passed) noexcept {
  member& m = members_[i];
  if (!passed) m.stats->checks_failed.add();
  if (m.check_up) {
    m.check_fails = passed ? 0 : m.check_fails + 1;
    if (m.check_fails >= cfg_->check.fall) {
      m.check_up = false;
      m.check_passes = 0;
    }
  } else {
    m.check_passes = passed ? m.check_passes + 1 : 0;
    if (m.check_passes >= cfg_->check.rise) {
      m.check_up = true;
      m.check_fails = 0;
      m.failures = 0;
      m.ejected_until = {};  // a healthy check ends a passive ejection early
      m.stats->ejected_until_ns.set(0);
    }
  }
  m.stats->check_up.set(m.check_up ? 1 : 0);
}

void upstream_pool::acquire(unsigned i) noexcept {
  ++members_[i].active;
  members_[i].stats->active.add();
}

void upstream_pool::release(unsigned i) noexcept {
  --members_[i].active;
  members_[i].stats->active.sub();
}

}  // namespace sluice::gateway
