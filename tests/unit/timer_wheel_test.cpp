// Unit tests of the hierarchical timer wheel, driven by explicit time: order,
// never early, cancel, cascades across every level, re-arming from callbacks.

#include "sluice/core/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

namespace sluice {
namespace {

constexpr duration ms = std::chrono::milliseconds(1);
const time_point t0{std::chrono::seconds(100)};

struct probe {
  timer t;
  int fired = 0;
  time_point fired_at{};
  timer_wheel* wheel = nullptr;
  std::vector<probe*>* order = nullptr;
  void on_fire() noexcept {
    ++fired;
    fired_at = wheel->now();
    if (order != nullptr) order->push_back(this);
  }
};

TEST(timer_wheel, fires_at_first_advance_at_or_after_expiry) {
  timer_wheel w(t0, ms);
  probe p;
  p.wheel = &w;
  p.t.bind<&probe::on_fire>(&p);
  w.arm(p.t, t0 + 10 * ms);
  EXPECT_EQ(w.advance(t0 + 9 * ms), 0u);
  EXPECT_EQ(w.advance(t0 + 9 * ms + 999 * std::chrono::microseconds(1)), 0u) << "never early";
  EXPECT_EQ(w.advance(t0 + 10 * ms), 1u);
  EXPECT_EQ(p.fired, 1);
  EXPECT_FALSE(p.t.armed());
  EXPECT_EQ(w.advance(t0 + 100 * ms), 0u) << "fires once";
}

TEST(timer_wheel, rounds_expiry_up_to_resolution) {
  timer_wheel w(t0, ms);
  probe p;
  p.wheel = &w;
  p.t.bind<&probe::on_fire>(&p);
  w.arm(p.t, t0 + 5 * ms + std::chrono::microseconds(1));
  w.advance(t0 + 5 * ms + std::chrono::microseconds(500));
  EXPECT_EQ(p.fired, 0) << "5.0005 ms is before 5.001 ms";
  w.advance(t0 + 6 * ms);
  EXPECT_EQ(p.fired, 1);
}

TEST(timer_wheel, timer_due_now_fires_at_next_advance) {
  timer_wheel w(t0, ms);
  w.advance(t0 + 50 * ms);
  probe p;
  p.wheel = &w;
  p.t.bind<&probe::on_fire>(&p);
  w.arm(p.t, t0);  // in the past
  EXPECT_EQ(w.next_due(), w.now());
  EXPECT_EQ(w.advance(t0 + 50 * ms), 1u);
}

TEST(timer_wheel, cancel_and_destroy_unlink) {
  timer_wheel w(t0, ms);
  probe a, b;
  a.wheel = b.wheel = &w;
  a.t.bind<&probe::on_fire>(&a);
  b.t.bind<&probe::on_fire>(&b);
  w.arm(a.t, t0 + 3 * ms);
  w.arm(b.t, t0 + 3 * ms);
  {
    probe c;
    c.wheel = &w;
    c.t.bind<&probe::on_fire>(&c);
    w.arm(c.t, t0 + 3 * ms);
  }  // c destroyed while armed: auto-unlinked
  a.t.cancel();
  EXPECT_FALSE(a.t.armed());
  EXPECT_EQ(w.advance(t0 + 10 * ms), 1u);
  EXPECT_EQ(a.fired, 0);
  EXPECT_EQ(b.fired, 1);
  EXPECT_TRUE(w.empty());
}

TEST(timer_wheel, rearm_moves_the_timer) {
  timer_wheel w(t0, ms);
  probe p;
  p.wheel = &w;
  p.t.bind<&probe::on_fire>(&p);
  w.arm(p.t, t0 + 5 * ms);
  w.arm(p.t, t0 + 500 * ms);
  w.advance(t0 + 100 * ms);
  EXPECT_EQ(p.fired, 0);
  w.advance(t0 + 500 * ms);
  EXPECT_EQ(p.fired, 1);
}

// Every level: delays around each power of 64, fired exactly when due.
TEST(timer_wheel, cascades_across_every_level) {
  timer_wheel w(t0, ms);
  std::vector<std::uint64_t> delays;
  for (std::uint64_t base = 1; base <= (std::uint64_t{1} << 30); base *= 64) {
    for (std::int64_t d : {-1, 0, 1, 7}) {
      std::int64_t v = static_cast<std::int64_t>(base) + d;
      if (v > 0) delays.push_back(static_cast<std::uint64_t>(v));
    }
  }
  std::vector<std::unique_ptr<probe>> probes;
  for (auto d : delays) {
    auto p = std::make_unique<probe>();
    p->wheel = &w;
    p->t.bind<&probe::on_fire>(p.get());
    w.arm(p->t, t0 + static_cast<std::int64_t>(d) * ms);
    probes.push_back(std::move(p));
  }
  // Jump straight to each expiry (and one tick before it).
  std::vector<std::uint64_t> sorted = delays;
  std::sort(sorted.begin(), sorted.end());
  for (auto d : sorted) {
    w.advance(t0 + static_cast<std::int64_t>(d - 1) * ms);
    for (std::size_t i = 0; i < delays.size(); ++i) {
      if (delays[i] >= d) {
        EXPECT_EQ(probes[i]->fired, 0) << "delay " << delays[i] << " fired early at " << d - 1;
      }
    }
    w.advance(t0 + static_cast<std::int64_t>(d) * ms);
    for (std::size_t i = 0; i < delays.size(); ++i) {
      if (delays[i] == d) {
        EXPECT_EQ(probes[i]->fired, 1) << "delay " << d;
        EXPECT_EQ(probes[i]->fired_at, t0 + static_cast<std::int64_t>(d) * ms);
      }
    }
  }
  EXPECT_TRUE(w.empty());
}

// Random delays, random advance steps: each fires once, never early, and in
// order of expiry.
TEST(timer_wheel, random_timers_fire_in_order_never_early) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 5; ++round) {
    timer_wheel w(t0, ms);
    std::vector<probe*> order;
    std::vector<std::unique_ptr<probe>> probes;
    std::vector<std::int64_t> due;
    for (int i = 0; i < 2000; ++i) {
      auto p = std::make_unique<probe>();
      p->wheel = &w;
      p->order = &order;
      p->t.bind<&probe::on_fire>(p.get());
      std::int64_t d = static_cast<std::int64_t>(rng() % (1u << (4 + (i % 20))));
      w.arm(p->t, t0 + d * ms);
      due.push_back(d);
      probes.push_back(std::move(p));
    }
    std::int64_t now = 0;
    while (!w.empty()) {
      now += static_cast<std::int64_t>(rng() % 5000);
      w.advance(t0 + now * ms);
      if (now > (1 << 24)) break;
    }
    ASSERT_EQ(order.size(), probes.size());
    for (std::size_t i = 0; i < probes.size(); ++i) {
      EXPECT_EQ(probes[i]->fired, 1);
      EXPECT_GE(probes[i]->fired_at, t0 + due[i] * ms);
    }
    for (std::size_t i = 1; i < order.size(); ++i) {
      EXPECT_LE(order[i - 1]->t.expiry(), order[i]->t.expiry()) << "fired out of order";
    }
  }
}

TEST(timer_wheel, next_due_is_exact_near_and_a_lower_bound_far) {
  timer_wheel w(t0, ms);
  EXPECT_EQ(w.next_due(), time_point::max());
  probe near, far;
  near.wheel = far.wheel = &w;
  near.t.bind<&probe::on_fire>(&near);
  far.t.bind<&probe::on_fire>(&far);
  w.arm(far.t, t0 + 100000 * ms);
  time_point due = w.next_due();
  EXPECT_LE(due, t0 + 100000 * ms);
  EXPECT_GT(due, t0);
  w.arm(near.t, t0 + 17 * ms);
  EXPECT_EQ(w.next_due(), t0 + 17 * ms);
  // Following next_due() step by step reaches the far timer without firing early.
  int steps = 0;
  while (far.fired == 0 && steps < 100) {
    w.advance(w.next_due());
    ++steps;
    if (far.fired == 0) {
      EXPECT_LT(w.now(), t0 + 100000 * ms);
    }
  }
  EXPECT_EQ(far.fired, 1);
  EXPECT_EQ(far.fired_at, t0 + 100000 * ms);
  EXPECT_LT(steps, 10) << "idle time is skipped, not walked tick by tick";
}

// The loop advances the wheel every iteration, many times per tick: those
// calls must still fire each timer on its tick, and once the levels that held
// timers are emptied, next_due() must say nothing is left.
TEST(timer_wheel, sub_tick_advances_fire_on_the_tick_and_emptied_levels_are_forgotten) {
  timer_wheel w(t0, ms);
  probe a, b, c;
  for (probe* p : {&a, &b, &c}) {
    p->wheel = &w;
    p->t.bind<&probe::on_fire>(p);
  }
  w.arm(a.t, t0 + 1 * ms);      // level 0
  w.arm(b.t, t0 + 70 * ms);     // level 1
  w.arm(c.t, t0 + 5000 * ms);   // level 2
  const duration step = std::chrono::microseconds(100);
  for (time_point t = t0; t < t0 + 1 * ms; t += step) EXPECT_EQ(w.advance(t), 0u);
  EXPECT_EQ(w.advance(t0 + 1 * ms), 1u);
  EXPECT_EQ(a.fired_at, t0 + 1 * ms);
  time_point t = t0 + 1 * ms;
  while (b.fired == 0 && t < t0 + 100 * ms) w.advance(t += step);
  EXPECT_EQ(b.fired, 1);
  EXPECT_EQ(b.fired_at, t0 + 70 * ms) << "on the first sub-tick advance that reaches its tick";
  // A timer armed for the tick already reached fires at the next call, even
  // one that does not move the time.
  w.arm(a.t, t0 + 70 * ms);
  EXPECT_EQ(w.advance(w.now()), 1u);
  EXPECT_EQ(a.fired, 2);
  c.t.cancel();
  EXPECT_NE(w.next_due(), time_point::max()) << "a cancelled timer's slot is only a lower bound";
  w.advance(t0 + 6000 * ms);
  EXPECT_EQ(c.fired, 0);
  EXPECT_EQ(w.next_due(), time_point::max());
  EXPECT_TRUE(w.empty());
  // And a timer armed afterwards is seen again.
  w.arm(c.t, t0 + 6000 * ms + 3 * ms);
  EXPECT_EQ(w.next_due(), t0 + 6003 * ms);
  w.advance(t0 + 6003 * ms);
  EXPECT_EQ(c.fired, 1);
}

struct rearming {
  timer t;
  timer_wheel* w = nullptr;
  int count = 0;
  void fire() noexcept {
    if (++count < 5) w->arm_after(t, std::chrono::milliseconds(10));
  }
};

TEST(timer_wheel, callback_may_rearm_itself) {
  timer_wheel w(t0, ms);
  rearming r;
  r.w = &w;
  r.t.bind<&rearming::fire>(&r);
  w.arm(r.t, t0 + 10 * ms);
  for (int i = 1; i <= 100; ++i) w.advance(t0 + i * ms);
  EXPECT_EQ(r.count, 5);
}

TEST(timer_wheel, far_beyond_the_top_level_still_fires) {
  timer_wheel w(t0, std::chrono::microseconds(1));  // range 2^36 us ~ 19 h
  probe p;
  p.wheel = &w;
  p.t.bind<&probe::on_fire>(&p);
  const time_point when = t0 + std::chrono::hours(24 * 30);
  w.arm(p.t, when);
  int steps = 0;
  while (p.fired == 0 && steps < 1000) {
    time_point next = w.next_due();
    ASSERT_NE(next, time_point::max());
    w.advance(next);
    ++steps;
  }
  EXPECT_EQ(p.fired, 1);
  EXPECT_EQ(p.fired_at, when);
}

}  // namespace
}  // namespace sluice
