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
  entry* resolving = nullptr;
  for (std::size_t i = 0; i < probe_window; ++i) {
    entry& e = slots_[(h + i) & mask_];
    if (e.st == state::empty) {
      victim = &e;
      break;
    }
    if (e.st == state::incomplete) {
      // The one asked most, then longest, unanswered: a flood's.
      if (resolving == nullptr || e.requests > resolving->requests ||
          (e.requests == resolving->requests && e.used < resolving->used)) {
        resolving = &e;
      }
      continue;
    }
    if (victim == nullptr || e.used < victim->used) victim = &e;
  }
  if (victim == nullptr && resolving != nullptr && resolving->used < now) {
    // Every slot here is resolving: the neighbour unanswered longest gives
    // way (not one that started this very instant: no churn in a burst).
    victim = resolving;
    if (victim->pending != 0) {
      stats_.arp_pending_evicted.add(victim->pending);
      take_pending(victim->ip, [this](packet* p) {
        stats_.drop(drop_reason::arp_unresolved);
        segment_unref(&p->seg);
      });
    }
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
  // Both bounds: one silent neighbour cannot take the whole queue, and a
  // full queue makes room for a neighbour holding fewer.
  if (e->pending >= opts_.max_pending_per_neighbour || (pending_n_ == held_.size() && !make_room_for(*e))) {
    stats_.drop(drop_reason::arp_pending_full);
    segment_unref(&p->seg);
    return r;
  }
  held_[pending_n_++] = {ip, p};
  ++e->pending;
  r.held = true;
  return r;
}

bool arp_cache::make_room_for(const entry& e) noexcept {
  entry* v = nullptr;
  for (entry& x : slots_) {
    if (x.pending == 0 || &x == &e) continue;
    if (v == nullptr || x.pending > v->pending ||
        (x.pending == v->pending && (x.requests > v->requests || (x.requests == v->requests && x.used < v->used)))) {
      v = &x;
    }
  }
  // Give way only to one holding fewer, or as many but waiting less long.
  if (v == nullptr || v->pending < e.pending ||
      (v->pending == e.pending && (v->requests < e.requests || (v->requests == e.requests && v->used >= e.used)))) {
    return false;
  }
  for (std::size_t i = 0; i < pending_n_; ++i) {
    if (held_[i].ip != v->ip) continue;
    stats_.drop(drop_reason::arp_pending_full);
    stats_.arp_pending_evicted.add();
    segment_unref(&held_[i].p->seg);
    std::copy(held_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
              held_.begin() + static_cast<std::ptrdiff_t>(pending_n_), held_.begin() + static_cast<std::ptrdiff_t>(i));
    --pending_n_;
    --v->pending;
    return true;
  }
  return false;
}

void arp_cache::drop_pending(std::uint32_t ip) noexcept {
  take_pending(ip, [this](packet* p) {
    stats_.drop(drop_reason::arp_unresolved);
    segment_unref(&p->seg);
  });
}

time_point arp_cache::next_due() const noexcept {
  time_point t = time_point::max();
  for (const entry& e : slots_) {
    if (e.st == state::incomplete) t = std::min(t, e.due);
    if (e.probing) t = std::min(t, e.probe_due);
  }
  return t;
}

std::size_t arp_cache::reachable(time_point now) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [&](const entry& e) { return e.st == state::reachable && e.due > now; }));
}

}  // namespace sluice::inet
