#include "sluice/inet/ipv4_reassembler.hpp"

#include <algorithm>

namespace sluice::inet {

ipv4_reassembler::ipv4_reassembler(const reassembly_options& opts, inet_stats& stats) : opts_(opts), stats_(stats) {
  slots_.resize(opts_.max_datagrams);
  for (slot& s : slots_) s.frags.reserve(opts_.max_fragments);
  done_.reserve(opts_.max_fragments);
}

ipv4_reassembler::~ipv4_reassembler() {
  for (slot& s : slots_)
    for (fragment& f : s.frags) segment_unref(&f.p->seg);
}

std::size_t ipv4_reassembler::in_progress() const noexcept {
  return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](const slot& s) { return s.used; }));
}

void ipv4_reassembler::drop_one(packet* p, drop_reason why) noexcept {
  stats_.drop(why);
  segment_unref(&p->seg);
}

void ipv4_reassembler::release(slot& s, drop_reason why) noexcept {
  for (fragment& f : s.frags) drop_one(f.p, why);
  held_ -= s.frags.size();
  s.frags.clear();
  s.received = 0;
}

void ipv4_reassembler::poison(slot& s, drop_reason why) noexcept {
  release(s, why);
  s.poisoned = true;
}

ipv4_reassembler::slot* ipv4_reassembler::find_or_open(const fragment_info& h, time_point now) noexcept {
  slot* free_slot = nullptr;
  for (slot& s : slots_) {
    if (!s.used) {
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    if (s.src == h.src && s.dst == h.dst && s.id == h.id && s.keyed_by_protocol == h.keyed_by_protocol &&
        (!h.keyed_by_protocol || s.protocol == h.protocol)) {
      return &s;
    }
  }
  if (free_slot == nullptr) {
    // Full: a datagram in progress makes room (the heaviest source's oldest).
    free_slot = victim(nullptr, false);
    if (free_slot == nullptr) return nullptr;
    evict(*free_slot);
  }
  slot& s = *free_slot;
  s.used = true;
  s.poisoned = s.have_last = s.have_first = false;
  s.src = h.src;
  s.dst = h.dst;
  s.id = h.id;
  s.protocol = h.protocol;
  s.keyed_by_protocol = h.keyed_by_protocol;
  s.total = s.received = 0;
  s.deadline = now + opts_.timeout;
  return &s;
}

ipv4_reassembler::slot* ipv4_reassembler::victim(const slot* keep, bool by_packets) noexcept {
  // Per source accounting over the table (a few dozen slots, scanned only
  // when something must go: never on the path of a datagram that fits).
  slot* best = nullptr;
  std::size_t best_weight = 0;
  for (slot& s : slots_) {
    if (!s.used || &s == keep || (by_packets && s.frags.empty())) continue;
    std::size_t weight = 0;
    for (const slot& o : slots_)
      if (o.used && o.src == s.src) weight += by_packets ? o.frags.size() : 1;
    if (best == nullptr || weight > best_weight || (weight == best_weight && s.deadline < best->deadline)) {
      best = &s;
      best_weight = weight;
    }
  }
  return best;
}

void ipv4_reassembler::evict(slot& s) noexcept {
  stats_.frag_evictions.add();
  release(s, drop_reason::frag_evicted);
  s.used = false;
}

bool ipv4_reassembler::add(packet* p, const ipv4_header& h, time_point now, datagram& out) noexcept {
  fragment_info f;
  f.src = ip_address::v4(h.src);
  f.dst = ip_address::v4(h.dst);
  f.id = h.id;
  f.protocol = h.protocol;
  f.offset = h.fragment_offset;
  f.more = h.more_fragments;
  f.header_len = h.header_len;
  return add(p, f, &h, now, out);
}

bool ipv4_reassembler::add(packet* p, const fragment_info& f, time_point now, datagram& out) noexcept {
  return add(p, f, nullptr, now, out);
}

bool ipv4_reassembler::add(packet* p, const fragment_info& h, const ipv4_header* v4, time_point now,
                           datagram& out) noexcept {
  stats_.fragments_in.add();
  slot* sp = find_or_open(h, now);
  if (sp == nullptr) {
    drop_one(p, drop_reason::frag_table_full);
    return false;
  }
  slot& s = *sp;
  if (s.poisoned) {
    drop_one(p, drop_reason::frag_overlap);
    return false;
  }
  const std::uint32_t off = h.offset;
  const std::uint32_t len = p->size();
  const std::uint32_t end = off + len;
  // Fragments other than the last carry whole 8-byte blocks (RFC 791).
  if (h.more && (len == 0 || len % 8 != 0)) {
    drop_one(p, drop_reason::frag_bad_length);
    return false;
  }
  if (end + h.header_len > 65535) {
    drop_one(p, drop_reason::frag_too_big);
    poison(s, drop_reason::frag_too_big);
    return false;
  }
  // An end that contradicts what is known: a second, different last
  // fragment, or data past the last one.
  const bool contradicts = h.more ? (s.have_last && end > s.total)
                                            : ((s.have_last && end != s.total) ||
                                               (!s.frags.empty() && s.frags.back().offset + s.frags.back().length > end));
  if (contradicts) {
    drop_one(p, drop_reason::frag_bad_length);
    poison(s, drop_reason::frag_bad_length);
    return false;
  }
  // Where it goes, and whether it overlaps a neighbour.
  auto pos = std::lower_bound(s.frags.begin(), s.frags.end(), off,
                              [](const fragment& f, std::uint32_t o) { return f.offset < o; });
  if (pos != s.frags.end() && pos->offset == off && pos->length == len) {
    drop_one(p, drop_reason::frag_duplicate);
    return false;
  }
  const bool overlaps_next = pos != s.frags.end() && pos->offset < end;
  const bool overlaps_prev = pos != s.frags.begin() && std::prev(pos)->offset + std::prev(pos)->length > off;
  if (overlaps_next || overlaps_prev) {
    drop_one(p, drop_reason::frag_overlap);
    poison(s, drop_reason::frag_overlap);
    return false;
  }
  if (s.frags.size() == opts_.max_fragments) {
    drop_one(p, drop_reason::frag_too_many);
    poison(s, drop_reason::frag_too_many);
    return false;
  }
  while (held_ >= opts_.max_held_packets) {
    // Memory is full: another datagram's buffers make room; only when this
    // datagram holds them all is the newcomer refused.
    slot* v = victim(&s, true);
    if (v == nullptr) {
      drop_one(p, drop_reason::frag_memory);
      return false;
    }
    evict(*v);
  }
  s.frags.insert(pos, fragment{p, static_cast<std::uint16_t>(off), static_cast<std::uint16_t>(len)});
  ++held_;
  s.received += len;
  if (!h.more) {
    s.have_last = true;
    s.total = end;
  }
  if (off == 0) {
    if (v4 != nullptr) s.first = *v4;
    s.first_protocol = h.protocol;
    s.first_header_len = h.header_len;
    s.have_first = true;
  }
  // No overlaps were let in, so the bytes add up only when every hole is filled.
  if (!s.have_last || !s.have_first || s.received != s.total) return false;
  done_.assign(s.frags.begin(), s.frags.end());
  held_ -= s.frags.size();
  s.frags.clear();
  s.used = false;
  out.protocol = s.first_protocol;
  if (v4 != nullptr) {
    out.header = s.first;
    out.header.more_fragments = false;
    out.header.fragment_offset = 0;
    out.header.total_len = static_cast<std::uint16_t>(s.first.header_len + s.total);
  }
  out.fragments = done_.data();
  out.count = done_.size();
  stats_.reassembled.add();
  return true;
}

void ipv4_reassembler::expire(time_point now) noexcept {
  expire(now, [](packet*, std::uint32_t, bool) {});
}

time_point ipv4_reassembler::next_expiry() const noexcept {
  time_point t = time_point::max();
  for (const slot& s : slots_)
    if (s.used) t = std::min(t, s.deadline);
  return t;
}

}  // namespace sluice::inet
