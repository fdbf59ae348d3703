#include "sluice/inet/arp_cache.hpp"

#include <algorithm>

namespace sluice::inet {

arp_cache::arp_cache(const arp_options& opts, inet_stats& stats) : opts_(opts), stats_(stats) {
  std::size_t cap = probe_window;
  while (cap < opts_.capacity) cap *= 2;
  slots_.resize(cap);
  mask_ = cap - 1;
  held_.resize(opts_.max_pending);
}

arp_cache::~arp_cache() {
  for (std::size_t i = 0; i < pending_n_; ++i) segment_unref(&held_[i].p->seg);
}

std::size_t arp_cache::home(std::uint32_t ip) const noexcept {
  // Fibonacci hashing: neighbours on one subnet differ in the low bits.
  return static_cast<std::size_t>((ip * 2654435769u) >> 8) & mask_;
}

arp_cache::entry* arp_cache::find(std::uint32_t ip) noexcept {
  return const_cast<entry*>(static_cast<const arp_cache*>(this)->find(ip));
}

const arp_cache::entry* arp_cache::find(std::uint32_t ip) const noexcept {
  const std::size_t h = home(ip);
  for (std::size_t i = 0; i < probe_window; ++i) {
    const entry& e = slots_[(h + i) & mask_];
    if (e.st == state::empty) return nullptr;
    if (e.ip == ip) return &e;
  }
  return nullptr;
}

arp_cache::entry* arp_cache::take_slot(std::uint32_t ip, time_point now) noexcept {
  const std::size_t h = home(ip);
  entry* victim = nullptr;
  for (std::size_t i = 0; i < probe_window; ++i) {
    entry& e = slots_[(h + i) & mask_];
    if (e.st == state::empty) {
      victim = &e;
      break;
    }
    if (e.st == state::incomplete) continue;  // never evict a neighbour with held packets
    if (victim == nullptr || e.used < victim->used) victim = &e;
  }
  if (victim == nullptr) return nullptr;
  *victim = entry{};
  victim->ip = ip;
  victim->used = now;
  return victim;
}

const mac_address* arp_cache::lookup(std::uint32_t ip, time_point now) const noexcept {
  const entry* e = find(ip);
  if (e == nullptr || e->st != state::reachable || e->due <= now) return nullptr;
  return &e->mac;
}

arp_cache::hold_result arp_cache::hold(std::uint32_t ip, packet* p, time_point now) noexcept {
  hold_result r;
  entry* e = find(ip);
  if (e == nullptr) {
    e = take_slot(ip, now);
    if (e == nullptr) {
      stats_.drop(drop_reason::arp_table_full);
      segment_unref(&p->seg);
      return r;
    }
  }
  // One request per resolution, not per packet: later packets only wait.
  if (e->st != state::incomplete) {
    // New, failed before, or stale: resolve (again) now.
    if (e->st == state::reachable) stats_.arp_expired.add();
    e->st = state::incomplete;
    e->requests = 1;
    e->due = now + opts_.retry_interval;
    e->used = now;
    r.send_request = true;
  }
  // Both bounds: one silent neighbour cannot take the whole queue.
  if (pending_n_ == held_.size() || e->pending >= opts_.max_pending_per_neighbour) {
    stats_.drop(drop_reason::arp_pending_full);
    segment_unref(&p->seg);
    return r;
  }
  held_[pending_n_++] = {ip, p};
  ++e->pending;
  r.held = true;
  return r;
}

void arp_cache::drop_pending(std::uint32_t ip) noexcept {
  take_pending(ip, [this](packet* p) {
    stats_.drop(drop_reason::arp_unresolved);
    segment_unref(&p->seg);
  });
}

time_point arp_cache::next_due() const noexcept {
  time_point t = time_point::max();
  for (const entry& e : slots_)
    if (e.st == state::incomplete) t = std::min(t, e.due);
  return t;
}

std::size_t arp_cache::reachable(time_point now) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [&](const entry& e) { return e.st == state::reachable && e.due > now; }));
}

}  // namespace sluice::inet
