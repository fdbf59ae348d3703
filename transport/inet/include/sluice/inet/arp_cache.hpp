#pragma once
// One loop's neighbour cache (RFC 826): IPv4 address -> MAC, with expiry,
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
#include <vector>

#include "sluice/base/time.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/inet/packet.hpp"

namespace sluice::inet {

// The ARP cache's size and timings, part of the stack's options.
struct arp_options {
  // A learned entry is trusted this long, then resolved again on next use.
  duration reachable_time = std::chrono::seconds(60);
  // A request unanswered for this long is sent again, up to max_requests times.
  duration retry_interval = std::chrono::seconds(1);
  unsigned max_requests = 3;  // requests for one address before its held packets are dropped (arp_unresolved)
  // Table slots (rounded up to a power of two).
  std::size_t capacity = 256;
  // Packets held for unresolved neighbours: in all, and per neighbour.
  std::size_t max_pending = 64;
  std::size_t max_pending_per_neighbour = 16;  // (see max_pending)
};

// The neighbour table of one stack (see the file comment). Owner core only;
// allocates its table once, at construction.
class arp_cache {
 public:
  // Slots a lookup probes from an address's home slot (see the file comment).
  static constexpr std::size_t probe_window = 8;

  // A table sized by opts, counting into the stack's stats.
  arp_cache(const arp_options& opts, inet_stats& stats);
  arp_cache(const arp_cache&) = delete;
  arp_cache& operator=(const arp_cache&) = delete;
  // Drops (and releases) every packet still held.
  ~arp_cache();

  // The MAC of `ip` if it is known and fresh; nullptr otherwise.
  [[nodiscard]] const mac_address* lookup(std::uint32_t ip, time_point now) const noexcept;

  // What hold() did with the packet.
  struct hold_result {
    bool held = false;          // p is now the cache's (else it was dropped, counted)
    bool send_request = false;  // the caller should send a request for ip now
  };
  // After lookup() missed: keeps p until ip resolves, starting resolution
  // if none is under way. p's frame must be complete but for the
  // destination MAC (filled in when it resolves).
  hold_result hold(std::uint32_t ip, packet* p, time_point now) noexcept;

  // Records ip -> mac (an ARP message from the wire, or a peer loop). Creates
  // an entry only if `create` (we were the target, or a peer learned it);
  // otherwise only updates one that exists (RFC 826's merge rule). The held
  // packets of ip are handed to release(packet*) in the order they came.
  // Returns true if the entry is new or its MAC changed (worth telling peers).
  // Trusted: a peer loop's word (or a test's); the wire goes through
  // learn_from_wire.
  template <class Release>
  bool learn(std::uint32_t ip, const mac_address& mac, time_point now, bool create, Release&& release) noexcept {
    bool changed = false;
    entry* e = find(ip);
    if (e == nullptr) {
      if (!create) return false;
      e = take_slot(ip, now);
      if (e == nullptr) {
        stats_.drop(drop_reason::arp_table_full);
        return false;
      }
      changed = true;
    } else if (e->st != state::reachable || e->mac != mac) {
      changed = true;
    } else if (e->probing) {
      stats_.arp_confirmed.add();  // a peer loop heard the known MAC answer this loop's probe
    }
    e->mac = mac;
    e->st = state::reachable;
    e->due = now + opts_.reachable_time;
    e->requests = 0;
    e->probing = false;
    if (e->pending != 0) {
      e->pending = 0;
      take_pending(ip, release);
    }
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
  };
  // An ARP message from the wire: learn() by RFC 826's merge rule, except
  // that a live entry's MAC is not replaced at once (see the top).
  template <class Release>
  wire_result learn_from_wire(std::uint32_t ip, const mac_address& mac, time_point now, bool create,
                              Release&& release) noexcept {
    wire_result r;
    entry* e = find(ip);
    if (e != nullptr && e->st == state::reachable && e->due > now) {
      if (e->mac == mac) {
        if (e->probing) {
          e->probing = false;  // the known MAC is alive: the claim was false
          stats_.arp_confirmed.add();
        }
        e->due = now + opts_.reachable_time;
        if (e->confirm_due <= now) {  // at most one word to the peers per retry interval
          e->confirm_due = now + opts_.retry_interval;
          r.confirm_peers = true;
        }
        return r;
      }
      stats_.arp_conflicts.add();
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

  // Retries and failures due by now: send_request(ip) for each neighbour to
  // ask again; the held packets of those that used up their requests are
  // dropped (arp_unresolved).
  template <class Send>
  void tick(time_point now, Send&& send_request) noexcept {
    tick(now, send_request, [](std::uint32_t, const mac_address&) {}, [](std::uint32_t, const mac_address&) {});
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
          stats_.arp_reassigned.add();
          reassigned(e.ip, e.mac);
        } else {
          ++e.probes;
          e.probe_due = now + opts_.retry_interval;
          probe(e.ip, e.mac);
        }
      }
      if (e.st != state::incomplete || e.due > now) continue;
      if (e.requests >= opts_.max_requests) {
        e.st = state::failed;
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

 private:
  enum class state : std::uint8_t { empty, incomplete, reachable, failed };
  struct entry {
    std::uint32_t ip = 0;
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
    std::uint32_t ip;
    packet* p;
  };

  [[nodiscard]] std::size_t home(std::uint32_t ip) const noexcept;
  [[nodiscard]] entry* find(std::uint32_t ip) noexcept;
  [[nodiscard]] const entry* find(std::uint32_t ip) const noexcept;
  // A slot for a new neighbour on ip's probe path: an empty one, else the
  // stalest that is not resolving; nullptr if all are resolving.
  [[nodiscard]] entry* take_slot(std::uint32_t ip, time_point now) noexcept;
  template <class Release>
  void take_pending(std::uint32_t ip, Release&& release) noexcept {
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
  void drop_pending(std::uint32_t ip) noexcept;
  // The queue is full: frees a place for a packet of `e` by dropping the
  // oldest packet of the neighbour that holds more (or as many and has
  // waited longer). False if none should give way.
  bool make_room_for(const entry& e) noexcept;

  arp_options opts_;
  inet_stats& stats_;
  std::vector<entry> slots_;
  std::size_t mask_ = 0;
  std::vector<held_packet> held_;
  std::size_t pending_n_ = 0;
};

}  // namespace sluice::inet
