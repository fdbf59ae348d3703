#pragma once
// A hierarchical timing wheel: O(1) arm and cancel, timers never fire early.
//
// Six levels of 64 slots. A slot at level L spans 64^L ticks; a timer sits at the
// lowest level whose window (64 blocks of that level, counted from the current
// block) holds its expiry, and moves down ("cascades") when the wheel reaches the
// start of its block. Each level keeps a 64-bit occupancy map, so advancing over
// idle time and computing the next due time cost a few bit operations per level,
// not one step per tick.
//
//   level 0: [0][1]...[63]   1 tick each          (tick = resolution, 1 ms default)
//   level 1: [0][1]...[63]   64 ticks each
//   ...
//   level 5: [0][1]...[63]   64^5 ticks each      (beyond: parked in the last slot)
//
// Timers are intrusive (Boost.Intrusive auto-unlink hooks): a timer's owner
// embeds it, destroying an armed timer cancels it, and nothing is allocated.
// Time is an input: advance(now) takes the time from the caller, so tests drive
// the wheel with a manual clock. Owner core only.

#include <boost/intrusive/list.hpp>

#include <array>
#include <cstdint>

#include "sluice/base/time.hpp"

namespace sluice {

// A timer to embed in what it times (a connection, a session, a request): a
// callback and a context pointer, armed on a timer_wheel. Not copyable and not
// to be moved while armed; destroying it cancels it. Owner core of its wheel.
class timer {
 public:
  // What runs at expiry: a plain function given the timer (its context() says
  // for what).
  using callback = void (*)(timer& t) noexcept;

  timer() noexcept = default;
  // A timer that will call `cb` with `context` (not owned) available as
  // context().
  timer(callback cb, void* context) noexcept : cb_(cb), ctx_(context) {}
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;

  // What to run at expiry; the callback may re-arm this or any other timer.
  void set_callback(callback cb, void* context = nullptr) noexcept {
    cb_ = cb;
    ctx_ = context;
  }
  // Calls (obj->*Method)() at expiry.
  template <auto Method, class T>
  void bind(T* obj) noexcept {
    cb_ = [](timer& t) noexcept { (static_cast<T*>(t.ctx_)->*Method)(); };
    ctx_ = obj;
  }

  // Armed on a wheel and not yet fired or cancelled.
  [[nodiscard]] bool armed() const noexcept { return hook_.is_linked(); }
  // Disarms the timer if it is armed; harmless if it is not. O(1).
  void cancel() noexcept { hook_.unlink(); }
  // The time it was armed for (meaningful while armed).
  [[nodiscard]] time_point expiry() const noexcept { return expiry_; }
  // The pointer given with the callback (or the object given to bind()).
  [[nodiscard]] void* context() const noexcept { return ctx_; }

 private:
  friend class timer_wheel;
  using hook_type = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
  hook_type hook_;
  std::uint64_t tick_ = 0;
  time_point expiry_{};
  callback cb_ = nullptr;
  void* ctx_ = nullptr;

 public:
  // The intrusive list of timers a wheel slot holds. For timer_wheel only.
  using list_type = boost::intrusive::list<timer, boost::intrusive::member_hook<timer, hook_type, &timer::hook_>,
                                           boost::intrusive::constant_time_size<false>>;
};

// The wheel of one loop (see the file comment); loop_base::timers() is the one
// applications use.
class timer_wheel {
 public:
  // Levels of the hierarchy.
  static constexpr int levels = 6;
  // Slots per level.
  static constexpr int slots = 64;

  // A wheel whose time starts at `start` and advances in ticks of `resolution`.
  explicit timer_wheel(time_point start, duration resolution = std::chrono::milliseconds(1)) noexcept;
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;
  // Cancels every timer still armed.
  ~timer_wheel();

  // Arms (or re-arms) t to fire at the first advance() whose time is at or
  // after `when`, rounded up to the resolution. O(1).
  void arm(timer& t, time_point when) noexcept;
  // arm() for now() + d.
  void arm_after(timer& t, duration d) noexcept { arm(t, now_ + d); }
  // Same as t.cancel(). O(1).
  static void cancel(timer& t) noexcept { t.cancel(); }

  // Moves the wheel to `now`, firing every timer due by then in expiry order
  // (ties in arming order). Returns how many fired. Called every loop
  // iteration: within the current tick and with nothing due it is two
  // comparisons.
  std::size_t advance(time_point now) noexcept {
    if (now > now_) now_ = now;
    if (now_ < next_edge_ && due_.empty()) return 0;
    return advance_ticks();
  }

  // The earliest time a timer may be due (exact for timers within 64 ticks, a
  // lower bound for later ones, which cascade); time_point::max() if none.
  [[nodiscard]] time_point next_due() const noexcept;
  // No timer is armed.
  [[nodiscard]] bool empty() const noexcept;

  // The time of the last advance() (or the start).
  [[nodiscard]] time_point now() const noexcept { return now_; }
  // The length of a tick.
  [[nodiscard]] duration resolution() const noexcept { return res_; }

 private:
  static constexpr std::uint64_t no_tick = UINT64_MAX;
  [[nodiscard]] std::uint64_t floor_tick(time_point t) const noexcept;
  [[nodiscard]] std::uint64_t ceil_tick(time_point t) const noexcept;
  void place(timer& t) noexcept;
  // The next tick after now_tick_ at which a level needs attention.
  [[nodiscard]] std::uint64_t next_tick() const noexcept;
  std::size_t fire(timer::list_type& list) noexcept;
  std::size_t advance_ticks() noexcept;
  // Slot bookkeeping: the occupancy maps and used_levels_ change only here.
  void occupy(int level, unsigned slot, timer& t) noexcept;
  void vacate(int level, unsigned slot) noexcept;

  time_point origin_;
  time_point now_;
  duration res_;
  std::uint64_t now_tick_ = 0;
  time_point next_edge_;  // where floor_tick() passes now_tick_: origin_ + res_ * (now_tick_ + 1)
  std::uint32_t used_levels_ = 0;  // bit L: occupied_[L] != 0
  std::array<std::array<timer::list_type, slots>, levels> wheel_;
  std::array<std::uint64_t, levels> occupied_{};
  timer::list_type due_;  // armed for a tick already reached: fire at the next advance
};

}  // namespace sluice
