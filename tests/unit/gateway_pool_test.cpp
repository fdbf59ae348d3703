// One loop's upstream pool: each policy picks as it claims, tried upstreams
// are never picked again for the same request, passive ejection after
// max_fails and recovery after eject_time, health-check rise and fall, and
// the all-down fallback.

#include "upstream_pool.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

struct fixture {
  pool_config cfg;
  std::unique_ptr<upstream_stats[]> stats;
  std::unique_ptr<upstream_pool> pool;
  explicit fixture(unsigned n, lb_policy policy) {
    cfg.name = "p";
    cfg.policy = policy;
    for (unsigned i = 0; i < n; ++i) {
      cfg.upstreams.push_back(endpoint::loopback_v4(static_cast<std::uint16_t>(9000 + i)));
      cfg.upstream_names.push_back("127.0.0.1:" + std::to_string(9000 + i));
    }
    stats = std::make_unique<upstream_stats[]>(n);
    pool = std::make_unique<upstream_pool>(cfg, stats.get());
  }
};

const time_point t0{100s};

TEST(gateway_pool, round_robin_takes_turns) {
  fixture f(3, lb_policy::round_robin);
  std::vector<unsigned> got;
  for (int i = 0; i < 6; ++i) got.push_back(*f.pool->pick(0, 0, t0));
  EXPECT_EQ(got, (std::vector<unsigned>{0, 1, 2, 0, 1, 2}));
}

TEST(gateway_pool, a_request_never_gets_an_upstream_it_tried) {
  fixture f(3, lb_policy::round_robin);
  std::uint64_t tried = 0;
  std::set<unsigned> seen;
  for (int i = 0; i < 3; ++i) {
    auto p = f.pool->pick(0, tried, t0);
    ASSERT_TRUE(p);
    EXPECT_TRUE(seen.insert(*p).second);
    tried |= 1u << *p;
  }
  EXPECT_FALSE(f.pool->pick(0, tried, t0)) << "all three tried: none left";
}

TEST(gateway_pool, least_conn_picks_the_fewest_in_use) {
  fixture f(3, lb_policy::least_conn);
  f.pool->acquire(0);
  f.pool->acquire(0);
  f.pool->acquire(2);
  EXPECT_EQ(*f.pool->pick(0, 0, t0), 1u);
  f.pool->acquire(1);
  f.pool->acquire(1);
  EXPECT_EQ(*f.pool->pick(0, 0, t0), 2u);
  f.pool->release(0);
  f.pool->release(0);
  EXPECT_EQ(*f.pool->pick(0, 0, t0), 0u);
  EXPECT_EQ(f.stats[1].active.get(), 2u);
}

TEST(gateway_pool, source_hash_keeps_a_client_on_one_upstream) {
  fixture f(4, lb_policy::source_hash);
  std::set<unsigned> used;
  for (std::uint64_t client = 0; client < 64; ++client) {
    const std::uint64_t key = upstream_pool::hash("10.0.0." + std::to_string(client));
    const unsigned first = *f.pool->pick(key, 0, t0);
    for (int again = 0; again < 3; ++again) EXPECT_EQ(*f.pool->pick(key, 0, t0), first);
    used.insert(first);
  }
  EXPECT_EQ(used.size(), 4u) << "64 clients spread over all four";
}

TEST(gateway_pool, consistent_hash_moves_only_the_keys_of_an_upstream_that_leaves) {
  fixture f(4, lb_policy::consistent_hash);
  f.cfg.max_fails = 1;
  std::map<std::uint64_t, unsigned> before;
  std::map<unsigned, int> load;
  for (int k = 0; k < 2000; ++k) {
    const std::uint64_t key = upstream_pool::hash("/item/" + std::to_string(k));
    before[key] = *f.pool->pick(key, 0, t0);
    ++load[before[key]];
  }
  for (auto [member, n] : load) EXPECT_GT(n, 250) << "member " << member << " gets a fair share";
  f.pool->failed(2, t0);  // ejected
  int moved = 0;
  for (auto [key, member] : before) {
    const unsigned now = *f.pool->pick(key, 0, t0 + 1s);
    if (member == 2) {
      EXPECT_NE(now, 2u);
    } else {
      moved += now != member;
    }
  }
  EXPECT_EQ(moved, 0) << "keys of the other upstreams stay where they were";
  for (auto [key, member] : before) EXPECT_EQ(*f.pool->pick(key, 0, t0 + 20s), member) << "back after eject_time";
}

TEST(gateway_pool, passive_ejection_after_max_fails_and_recovery_after_eject_time) {
  fixture f(2, lb_policy::round_robin);
  f.cfg.max_fails = 3;
  f.cfg.eject_time = 10s;
  f.pool->failed(0, t0);
  f.pool->failed(0, t0);
  EXPECT_TRUE(f.pool->available(0, t0)) << "two failures are not three";
  f.pool->succeeded(0);
  f.pool->failed(0, t0);
  f.pool->failed(0, t0);
  EXPECT_TRUE(f.pool->available(0, t0)) << "a success starts the count again";
  f.pool->failed(0, t0);
  EXPECT_FALSE(f.pool->available(0, t0));
  EXPECT_EQ(f.stats[0].ejections.get(), 1u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*f.pool->pick(0, 0, t0 + 5s), 1u) << "only the healthy one";
  EXPECT_TRUE(f.pool->available(0, t0 + 10s));
  std::set<unsigned> both;
  for (int i = 0; i < 4; ++i) both.insert(*f.pool->pick(0, 0, t0 + 10s));
  EXPECT_EQ(both.size(), 2u) << "tried again after eject_time";
}

TEST(gateway_pool, health_checks_take_out_after_fall_and_bring_back_after_rise) {
  fixture f(2, lb_policy::round_robin);
  f.cfg.check.fall = 2;
  f.cfg.check.rise = 3;
  f.pool->checked(1, false);
  EXPECT_TRUE(f.pool->available(1, t0));
  f.pool->checked(1, false);
  EXPECT_FALSE(f.pool->available(1, t0));
  EXPECT_EQ(f.stats[1].check_up.get(), 0u);
  EXPECT_EQ(f.stats[1].checks_failed.get(), 2u);
  f.pool->checked(1, true);
  f.pool->checked(1, true);
  EXPECT_FALSE(f.pool->available(1, t0)) << "two passes are not three";
  f.pool->checked(1, false);
  f.pool->checked(1, true);
  f.pool->checked(1, true);
  EXPECT_FALSE(f.pool->available(1, t0)) << "a failure starts the count again";
  f.pool->checked(1, true);
  EXPECT_TRUE(f.pool->available(1, t0));
  EXPECT_EQ(f.stats[1].check_up.get(), 1u);
}

TEST(gateway_pool, when_all_are_down_they_are_tried_anyway) {
  fixture f(2, lb_policy::round_robin);
  f.cfg.max_fails = 1;
  f.pool->failed(0, t0);
  f.pool->failed(1, t0);
  auto first = f.pool->pick(0, 0, t0);
  ASSERT_TRUE(first) << "better a try than a certain 502";
  auto second = f.pool->pick(0, 1u << *first, t0);
  ASSERT_TRUE(second);
  EXPECT_NE(*first, *second);
  EXPECT_FALSE(f.pool->pick(0, 3, t0));
}

TEST(gateway_pool, an_available_upstream_is_preferred_to_retrying_a_down_one) {
  fixture f(3, lb_policy::round_robin);
  f.cfg.max_fails = 1;
  f.pool->failed(0, t0);
  // Upstream 1 was tried and failed for this request; 2 is untried and up.
  EXPECT_EQ(*f.pool->pick(0, 1u << 1, t0), 2u);
  // With 2 tried as well, the down one is not tried while others are up.
  EXPECT_FALSE(f.pool->pick(0, (1u << 1) | (1u << 2), t0));
}

}  // namespace
}  // namespace sluice::gateway
