// sluice::keepalive_pool with outgoing connections of one loop (epoll, manual
// clock, stepped one iteration at a time) to plain kernel listeners: reuse
// newest first, the bound, the idle timeout, stale connections dropped
// (FIN or bytes from an idle upstream), close_all at stop, the gauge, and no
// allocation when parking and taking.

#include "stepping.hpp"
#include "sluice/core/keepalive_pool.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>

#include "net.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/session.hpp"
#include "sluice/epoll/epoll_transport.hpp"

// Allocations counted while `counting` (the echo benchmark's way).
namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> allocations{0};
}  // namespace

// Replacements of the global allocation functions: malloc and free underneath.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test_loop = loop<epoll::epoll_transport>;

struct pooled;
struct pool_state {
  keepalive_pool* pool = nullptr;
  sessions<pooled, pool_state*>* conns = nullptr;
  std::vector<close_reason> closed;
  unsigned opened = 0;
};

// An upstream connection's session as a client would write it: while it is
// parked, anything from the upstream ends it, and its close leaves the pool.
struct pooled {
  pooled(pool_state*& s, connection&) noexcept : st(s) {}
  pool_state* st;
  keepalive_pool::upstream_id upstream = keepalive_pool::none;
  bool parked = false;

  void on_open(connection&) noexcept { ++st->opened; }
  void on_data(connection& c) noexcept {
    if (parked) leave(c);  // an idle upstream has nothing to say
  }
  void on_peer_shutdown(connection& c) noexcept { leave(c); }
  void leave(connection& c) noexcept {
    if (parked) (void)st->pool->forget(upstream, c);
    parked = false;
    c.close();
  }
  void on_close(connection& c, close_reason why) noexcept {
    st->closed.push_back(why);
    if (upstream != keepalive_pool::none) (void)st->pool->forget(upstream, c);
  }
};

struct fixture {
  manual_clock clock;
  loop_options opts;
  pool_state st;
  sessions<pooled, pool_state*> conns{&st};
  std::unique_ptr<test_loop> l;
  std::unique_ptr<keepalive_pool> pool;
  int lfd = -1;
  endpoint where;
  std::vector<int> peers;  // the upstream's sides, in accept order

  explicit fixture(duration idle_timeout = 30s) {
    opts.clock.manual = &clock;
    l = std::make_unique<test_loop>(opts, 0);
    pool = std::make_unique<keepalive_pool>(*l, idle_timeout);
    st.pool = pool.get();
    st.conns = &conns;
    std::tie(lfd, where) = test::listen_loopback(64);
  }
  ~fixture() {
    pool->close_all();
    l->stop(0s);
    for (int fd : peers) {
      if (fd >= 0) ::close(fd);
    }
    for (int i = 0; i < 200 && l->connection_count() != 0; ++i) l->run_once();
    l.reset();  // closes what is left: sessions still call forget() on the pool
    pool.reset();
    ::close(lfd);
  }
  // Steps the loop until pred holds (tests/support/stepping.hpp).
  bool step_until(const std::function<bool()>& pred, int n = 3000) { return test::step_until(*l, pred, n); }
  // An open outgoing connection to the listener, registered with upstream u.
  connection* open(keepalive_pool::upstream_id u) {
    auto h = conns.connect(*l, where);
    EXPECT_TRUE(h.ok());
    const unsigned before = st.opened;
    EXPECT_TRUE(step_until([&] {
      if (test::wait_for(lfd, POLLIN, 0ms) & POLLIN) peers.push_back(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
      return st.opened > before;
    }));
    connection* c = l->get(*h);
    EXPECT_NE(c, nullptr);
    if (c != nullptr) conns.find(*c)->upstream = u;
    return c;
  }
  bool park(keepalive_pool::upstream_id u, connection& c) {
    if (!pool->park(u, c)) return false;
    conns.find(c)->parked = true;
    return true;
  }
  connection* take(keepalive_pool::upstream_id u) {
    connection* c = pool->take(u);
    if (c != nullptr) conns.find(*c)->parked = false;
    return c;
  }
};

TEST(keepalive_pool, hands_back_the_newest_first_and_keeps_the_gauge) {
  fixture f;
  counter gauge;
  auto u = f.pool->add_upstream(f.where, 4, &gauge);
  connection* c1 = f.open(u);
  connection* c2 = f.open(u);
  ASSERT_TRUE(c1 && c2);
  const connection_handle h1 = c1->handle();
  const connection_handle h2 = c2->handle();
  ASSERT_TRUE(f.park(u, *c1));
  ASSERT_TRUE(f.park(u, *c2));
  EXPECT_EQ(f.pool->idle(u), 2u);
  EXPECT_EQ(f.pool->idle(), 2u);
  EXPECT_EQ(gauge.get(), 2u);
  connection* t = f.take(u);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->handle(), h2) << "newest first";
  t = f.take(u);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->handle(), h1);
  EXPECT_EQ(f.take(u), nullptr);
  EXPECT_EQ(gauge.get(), 0u);
  EXPECT_EQ(f.pool->reused(), 2u);
}

TEST(keepalive_pool, refuses_over_the_bound_and_what_cannot_be_reused) {
  fixture f;
  auto u = f.pool->add_upstream(f.where, 1);
  auto none = f.pool->add_upstream(f.where, 0);
  connection* c1 = f.open(u);
  connection* c2 = f.open(u);
  ASSERT_TRUE(c1 && c2);
  EXPECT_FALSE(f.pool->park(none, *c1)) << "max_idle 0: no keep-alive";
  ASSERT_TRUE(f.park(u, *c1));
  EXPECT_FALSE(f.pool->park(u, *c2)) << "over max_idle";
  // Unread bytes from the upstream: not reusable.
  ASSERT_TRUE(f.take(u) != nullptr);
  ASSERT_TRUE(test::send_all(f.peers[1], "unsolicited"));
  ASSERT_TRUE(f.step_until([&] { return !c2->input().empty(); }));
  EXPECT_FALSE(f.pool->park(u, *c2));
  EXPECT_EQ(f.pool->find(f.where), u) << "find returns the first upstream registered for the address";
  EXPECT_EQ(f.pool->find(endpoint::loopback_v4(1)), keepalive_pool::none);
}

TEST(keepalive_pool, closes_what_passed_the_idle_timeout) {
  fixture f(5s);
  counter gauge;
  auto u = f.pool->add_upstream(f.where, 8, &gauge);
  connection* c1 = f.open(u);
  ASSERT_TRUE(c1 != nullptr);
  ASSERT_TRUE(f.park(u, *c1));
  f.clock.advance(3s);
  connection* c2 = f.open(u);
  ASSERT_TRUE(c2 != nullptr);
  ASSERT_TRUE(f.park(u, *c2));
  f.clock.advance(2500ms);  // c1 parked 5.5 s ago, c2 2.5 s ago
  ASSERT_TRUE(f.step_until([&] { return f.pool->idle(u) == 1; }, 50));
  EXPECT_EQ(gauge.get(), 1u);
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(f.peers[0], rest, 5s)) << "the upstream sees the close";
  ::close(f.peers[0]);
  f.peers[0] = -1;
  ASSERT_TRUE(f.step_until([&] { return f.st.closed.size() == 1; }));
  EXPECT_EQ(f.st.closed[0], close_reason::idle_timeout);
  f.clock.advance(3s);
  ASSERT_TRUE(f.step_until([&] { return f.pool->idle(u) == 0; }, 50)) << "the timer re-armed for the next";
  EXPECT_EQ(f.pool->closed_stale(), 2u);
  EXPECT_EQ(f.take(u), nullptr);
  EXPECT_EQ(gauge.get(), 0u);
}

TEST(keepalive_pool, an_upstream_closing_an_idle_connection_drops_it) {
  fixture f;
  counter gauge;
  auto u = f.pool->add_upstream(f.where, 8, &gauge);
  connection* c1 = f.open(u);
  connection* c2 = f.open(u);
  ASSERT_TRUE(c1 && c2);
  ASSERT_TRUE(f.park(u, *c1));
  ASSERT_TRUE(f.park(u, *c2));
  ::close(f.peers[1]);  // FIN on the newest
  f.peers.pop_back();
  ASSERT_TRUE(f.step_until([&] { return f.pool->idle(u) == 1; })) << "forget() from on_close";
  EXPECT_EQ(gauge.get(), 1u);
  ASSERT_TRUE(test::send_all(f.peers[0], "garbage"));  // bytes on the other
  ASSERT_TRUE(f.step_until([&] { return f.pool->idle(u) == 0; }));
  EXPECT_EQ(f.take(u), nullptr);
  EXPECT_EQ(gauge.get(), 0u);
}

TEST(keepalive_pool, close_all_empties_it_and_a_stopping_loop_parks_nothing) {
  fixture f;
  counter gauge;
  auto a = f.pool->add_upstream(f.where, 8, &gauge);
  auto b = f.pool->add_upstream(f.where, 8, &gauge);
  connection* c1 = f.open(a);
  connection* c2 = f.open(b);
  connection* c3 = f.open(b);
  ASSERT_TRUE(c1 && c2 && c3);
  ASSERT_TRUE(f.park(a, *c1));
  ASSERT_TRUE(f.park(b, *c2));
  EXPECT_EQ(f.pool->idle(a), 1u);
  EXPECT_EQ(f.pool->idle(b), 1u);
  f.l->stop(10s);
  EXPECT_FALSE(f.pool->park(b, *c3)) << "the loop is stopping";
  f.pool->close_all();
  EXPECT_EQ(f.pool->idle(), 0u);
  EXPECT_EQ(gauge.get(), 0u);
  for (int i : {0, 1}) {
    EXPECT_TRUE(f.step_until([&] {
      char b[64];
      return ::recv(f.peers[i], b, sizeof b, MSG_DONTWAIT) == 0;
    })) << "the pooled connections were closed (FIN)";
  }
}

TEST(keepalive_pool, parking_and_taking_allocate_nothing) {
  fixture f;
  auto u = f.pool->add_upstream(f.where, 16);
  std::vector<connection*> cs;
  for (int i = 0; i < 8; ++i) cs.push_back(f.open(u));
  allocations = 0;
  counting = true;
  for (int round = 0; round < 100; ++round) {
    for (connection* c : cs) (void)f.pool->park(u, *c);
    for (std::size_t i = 0; i < cs.size(); ++i) (void)f.pool->take(u);
  }
  (void)f.pool->park(u, *cs[0]);
  (void)f.pool->forget(u, *cs[0]);
  counting = false;
  EXPECT_EQ(allocations.load(), 0u);
  EXPECT_EQ(f.pool->reused(), 800u);
}

}  // namespace
}  // namespace sluice
