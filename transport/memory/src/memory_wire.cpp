#include "sluice/memory/memory_wire.hpp"

#include <cassert>
#include <cstring>
#include <utility>

namespace sluice::memory {

namespace {

constexpr std::uint32_t buffer_bytes = memory_wire::headroom + memory_wire::data_room;

}  // namespace

memory_wire::memory_wire(const options& opts) : opts_(opts) {
  opts_.caps.headroom = headroom;
  opts_.caps.data_room = data_room;
  for (std::size_t s = 0; s < 2; ++s) {
    auto p = std::make_unique<pool>();
    p->bytes = std::make_unique<std::byte[]>(opts_.buffers_per_end * buffer_bytes);
    p->packets = std::make_unique<inet::packet[]>(opts_.buffers_per_end);
    p->free.reserve(opts_.buffers_per_end);
    for (std::size_t i = opts_.buffers_per_end; i-- > 0;) p->free.push_back(&p->packets[i]);
    pools_[s] = std::move(p);
    direction& d = dir_[s];
    d.imp = s == 0 ? opts_.a_to_b : opts_.b_to_a;
    // One stream per direction, so that one side's traffic does not change
    // the other's impairments.
    d.rng.seed(opts_.seed * 2 + s);
    // Every buffer of the sender's pool, plus the duplicates it may make.
    d.ring.resize(opts_.buffers_per_end * 2);
  }
}

memory_wire::~memory_wire() {
  for (direction& d : dir_) {
    while (d.count > 0) {
      segment_unref(&d.ring[d.head].p->seg);
      d.head = (d.head + 1) % d.ring.size();
      --d.count;
    }
  }
  assert(pools_[0]->free.size() == opts_.buffers_per_end && "memory wire destroyed with buffers of end a in use");
  assert(pools_[1]->free.size() == opts_.buffers_per_end && "memory wire destroyed with buffers of end b in use");
}

void memory_wire::release_buffer(segment* s) noexcept {
  auto* p = static_cast<pool*>(s->owner);
  p->free.push_back(inet::packet_of(s));  // capacity reserved for every buffer: no allocation
}

std::size_t memory_wire::allocate(side at, inet::packet** out, std::size_t n) noexcept {
  pool& p = *pools_[index(at)];
  std::size_t i = 0;
  for (; i < n && !p.free.empty(); ++i) {
    inet::packet* pkt = p.free.back();
    p.free.pop_back();
    const std::size_t k = static_cast<std::size_t>(pkt - p.packets.get());
    pkt->reset(p.bytes.get() + k * buffer_bytes, buffer_bytes, headroom, &release_buffer, &p);
    out[i] = pkt;
  }
  return i;
}

bool memory_wire::chance(direction& d, double p) noexcept {
  if (p <= 0.0) return false;
  // 53 random bits as a double in [0, 1): the same on every platform.
  const double u = static_cast<double>(d.rng() >> 11) * 0x1.0p-53;
  return u < p;
}

void memory_wire::push(direction& d, inet::packet* p, time_point at) noexcept {
  d.ring[(d.head + d.count) % d.ring.size()] = flight{p, at};
  ++d.count;
}

std::size_t memory_wire::transmit(side from, inet::packet** pkts, std::size_t n) noexcept {
  direction& d = dir_[index(from)];
  const time_point now = opts_.clock.now();
  std::size_t taken = 0;
  for (; taken < n; ++taken) {
    if (d.count + 2 > d.ring.size()) break;  // the wire is full: the sender keeps the rest
    inet::packet* p = pkts[taken];
    ++d.stats.sent;
    if (chance(d, d.imp.loss)) {
      ++d.stats.lost;
      segment_unref(&p->seg);
      continue;
    }
    push(d, p, now + d.imp.delay);
    if (chance(d, d.imp.duplicate)) {
      inet::packet* copy = nullptr;
      if (allocate(from, &copy, 1) == 1) {
        std::memcpy(copy->data(), p->data(), p->size());
        copy->seg.end = copy->seg.begin + p->size();
        push(d, copy, now + d.imp.delay);
        ++d.stats.duplicated;
      }
    }
    if (d.count >= 2 && chance(d, d.imp.reorder)) {
      // The newest frame overtakes the one before it.
      flight& last = d.ring[(d.head + d.count - 1) % d.ring.size()];
      flight& prev = d.ring[(d.head + d.count - 2) % d.ring.size()];
      std::swap(last.p, prev.p);
      ++d.stats.reordered;
    }
  }
  return taken;
}

std::size_t memory_wire::receive(side at, inet::packet** out, std::size_t n) noexcept {
  // Frames for `at` travel in the other end's direction.
  direction& d = dir_[1 - index(at)];
  const time_point now = opts_.clock.now();
  std::size_t i = 0;
  while (i < n && d.count > 0 && d.ring[d.head].at <= now) {
    out[i++] = d.ring[d.head].p;
    d.head = (d.head + 1) % d.ring.size();
    --d.count;
    ++d.stats.delivered;
  }
  return i;
}

std::size_t memory_wire::in_flight(side to) const noexcept { return dir_[1 - index(to)].count; }

}  // namespace sluice::memory
