#pragma once
// One loop's neighbour cache: IPv4 address -> MAC (ARP, RFC 826;
// arp_cache) or IPv6 address -> MAC (Neighbour Discovery, RFC 4861;
// neighbour_cache): one template, so both families have the same bounds,
// expiry, retries and waiting-packet limits (the same arp_options), each
// counting into its own counters (neighbour_counters). For IPv6 the
// states map to RFC 4861's as: incomplete = INCOMPLETE (solicitations
// retried), reachable = REACHABLE, an expired reachable entry = STALE, and
// with `keep_stale` (ND) delay = DELAY and probe = PROBE: a stale entry's
// MAC is still used on its next use (lookup_or_probe), which starts DELAY:
// for delay_first_probe the upper layer may confirm the neighbour
// (confirm(): TCP's acknowledgements of new data) or a solicited
// advertisement come, either making it REACHABLE; else PROBE, unicast
// solicitations verify it (retry_interval apart, max_requests of them; an
// answer makes it reachable again, silence fails it). Without keep_stale
// (ARP) a stale entry is resolved again by broadcast, its packets held
// meanwhile. failed = unreachable (its packets dropped). With expiry,
// resolution by request and retry, and packets held while their next hop
// resolves (bounded in total and per neighbour; what does not fit, or whose
// neighbour never answers, is a counted drop).
//
// Forgery and floods (issue 20):
//  - A live neighbour (reachable, not expired) whose address another MAC
//    claims on the wire is not switched: the claim is counted
//    (arp_conflicts) and the known MAC is asked by unicast requests (as
//    Linux's probes of a changed address do). If it answers, it stays
//    (arp_confirmed); if it stays silent through max_requests probes, the
//    claimant is taken (arp_reassigned: a host did change its NIC).
//  - Packets waiting for resolution: when the shared queue is full, the
//    neighbour holding the most (then the one unanswered longest) gives up
//    its oldest packet to a newcomer holding fewer (arp_pending_evicted), so
//    a SYN flood's SYN-ACKs to sources that never answer cannot keep the
//    first packet to a new neighbour out; and when a probe window of the
//    table holds only neighbours still resolving, the one unanswered
//    longest gives up its slot.
//  - With keep_stale (ND, RFC 6583's table exhaustion): a new neighbour
//    never takes the slot of a live one (reachable and fresh, or in PROBE)
//    nor of the protected address (--gateway6); it takes an empty slot,
//    then a failed, then a stale one, then the one resolving longest, else
//    none (table_full). At most a quarter of the table is INCOMPLETE at a
//    time (more: table_full), and the slot an address hashes to is keyed
//    by per-process random multipliers (multiply-shift), so no sender can aim a flood at
//    a chosen neighbour's probe window.
//
// Shared-nothing: every loop has its own cache (DESIGN.md, "The user-space
// stack"); what one loop learns from the wire it tells the others through the
// mailboxes, and they fill their own caches (learn(..., from_peer)).
//
// Layout: a fixed, power-of-two table with linear probing inside a window of
// `probe_window` slots. Slots are never emptied once used (a failed or stale
// entry stays as a tombstone that a new neighbour may take over), so probe
// chains never break and nothing is allocated after construction.
//
// Owner core only. Time is an input (the loop's clock).

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "sluice/base/time.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet.hpp"
#include "sluice/inet/siphash.hpp"

namespace sluice::inet {

// The ARP cache's size and timings, part of the stack's options.
struct arp_options {
  // A learned entry is trusted this long, then resolved again on next use.
  duration reachable_time = std::chrono::seconds(60);
  // A request unanswered for this long is sent again, up to max_requests times.
  duration retry_interval = std::chrono::seconds(1);
  unsigned max_requests = 3;  // requests for one address before its held packets are dropped (unresolved)
  // ND: how long a stale neighbour in use waits in DELAY for the upper
  // layer's confirmation before it is probed (RFC 4861 DELAY_FIRST_PROBE_TIME).
  duration delay_first_probe = std::chrono::seconds(5);
  // Table slots (rounded up to a power of two).
  std::size_t capacity = 256;
  // Packets held for unresolved neighbours: in all, and per neighbour.
  std::size_t max_pending = 64;
  std::size_t max_pending_per_neighbour = 16;  // (see max_pending)
};

// Which of the stack's counters a neighbour cache counts into: ARP's or ND's.
struct neighbour_counters {
  counter inet_stats::*expired;          // entries found stale and resolved again
  counter inet_stats::*conflicts;        // a live neighbour's address claimed by another MAC
  counter inet_stats::*confirmed;        // ... and the known MAC answered
  counter inet_stats::*reassigned;       // ... and the claimant was taken
  counter inet_stats::*pending_evicted;  // held packets given up for another neighbour's
  drop_reason table_full;                // no slot for a new neighbour
  drop_reason pending_full;              // too many packets waiting
  drop_reason unresolved;                // a neighbour never answered

  // ARP's counters (arp_*).
  static neighbour_counters arp() noexcept {
    return {&inet_stats::arp_expired,     &inet_stats::arp_conflicts,      &inet_stats::arp_confirmed,
            &inet_stats::arp_reassigned,  &inet_stats::arp_pending_evicted, drop_reason::arp_table_full,
            drop_reason::arp_pending_full, drop_reason::arp_unresolved};
  }
  // Neighbour Discovery's (nd_*).
  static neighbour_counters nd() noexcept {
    return {&inet_stats::nd_expired,     &inet_stats::nd_conflicts,      &inet_stats::nd_confirmed,
            &inet_stats::nd_reassigned,  &inet_stats::nd_pending_evicted, drop_reason::nd_table_full,
            drop_reason::nd_pending_full, drop_reason::nd_unresolved};
  }
};

// The neighbour table of one stack (see the file comment), keyed by Addr:
// std::uint32_t (IPv4, host order) or ip_address (IPv6). Owner core only;
// allocates its table once, at construction.
template <class Addr>
class basic_neighbour_cache {
 public:
  // Slots a lookup probes from an address's home slot (see the file comment).
  static constexpr std::size_t probe_window = 8;
  // The address key (a parameter type).
  using addr_param = std::conditional_t<sizeof(Addr) <= 8, Addr, const Addr&>;

  // A table sized by opts, counting into the stack's stats (ARP's counters
  // unless told otherwise); keep_stale: the PROBE state (see the top).
  basic_neighbour_cache(const arp_options& opts, inet_stats& stats,
                        const neighbour_counters& counters = neighbour_counters::arp(), bool keep_stale = false);
  basic_neighbour_cache(const basic_neighbour_cache&) = delete;
  basic_neighbour_cache& operator=(const basic_neighbour_cache&) = delete;
  // Drops (and releases) every packet still held.
  ~basic_neighbour_cache();

  // The MAC of `ip` if it is known and fresh; nullptr otherwise.
  [[nodiscard]] const mac_address* lookup(addr_param ip, time_point now) const noexcept;
  // With keep_stale: lookup(), but a stale entry's MAC is returned too and
  // the entry enters DELAY (delayed set: the caller arms its maintenance
  // for next_due()); one in DELAY or PROBE gives its MAC. Without
  // keep_stale, the same as lookup().
  [[nodiscard]] const mac_address* lookup_or_probe(addr_param ip, time_point now, bool& delayed) noexcept;
  // The upper layer heard from ip (new data acknowledged, RFC 4861 7.3.1):
  // an entry in DELAY, PROBE or STALE is REACHABLE again. Cheap to call
  // when no entry is in DELAY (delaying() == 0, the caller's test).
  void confirm(addr_param ip, time_point now) noexcept;
  // ip's resolution failed (its entry is FAILED: no answer to max_requests).
  [[nodiscard]] bool unreachable(addr_param ip) const noexcept {
    const entry* e = find(ip);
    return e != nullptr && e->st == state::failed;
  }
  // Entries in DELAY (what makes confirm() worth calling).
  [[nodiscard]] std::size_t delaying() const noexcept { return delaying_n_; }

  // What hold() did with the packet.
  struct hold_result {
    bool held = false;          // p is now the cache's (else it was dropped, counted)
    bool send_request = false;  // the caller should send a request for ip now
  };
  // After lookup() missed: keeps p until ip resolves, starting resolution
  // if none is under way. p's frame must be complete but for the
  // destination MAC (filled in when it resolves).
  hold_result hold(addr_param ip, packet* p, time_point now) noexcept;

  // ND: ip is never given up for a new neighbour (the default router).
  void protect(addr_param ip) noexcept {
    protected_ = ip;
    has_protected_ = true;
  }

  // Records ip -> mac (an ARP message from the wire, or a peer loop). Creates
  // an entry only if `create` (we were the target, or a peer learned it);
  // otherwise only updates one that exists (RFC 826's merge rule). The held
  // packets of ip are handed to release(packet*) in the order they came.
  // Returns true if the entry is new or its MAC changed (worth telling peers).
  // Trusted: a peer loop's word (or a test's); the wire goes through
  // learn_from_wire.
  template <class Release>
  bool learn(addr_param ip, const mac_address& mac, time_point now, bool create, Release&& release) noexcept {
    bool changed = false;
    entry* e = find(ip);
    if (e == nullptr) {
      if (!create) return false;
      e = take_slot(ip, now);
      if (e == nullptr) {
        stats_.drop(c_.table_full);
        return false;
      }
      changed = true;
    } else if (e->st != state::reachable || e->mac != mac) {
      changed = true;
    } else if (e->probing) {
      (stats_.*c_.confirmed).add();  // a peer loop heard the known MAC answer this loop's probe
    }
    settle(*e, mac, now + opts_.reachable_time, release);
    return changed;
  }

  // What learn_from_wire() found.
  struct wire_result {
    bool changed = false;  // new or changed: worth telling peers
    bool probe = false;    // a live entry's MAC was claimed: ask probe_to (unicast) now
    mac_address probe_to;  // the MAC to probe when probe is set
    // The live entry's own MAC spoke, and peers were not told so within a
    // retry interval: worth telling them (when it answers us), since the
    // answer to one loop's probe may arrive on another loop's queue.
    bool confirm_peers = false;
    bool absent = false;  // (advertised) no entry here: nothing done (RFC 4861 7.2.5)
  };
  // An ARP message from the wire: learn() by RFC 826's merge rule, except
  // that a live entry's MAC is not replaced at once (see the top).
  template <class Release>
  wire_result learn_from_wire(addr_param ip, const mac_address& mac, time_point now, bool create,
                              Release&& release) noexcept {
    wire_result r;
    entry* e = find(ip);
    if (e != nullptr && e->st == state::reachable && e->due > now) {
      if (e->mac == mac) {
        if (e->probing) {
          e->probing = false;  // the known MAC is alive: the claim was false
          (stats_.*c_.confirmed).add();
        }
        e->due = now + opts_.reachable_time;
        if (e->confirm_due <= now) {  // at most one word to the peers per retry interval
          e->confirm_due = now + opts_.retry_interval;
          r.confirm_peers = true;
        }
        return r;
      }
      (stats_.*c_.conflicts).add();
      e->candidate = mac;  // the latest claim, taken if the known MAC stays silent
      if (!e->probing) {
        e->probing = true;
        e->probes = 1;
        e->probe_due = now + opts_.retry_interval;
        r.probe = true;
        r.probe_to = e->mac;
      }
      return r;
    }
    r.changed = learn(ip, mac, now, create, release);
    return r;
  }

  // A Neighbour Advertisement from the wire, by RFC 4861 7.2.5: mac is its
  // target link-layer option (nullptr: none); solicited, override: its S
  // and O flags. No entry (or a failed one): nothing (absent set; an
  // unsolicited advertisement creates nothing). INCOMPLETE: the MAC is
  // taken, REACHABLE if solicited, else STALE (verified on next use); the
  // held packets go. Known: O=0 with another MAC changes no MAC (a fresh
  // entry only goes STALE); otherwise a solicited answer refreshes it and
  // a different MAC replaces a stale one (STALE unless solicited), while a
  // live one's is claimed as learn_from_wire does (probed, not switched).
  template <class Release>
  wire_result learn_advert(addr_param ip, const mac_address* mac, bool solicited, bool override_flag, time_point now,
                           Release&& release) noexcept {
    wire_result r;
    entry* e = find(ip);
    if (e == nullptr || e->st == state::failed || e->st == state::empty) {
      r.absent = true;
      return r;
    }
    const time_point fresh_until = solicited ? now + opts_.reachable_time : now;
    if (e->st == state::incomplete) {
      if (mac == nullptr) return r;  // RFC 4861 7.2.5: no link-layer address, nothing to learn
      settle(*e, *mac, fresh_until, release);
      r.changed = true;
      return r;
    }
    const bool live = e->st == state::reachable && e->due > now;
    const bool same = mac == nullptr || *mac == e->mac;
    if (!same && !override_flag) {
      if (live) e->due = now;  // STALE: the next use verifies the known MAC
      return r;
    }
    if (live) {
      if (!same || solicited) {
        const mac_address m = same ? e->mac : *mac;
        return learn_from_wire(ip, m, now, false, release);
      }
      return r;  // unsolicited, the known MAC: unchanged
    }
    // STALE, DELAY or PROBE.
    if (!same) {
      e->mac = *mac;
      r.changed = true;
    } else if (!solicited) {
      return r;
    }
    leave_delay(*e);
    e->st = state::reachable;
    e->due = fresh_until;
    e->requests = 0;
    e->probing = false;
    return r;
  }

  // Retries and failures due by now: send_request(ip) for each neighbour to
  // ask again; the held packets of those that used up their requests are
  // dropped (unresolved).
  template <class Send>
  void tick(time_point now, Send&& send_request) noexcept {
    tick(now, send_request, [](addr_param, const mac_address&) {}, [](addr_param, const mac_address&) {});
  }
  // The same, and for live entries whose MAC was claimed: probe(ip, mac)
  // to ask the known MAC again, reassigned(ip, mac) when it never answered
  // and the claimant was taken (worth telling peers).
  template <class Send, class Probe, class Reassigned>
  void tick(time_point now, Send&& send_request, Probe&& probe, Reassigned&& reassigned) noexcept {
    for (entry& e : slots_) {
      if (e.probing && e.probe_due <= now) {
        if (e.st != state::reachable) {
          e.probing = false;
        } else if (e.probes >= opts_.max_requests) {
          e.probing = false;
          e.mac = e.candidate;
          e.due = now + opts_.reachable_time;
          (stats_.*c_.reassigned).add();
          reassigned(e.ip, e.mac);
        } else {
          ++e.probes;
          e.probe_due = now + opts_.retry_interval;
          probe(e.ip, e.mac);
        }
      }
      if (e.st == state::delay && e.due <= now) {
        // DELAY over, nothing confirmed it (RFC 4861 7.3.3): PROBE.
        leave_delay(e);
        e.st = state::probe;
        e.requests = 1;
        e.due = now + opts_.retry_interval;
        probe(e.ip, e.mac);
        continue;
      }
      if (e.st == state::probe && e.due <= now) {
        // PROBE (RFC 4861 7.3.3): unicast solicitations to the known MAC.
        if (e.requests >= opts_.max_requests) {
          e.st = state::failed;
        } else {
          ++e.requests;
          e.due = now + opts_.retry_interval;
          probe(e.ip, e.mac);
        }
        continue;
      }
      if (e.st != state::incomplete || e.due > now) continue;
      if (e.requests >= opts_.max_requests) {
        e.st = state::failed;
        --incomplete_n_;
        drop_pending(e.ip);
        e.pending = 0;
        continue;
      }
      ++e.requests;
      e.due = now + opts_.retry_interval;
      send_request(e.ip);
    }
  }
  // When tick() has something to do next; time_point::max() if nothing.
  [[nodiscard]] time_point next_due() const noexcept;

  // Packets held for unresolved neighbours, in all.
  [[nodiscard]] std::size_t pending() const noexcept { return pending_n_; }
  // Entries known and fresh (tests, metrics).
  [[nodiscard]] std::size_t reachable(time_point now) const noexcept;
  // Entries still resolving (INCOMPLETE).
  [[nodiscard]] std::size_t incomplete() const noexcept { return incomplete_n_; }

 private:
  enum class state : std::uint8_t { empty, incomplete, reachable, failed, delay, probe };
  struct entry {
    Addr ip{};
    mac_address mac;
    state st = state::empty;
    std::uint8_t requests = 0;  // requests sent for the current resolution
    std::uint16_t pending = 0;  // packets held for it
    time_point due{};           // reachable: expiry; incomplete: next retry
    time_point used{};          // for eviction: the least recently set goes first
    // A live entry's MAC claimed by another: the claimant, and the probes
    // of the known MAC (unicast requests) sent and next due.
    bool probing = false;
    std::uint8_t probes = 0;
    mac_address candidate;
    time_point probe_due{};
    time_point confirm_due{};  // the earliest time to tell peers again that the known MAC spoke
  };
  struct held_packet {
    Addr ip;
    packet* p;
  };

  [[nodiscard]] std::size_t home(addr_param ip) const noexcept;
  [[nodiscard]] entry* find(addr_param ip) noexcept;
  [[nodiscard]] const entry* find(addr_param ip) const noexcept;
  // A slot for a new neighbour on ip's probe path: an empty one, else the
  // stalest that is not resolving (ND: never a live or the protected one;
  // a failed one first), else the one resolving longest; nullptr if none.
  [[nodiscard]] entry* take_slot(addr_param ip, time_point now) noexcept;
  // e resolved to mac (or confirmed), fresh until `until` (now: STALE);
  // its held packets go to release.
  template <class Release>
  void settle(entry& e, const mac_address& mac, time_point until, Release&& release) noexcept {
    if (e.st == state::incomplete) --incomplete_n_;
    leave_delay(e);
    e.mac = mac;
    e.st = state::reachable;
    e.due = until;
    e.requests = 0;
    e.probing = false;
    if (e.pending != 0) {
      e.pending = 0;
      take_pending(e.ip, release);
    }
  }
  template <class Release>
  void take_pending(addr_param ip, Release&& release) noexcept {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < pending_n_; ++i) {
      if (held_[i].ip == ip) {
        release(held_[i].p);
      } else {
        held_[kept++] = held_[i];
      }
    }
    pending_n_ = kept;
  }
  void drop_pending(addr_param ip) noexcept;
  // e leaves DELAY (if it is there): the count follows.
  void leave_delay(entry& e) noexcept {
    if (e.st == state::delay) --delaying_n_;
  }
  // The queue is full: frees a place for a packet of `e` by dropping the
  // oldest packet of the neighbour that holds more (or as many and has
  // waited longer). False if none should give way.
  bool make_room_for(const entry& e) noexcept;

  arp_options opts_;
  inet_stats& stats_;
  neighbour_counters c_;
  bool keep_stale_ = false;
  siphash_key key_{};  // IPv6's slot hash (see the top)
  Addr protected_{};
  bool has_protected_ = false;
  std::size_t incomplete_n_ = 0;
  std::size_t delaying_n_ = 0;  // entries in DELAY
  std::size_t max_incomplete_ = 0;  // ND: a quarter of the slots
  std::vector<entry> slots_;
  std::size_t mask_ = 0;
  unsigned home_shift_ = 0;  // IPv6: 32 - log2(slots), home() takes the hash's top bits
  std::vector<held_packet> held_;
  std::size_t pending_n_ = 0;
};

// IPv4 neighbours (ARP).
using arp_cache = basic_neighbour_cache<std::uint32_t>;
// IPv6 neighbours (Neighbour Discovery).
using neighbour_cache = basic_neighbour_cache<ip_address>;

extern template class basic_neighbour_cache<std::uint32_t>;
extern template class basic_neighbour_cache<ip_address>;

}  // namespace sluice::inet
