// Cross-core messaging: tasks, the SPSC ring, and the runtime's mailboxes
// under a multi-threaded stress run (ordering per pair, nothing lost, replies
// back to the caller, sleeping loops woken and busy ones not disturbed).
// CI also runs this file under ThreadSanitizer.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sluice/transport/loop.hpp"
#include "sluice/core/mail_hub.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice/core/spsc_ring.hpp"
#include "sluice/core/task.hpp"
#include "sluice/epoll/epoll_transport.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

struct counted {
  static inline int alive = 0;
  int v;
  explicit counted(int x) : v(x) { ++alive; }
  counted(counted&& o) noexcept : v(o.v) { ++alive; }
  ~counted() { --alive; }
};

TEST(task, runs_once_and_destroys_its_captures) {
  loop<epoll::epoll_transport> here(loop_options{}, 0);
  int ran = 0;
  {
    task t([c = counted(7), &ran](loop_base&) { ran += c.v; });
    EXPECT_EQ(counted::alive, 1);
    task moved(std::move(t));
    EXPECT_FALSE(t);
    EXPECT_TRUE(moved);
    moved.run(here);
    EXPECT_FALSE(moved);
    EXPECT_EQ(ran, 7);
    EXPECT_EQ(counted::alive, 0) << "captures die right after the run";
    task never([c = counted(1)](loop_base&) {});
    EXPECT_EQ(counted::alive, 1);
  }
  EXPECT_EQ(counted::alive, 0) << "an unrun task destroys its captures";
}

TEST(spsc_ring, keeps_order_and_reports_full) {
  loop<epoll::epoll_transport> here(loop_options{}, 0);
  spsc_ring ring(8);
  std::vector<int> got;
  for (int i = 0; i < 8; ++i) {
    task t([i, &got](loop_base&) { got.push_back(i); });
    ASSERT_TRUE(ring.push(t));
  }
  task extra([&got](loop_base&) { got.push_back(99); });
  EXPECT_FALSE(ring.push(extra)) << "full";
  EXPECT_TRUE(extra) << "a refused task is left to the caller";
  EXPECT_EQ(ring.drain(here), 8u);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(ring.push(extra));
  EXPECT_EQ(ring.drain(here), 1u);
  EXPECT_EQ(got.back(), 99);
}

TEST(spsc_ring, two_threads_lose_nothing_and_keep_order) {
  constexpr int n = 200000;
  spsc_ring ring(1024);
  std::atomic<int> next{0};
  std::atomic<int> disorder{0};
  std::thread consumer([&] {
    loop<epoll::epoll_transport> here(loop_options{}, 1);
    while (next.load(std::memory_order_relaxed) < n) ring.drain(here);
  });
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      task t([i, &next, &disorder](loop_base&) {
        if (next.load(std::memory_order_relaxed) != i) disorder.fetch_add(1);
        next.store(i + 1, std::memory_order_relaxed);
      });
      while (!ring.push(t)) std::this_thread::yield();
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(next.load(), n);
  EXPECT_EQ(disorder.load(), 0);
}

// A runtime whose loops only exchange messages.
struct mesh {
  runtime rt;
  explicit mesh(unsigned loops, bool busy) : rt(config(loops, busy)) {
    auto r = rt.start();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  }
  ~mesh() {
    rt.stop(0s);
    rt.wait();
  }
  static runtime_config config(unsigned loops, bool busy) {
    runtime_config c;
    c.transport = "epoll";
    c.handle_signals = false;
    c.placement.loops = loops;
    c.placement.oversubscribe = true;
    c.loop.busy_poll = busy;
    return c;
  }
};

struct tally {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  void finish() {
    std::lock_guard l(mu);
    ++done;
    cv.notify_all();
  }
  bool wait(int n, std::chrono::seconds t = 60s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, t, [&] { return done >= n; });
  }
};

TEST(mailbox, stress_all_pairs_in_order_nothing_lost) {
  constexpr unsigned loops = 4;
  constexpr std::uint64_t per_pair = 20000;  // far more than a ring holds: exercises the overflow path
  mesh m(loops, false);
  // received[to][from]: next sequence number expected; written by `to` only.
  std::vector<std::vector<std::uint64_t>> next(loops, std::vector<std::uint64_t>(loops, 0));
  std::atomic<std::uint64_t> disorder{0};
  std::atomic<std::uint64_t> total{0};
  tally all;
  for (unsigned from = 0; from < loops; ++from) {
    m.rt.loop(from).post([&, from] {
      loop_base& self = m.rt.loop(from);
      for (std::uint64_t seq = 0; seq < per_pair; ++seq) {
        for (unsigned to = 0; to < loops; ++to) {
          if (to == from) continue;
          self.send_to(to, task([&, from, seq](loop_base& here) {
            auto& expect = next[here.id()][from];
            if (expect != seq) disorder.fetch_add(1);
            expect = seq + 1;
            if (total.fetch_add(1) + 1 == per_pair * loops * (loops - 1)) all.finish();
          }));
        }
      }
    });
  }
  ASSERT_TRUE(all.wait(1)) << "received " << total.load() << " of " << per_pair * loops * (loops - 1);
  EXPECT_EQ(disorder.load(), 0u);
  // A loop counts a drained batch in mail_received after its last task has
  // run, so the last message can be seen before its count. A task posted
  // now runs after that drain has returned: once every loop ran one, the
  // counters are final.
  tally barrier;
  for (unsigned i = 0; i < loops; ++i) m.rt.loop(i).post([&] { barrier.finish(); });
  ASSERT_TRUE(barrier.wait(static_cast<int>(loops)));
  std::uint64_t sent = 0, received = 0;
  for (unsigned i = 0; i < loops; ++i) {
    sent += m.rt.loop(i).stats().mail_sent.get();
    received += m.rt.loop(i).stats().mail_received.get();
  }
  EXPECT_EQ(sent, per_pair * loops * (loops - 1));
  EXPECT_EQ(received, sent);
}

TEST(mailbox, submit_to_returns_the_result_to_the_caller_loop) {
  mesh m(3, false);
  tally t;
  std::atomic<int> wrong{0};
  for (unsigned from = 0; from < 3; ++from) {
    m.rt.loop(from).post([&, from] {
      loop_base& self = m.rt.loop(from);
      unsigned to = (from + 1) % 3;
      self.submit_to(
          to, [](loop_base& there) { return there.id() * 10u; },
          [&, from, to](loop_base& back, unsigned result) {
            if (back.id() != from || result != to * 10u) wrong.fetch_add(1);
            t.finish();
          });
    });
  }
  ASSERT_TRUE(t.wait(3));
  EXPECT_EQ(wrong.load(), 0);
}

TEST(mailbox, a_sleeping_loop_is_woken) {
  mesh m(2, false);
  tally t;
  // Loop 1 has nothing to do and no timer: between messages it sleeps in
  // epoll_wait with no timeout, so only a wakeup makes it run the next one.
  // (Whether it is already asleep when a message is sent is a race, so the
  // count of wakeups is checked over many rounds, delivery on every one.)
  constexpr int rounds = 20;
  for (int i = 1; i <= rounds; ++i) {
    m.rt.loop(0).post([&] { m.rt.loop(0).send_to(1, task([&](loop_base&) { t.finish(); })); });
    ASSERT_TRUE(t.wait(i, 10s)) << "round " << i;
  }
  EXPECT_GE(m.rt.loop(0).stats().wakeups_sent.get(), 1u);
}

TEST(mailbox, a_busy_loop_is_not_disturbed) {
  mesh m(2, true);  // busy-poll: never asleep
  tally t;
  constexpr int n = 10000;
  std::atomic<int> got{0};
  m.rt.loop(0).post([&] {
    for (int i = 0; i < n; ++i) {
      m.rt.loop(0).send_to(1, task([&](loop_base&) {
        if (got.fetch_add(1) + 1 == n) t.finish();
      }));
    }
  });
  ASSERT_TRUE(t.wait(1));
  EXPECT_EQ(m.rt.loop(0).stats().wakeups_sent.get(), 0u) << "no wakeup syscall for a loop that never sleeps";
}

}  // namespace
}  // namespace sluice
