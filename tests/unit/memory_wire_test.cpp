// The memory wire: frames cross in order after the configured delay, and its
// loss, duplication and reordering are seeded: the same seed gives the same
// deliveries; different seeds differ; every buffer comes home.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "frames.hpp"
#include "sluice/memory/memory_port.hpp"

namespace sluice::memory {
namespace {

using namespace std::chrono_literals;
namespace fr = test::frames;

std::vector<std::string> run(const impairments& imp, std::uint64_t seed, memory_wire::direction_stats* stats = nullptr) {
  manual_clock clock;
  memory_wire::options o;
  o.clock = {&clock};
  o.a_to_b = imp;
  o.seed = seed;
  memory_wire w(o);
  memory_port a(w, memory_wire::side::a), b(w, memory_wire::side::b);
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(fr::send(a, "frame " + std::to_string(i)));
  clock.advance(imp.delay);
  auto got = fr::receive_all(b);
  if (stats != nullptr) *stats = w.stats(memory_wire::side::a);
  return got;
}

TEST(memory_wire, a_clean_wire_delivers_everything_in_order_after_the_delay) {
  manual_clock clock;
  memory_wire::options o;
  o.clock = {&clock};
  o.a_to_b.delay = 5ms;
  memory_wire w(o);
  memory_port a(w, memory_wire::side::a), b(w, memory_wire::side::b);
  ASSERT_TRUE(fr::send(a, "one"));
  ASSERT_TRUE(fr::send(a, "two"));
  EXPECT_TRUE(fr::receive_all(b).empty());
  EXPECT_EQ(w.in_flight(memory_wire::side::b), 2u);
  clock.advance(4ms);
  EXPECT_TRUE(fr::receive_all(b).empty()) << "never early";
  clock.advance(1ms);
  EXPECT_EQ(fr::receive_all(b), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(fr::receive_all(a).empty()) << "nothing comes back the other way";
  EXPECT_EQ(a.mac(), o.mac_a);
  EXPECT_EQ(w.free_buffers(memory_wire::side::a), o.buffers_per_end);
}

TEST(memory_wire, impairments_are_deterministic_for_a_seed) {
  impairments imp{.loss = 0.1, .duplicate = 0.05, .reorder = 0.1, .delay = 1ms};
  memory_wire::direction_stats s1, s2;
  auto first = run(imp, 42, &s1);
  auto again = run(imp, 42, &s2);
  auto other = run(imp, 43);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
  EXPECT_EQ(s1.sent, 500u);
  EXPECT_GT(s1.lost, 20u);
  EXPECT_LT(s1.lost, 90u);
  EXPECT_GT(s1.duplicated, 5u);
  EXPECT_GT(s1.reordered, 20u);
  EXPECT_EQ(first.size(), s1.sent - s1.lost + s1.duplicated);
  EXPECT_EQ(s1.delivered, first.size());
  // Reordering is visible: some frame arrives before its predecessor.
  bool out_of_order = false;
  for (std::size_t i = 1; i < first.size(); ++i) {
    auto n = [](const std::string& f) { return std::stoi(f.substr(6)); };
    if (n(first[i]) < n(first[i - 1])) out_of_order = true;
  }
  EXPECT_TRUE(out_of_order);
}

TEST(memory_wire, each_end_has_a_fixed_pool_and_every_buffer_comes_home) {
  memory_wire::options o;
  o.buffers_per_end = 4;
  memory_wire w(o);
  memory_port a(w, memory_wire::side::a), b(w, memory_wire::side::b);
  inet::packet* ps[4];
  ASSERT_EQ(a.allocate(ps, 4), 4u);
  EXPECT_EQ(a.allocate(ps, 1), 0u) << "the pool is empty";
  for (auto* p : ps) p->seg.end = p->seg.begin + 1;
  EXPECT_EQ(a.transmit(ps, 4), 4u);
  EXPECT_EQ(fr::receive_all(b).size(), 4u);
  EXPECT_EQ(w.free_buffers(memory_wire::side::a), 4u);
}

}  // namespace
}  // namespace sluice::memory
