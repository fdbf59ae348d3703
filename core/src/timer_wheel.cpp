#include "sluice/core/timer_wheel.hpp"

#include <bit>

namespace sluice {

namespace {
constexpr unsigned shift(int level) noexcept { return 6u * static_cast<unsigned>(level); }
}  // namespace

timer_wheel::timer_wheel(time_point start, duration resolution) noexcept
    : origin_(start), now_(start), res_(resolution.count() > 0 ? resolution : duration(1)), next_edge_(origin_ + res_) {}

timer_wheel::~timer_wheel() {
  due_.clear();
  for (auto& level : wheel_)
    for (auto& slot : level) slot.clear();
}

std::uint64_t timer_wheel::floor_tick(time_point t) const noexcept {
  if (t <= origin_) return 0;
  return static_cast<std::uint64_t>((t - origin_) / res_);
}

std::uint64_t timer_wheel::ceil_tick(time_point t) const noexcept {
  if (t <= origin_) return 0;
  auto d = (t - origin_).count();
  auto r = res_.count();
  return static_cast<std::uint64_t>((d + r - 1) / r);
}

void timer_wheel::arm(timer& t, time_point when) noexcept {
  t.cancel();
  t.expiry_ = when;
  t.tick_ = ceil_tick(when);
  place(t);
}

void timer_wheel::place(timer& t) noexcept {
  if (t.tick_ <= now_tick_) {
    due_.push_back(t);
    return;
  }
  for (int level = 0; level < levels; ++level) {
    std::uint64_t block = t.tick_ >> shift(level);
    std::uint64_t current = now_tick_ >> shift(level);
    if (block - current < slots) {
      occupy(level, static_cast<unsigned>(block & (slots - 1)), t);
      return;
    }
  }
  // Beyond the wheel's range: park in the last slot of the top level; it is
  // placed again (still far, or now in range) when that slot cascades.
  constexpr int top = levels - 1;
  occupy(top, static_cast<unsigned>(((now_tick_ >> shift(top)) + slots - 1) & (slots - 1)), t);
}

void timer_wheel::occupy(int level, unsigned slot, timer& t) noexcept {
  wheel_[level][slot].push_back(t);
  occupied_[level] |= std::uint64_t{1} << slot;
  used_levels_ |= 1u << level;
}

void timer_wheel::vacate(int level, unsigned slot) noexcept {
  occupied_[level] &= ~(std::uint64_t{1} << slot);
  if (occupied_[level] == 0) used_levels_ &= ~(1u << level);
}

std::uint64_t timer_wheel::next_tick() const noexcept {
  std::uint64_t best = no_tick;
  for (std::uint32_t used = used_levels_; used != 0; used &= used - 1) {
    const int level = std::countr_zero(used);
    std::uint64_t bits = occupied_[level];
    std::uint64_t current = now_tick_ >> shift(level);
    unsigned c = static_cast<unsigned>(current & (slots - 1));
    // Rotate so that the slot after the current one is bit 0.
    std::uint64_t rotated = std::rotr(bits, static_cast<int>((c + 1) & (slots - 1)));
    if (rotated == 0) continue;
    unsigned d = static_cast<unsigned>(std::countr_zero(rotated)) + 1;  // 1..64
    std::uint64_t tick = (current + d) << shift(level);
    if (tick < best) best = tick;
  }
  return best;
}

std::size_t timer_wheel::fire(timer::list_type& list) noexcept {
  std::size_t n = 0;
  while (!list.empty()) {
    timer& t = list.front();
    list.pop_front();
    ++n;
    if (t.cb_ != nullptr) t.cb_(t);
  }
  return n;
}

std::size_t timer_wheel::advance_ticks() noexcept {
  const std::uint64_t target = floor_tick(now_);
  std::size_t fired = 0;
  if (!due_.empty()) {
    timer::list_type batch;
    batch.splice(batch.end(), due_);
    fired += fire(batch);
  }
  while (now_tick_ < target) {
    std::uint64_t next = next_tick();
    if (next == no_tick || next > target) {
      now_tick_ = target;
      break;
    }
    now_tick_ = next;
    // Cascade from the top down, so that a timer moving down two levels at once
    // is handled by the lower level's cascade in this same tick.
    timer::list_type batch;
    for (int level = levels - 1; level >= 1; --level) {
      if ((next & ((std::uint64_t{1} << shift(level)) - 1)) != 0) continue;
      unsigned slot = static_cast<unsigned>((next >> shift(level)) & (slots - 1));
      if ((occupied_[level] >> slot & 1) == 0) continue;
      vacate(level, slot);
      batch.splice(batch.end(), wheel_[level][slot]);
      while (!batch.empty()) {
        timer& t = batch.front();
        batch.pop_front();
        place(t);  // due now -> due_, else a lower level
      }
    }
    unsigned slot0 = static_cast<unsigned>(next & (slots - 1));
    if (occupied_[0] >> slot0 & 1) {
      vacate(0, slot0);
      batch.splice(batch.end(), wheel_[0][slot0]);
    }
    batch.splice(batch.end(), due_);
    fired += fire(batch);
  }
  next_edge_ = origin_ + res_ * static_cast<std::int64_t>(now_tick_ + 1);
  return fired;
}

time_point timer_wheel::next_due() const noexcept {
  if (!due_.empty()) return now_;
  std::uint64_t t = next_tick();
  if (t == no_tick) return time_point::max();
  return origin_ + res_ * static_cast<std::int64_t>(t);
}

bool timer_wheel::empty() const noexcept {
  if (!due_.empty()) return false;
  for (int level = 0; level < levels; ++level) {
    std::uint64_t bits = occupied_[level];
    while (bits != 0) {
      unsigned slot = static_cast<unsigned>(std::countr_zero(bits));
      if (!wheel_[level][slot].empty()) return false;
      bits &= bits - 1;
    }
  }
  return true;
}

}  // namespace sluice
