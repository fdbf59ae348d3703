#include "sluice/inet/arp_cache.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

namespace sluice::inet {

namespace {

// Fibonacci hashing: neighbours on one subnet differ in the low bits.
std::uint32_t neighbour_hash(std::uint32_t ip, const siphash_key&) noexcept { return (ip * 2654435769u) >> 8; }
// IPv6: keyed (the sender picks the address, and 2^64 of them on link):
// multiply-shift with the process's random key (siphash.hpp), its top 32
// bits (home() takes the top ones of those: a product's low bits depend
// only on the inputs' low bits, which a sender could hold still).
std::uint32_t neighbour_hash(const ip_address& a, const siphash_key& k) noexcept {
  return static_cast<std::uint32_t>(multiply_shift16(a.data(), k) >> 32);
}

}  // namespace

template <class Addr>
basic_neighbour_cache<Addr>::basic_neighbour_cache(const arp_options& opts, inet_stats& stats,
                                                   const neighbour_counters& counters, bool keep_stale)
    : opts_(opts), stats_(stats), c_(counters), keep_stale_(keep_stale) {
  std::size_t cap = probe_window;
  while (cap < opts_.capacity) cap *= 2;
  slots_.resize(cap);
  mask_ = cap - 1;
  home_shift_ = 32 - static_cast<unsigned>(std::countr_zero(cap));  // the hash's top log2(cap) bits
  max_incomplete_ = keep_stale_ ? cap / 4 : cap;
  if constexpr (!std::is_same_v<Addr, std::uint32_t>) {
    static const siphash_key process_key = make_secret_key();  // one per process, on first use
    key_ = process_key;
  }
  held_.resize(opts_.max_pending);
}

template <class Addr>
basic_neighbour_cache<Addr>::~basic_neighbour_cache() {
  for (std::size_t i = 0; i < pending_n_; ++i) segment_unref(&held_[i].p->seg);
}

template <class Addr>
std::size_t basic_neighbour_cache<Addr>::home(addr_param ip) const noexcept {
  if constexpr (std::is_same_v<Addr, std::uint32_t>) {
    return static_cast<std::size_t>(neighbour_hash(ip, key_)) & mask_;
  } else {
    return static_cast<std::size_t>(neighbour_hash(ip, key_) >> home_shift_);
  }
}

template <class Addr>
typename basic_neighbour_cache<Addr>::entry* basic_neighbour_cache<Addr>::find(addr_param ip) noexcept {
  return const_cast<entry*>(static_cast<const basic_neighbour_cache*>(this)->find(ip));
}

template <class Addr>
const typename basic_neighbour_cache<Addr>::entry* basic_neighbour_cache<Addr>::find(addr_param ip) const noexcept {
  const std::size_t h = home(ip);
  for (std::size_t i = 0; i < probe_window; ++i) {
    const entry& e = slots_[(h + i) & mask_];
    if (e.st == state::empty) return nullptr;
    if (e.ip == ip) return &e;
  }
  return nullptr;
}

template <class Addr>
typename basic_neighbour_cache<Addr>::entry* basic_neighbour_cache<Addr>::take_slot(addr_param ip, time_point now) noexcept {
  const std::size_t h = home(ip);
  entry* victim = nullptr;
  entry* resolving = nullptr;
  for (std::size_t i = 0; i < probe_window; ++i) {
    entry& e = slots_[(h + i) & mask_];
    if (e.st == state::empty) {
      victim = &e;
      break;
    }
    if (has_protected_ && e.ip == protected_) continue;
    if (e.st == state::incomplete) {
      // The one asked most, then longest, unanswered: a flood's.
      if (resolving == nullptr || e.requests > resolving->requests ||
          (e.requests == resolving->requests && e.used < resolving->used)) {
        resolving = &e;
      }
      continue;
    }
    if (keep_stale_) {
      // ND: a live neighbour keeps its slot; a failed one goes before a stale one.
      if (e.st == state::probe || e.st == state::delay || (e.st == state::reachable && e.due > now)) continue;
      if (victim == nullptr || (e.st == state::failed) > (victim->st == state::failed) ||
          ((e.st == state::failed) == (victim->st == state::failed) && e.used < victim->used)) {
        victim = &e;
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
      (stats_.*c_.pending_evicted).add(victim->pending);
      take_pending(victim->ip, [this](packet* p) {
        stats_.drop(c_.unresolved);
        segment_unref(&p->seg);
      });
    }
  }
  if (victim == nullptr) return nullptr;
  if (victim->st == state::incomplete) --incomplete_n_;
  leave_delay(*victim);
  *victim = entry{};
  victim->ip = ip;
  victim->used = now;
  return victim;
}

template <class Addr>
const mac_address* basic_neighbour_cache<Addr>::lookup(addr_param ip, time_point now) const noexcept {
  const entry* e = find(ip);
  if (e == nullptr || e->st != state::reachable || e->due <= now) return nullptr;
  return &e->mac;
}

template <class Addr>
const mac_address* basic_neighbour_cache<Addr>::lookup_or_probe(addr_param ip, time_point now,
                                                                bool& delayed) noexcept {
  delayed = false;
  if (!keep_stale_) return lookup(ip, now);
  entry* e = find(ip);
  if (e == nullptr) return nullptr;
  if (e->st == state::probe || e->st == state::delay) return &e->mac;
  if (e->st != state::reachable) return nullptr;
  if (e->due <= now) {
    // STALE, used: DELAY, the MAC still in use meanwhile (RFC 4861 7.3.3).
    (stats_.*c_.expired).add();
    e->st = state::delay;
    ++delaying_n_;
    e->requests = 0;
    e->due = now + opts_.delay_first_probe;
    e->probing = false;
    delayed = true;
  }
  return &e->mac;
}

template <class Addr>
void basic_neighbour_cache<Addr>::confirm(addr_param ip, time_point now) noexcept {
  entry* e = find(ip);
  if (e == nullptr || (e->st != state::delay && e->st != state::probe && e->st != state::reachable)) return;
  leave_delay(*e);
  e->st = state::reachable;
  e->due = now + opts_.reachable_time;
  e->requests = 0;
}

template <class Addr>
typename basic_neighbour_cache<Addr>::hold_result basic_neighbour_cache<Addr>::hold(addr_param ip, packet* p, time_point now) noexcept {
  hold_result r;
  entry* e = find(ip);
  if ((e == nullptr || e->st != state::incomplete) && incomplete_n_ >= max_incomplete_) {
    // ND: a quarter of the table resolving already (a scan or a flood).
    stats_.drop(c_.table_full);
    segment_unref(&p->seg);
    return r;
  }
  if (e == nullptr) {
    e = take_slot(ip, now);
    if (e == nullptr) {
      stats_.drop(c_.table_full);
      segment_unref(&p->seg);
      return r;
    }
  }
  // One request per resolution, not per packet: later packets only wait.
  if (e->st != state::incomplete) {
    // New, failed before, or stale: resolve (again) now.
    if (e->st == state::reachable) (stats_.*c_.expired).add();
    leave_delay(*e);
    e->st = state::incomplete;
    ++incomplete_n_;
    e->requests = 1;
    e->due = now + opts_.retry_interval;
    e->used = now;
    r.send_request = true;
  }
  // Both bounds: one silent neighbour cannot take the whole queue, and a
  // full queue makes room for a neighbour holding fewer.
  if (e->pending >= opts_.max_pending_per_neighbour || (pending_n_ == held_.size() && !make_room_for(*e))) {
    stats_.drop(c_.pending_full);
    segment_unref(&p->seg);
    return r;
  }
  held_[pending_n_++] = {ip, p};
  ++e->pending;
  r.held = true;
  return r;
}

template <class Addr>
bool basic_neighbour_cache<Addr>::make_room_for(const entry& e) noexcept {
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
    stats_.drop(c_.pending_full);
    (stats_.*c_.pending_evicted).add();
    segment_unref(&held_[i].p->seg);
    std::copy(held_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
              held_.begin() + static_cast<std::ptrdiff_t>(pending_n_), held_.begin() + static_cast<std::ptrdiff_t>(i));
    --pending_n_;
    --v->pending;
    return true;
  }
  return false;
}

template <class Addr>
void basic_neighbour_cache<Addr>::drop_pending(addr_param ip) noexcept {
  take_pending(ip, [this](packet* p) {
    stats_.drop(c_.unresolved);
    segment_unref(&p->seg);
  });
}

template <class Addr>
time_point basic_neighbour_cache<Addr>::next_due() const noexcept {
  time_point t = time_point::max();
  for (const entry& e : slots_) {
    if (e.st == state::incomplete || e.st == state::delay || e.st == state::probe) t = std::min(t, e.due);
    if (e.probing) t = std::min(t, e.probe_due);
  }
  return t;
}

template <class Addr>
std::size_t basic_neighbour_cache<Addr>::reachable(time_point now) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(slots_.begin(), slots_.end(), [&](const entry& e) { return e.st == state::reachable && e.due > now; }));
}

template class basic_neighbour_cache<std::uint32_t>;
template class basic_neighbour_cache<ip_address>;

}  // namespace sluice::inet
