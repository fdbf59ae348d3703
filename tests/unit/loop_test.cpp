// The loop's own rules, stepped one iteration at a time (run_once) over the
// epoll transport, with a manual clock: handles, deadlines, limits, stop.

#include "stepping.hpp"
#include "sluice/transport/loop.hpp"

#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <functional>

#include "net.hpp"
#include "sluice/epoll/epoll_transport.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test_loop = loop<epoll::epoll_transport>;

struct recorder final : handler {
  std::vector<connection_handle> opened;
  std::vector<close_reason> closed;
  std::string received;
  bool consume = true;
  std::function<void(connection&)> on_open_fn;
  std::function<void(connection&)> on_data_fn;  // instead of recording
  void on_open(connection& c) noexcept override {
    opened.push_back(c.handle());
    if (on_open_fn) on_open_fn(c);
  }
  void on_data(connection& c) noexcept override {
    if (on_data_fn) return on_data_fn(c);
    if (!consume) return;
    while (!c.input().empty()) received += std::string(*c.input().next(std::min<std::size_t>(c.input().size(), 4096)));
  }
  void on_close(connection&, close_reason r) noexcept override { closed.push_back(r); }
};

duration opts_linger() { return loop_options{}.linger_timeout + 1ms; }

struct fixture {
  manual_clock clock;
  loop_options opts;
  std::unique_ptr<test_loop> l;
  recorder rec;
  endpoint at;

  explicit fixture(std::function<void(loop_options&)> tweak = {}) {
    opts.clock.manual = &clock;
    if (tweak) tweak(opts);
    l = std::make_unique<test_loop>(opts, 0);
    auto lr = l->listen(endpoint::loopback_v4(0), rec);
    EXPECT_TRUE(lr.ok());
    at = (*lr)->local();
  }
  ~fixture() {
    l->stop(0s);
    for (int i = 0; i < 100 && l->connection_count() != 0; ++i) l->run_once();
  }
  // Steps the loop until pred holds (tests/support/stepping.hpp).
  bool step_until(const std::function<bool()>& pred, int n = 2000) { return test::step_until(*l, pred, n); }
  int connect_client() {
    int fd = test::connect_to(at);
    EXPECT_GE(fd, 0);
    std::size_t before = rec.opened.size();
    EXPECT_TRUE(step_until([&] { return rec.opened.size() > before; }));
    return fd;
  }
};

TEST(loop, stale_handle_is_rejected_after_close_and_reuse) {
  fixture f;
  int a = f.connect_client();
  connection_handle ha = f.rec.opened.back();
  ASSERT_NE(f.l->get(ha), nullptr);
  ::close(a);
  ASSERT_TRUE(f.step_until([&] { return f.rec.closed.size() == 1; }));
  EXPECT_EQ(f.l->get(ha), nullptr) << "closed connection's handle is stale";
  int b = f.connect_client();
  connection_handle hb = f.rec.opened.back();
  EXPECT_EQ(hb.index, ha.index) << "the slot is reused (LIFO)";
  EXPECT_NE(hb.generation, ha.generation);
  EXPECT_EQ(f.l->get(ha), nullptr) << "an old handle never reaches the new connection";
  EXPECT_NE(f.l->get(hb), nullptr);
  ::close(b);
}

TEST(loop, handle_from_another_loop_is_rejected) {
  fixture f;
  int a = f.connect_client();
  connection_handle h = f.rec.opened.back();
  h.loop = 7;
  EXPECT_EQ(f.l->get(h), nullptr);
  ::close(a);
}

TEST(loop, idle_deadline_fires_on_the_manual_clock) {
  fixture f([](loop_options& o) { o.idle_timeout = 5s; });
  int a = f.connect_client();
  f.clock.advance(4900ms);
  for (int i = 0; i < 5; ++i) f.l->run_once();
  EXPECT_TRUE(f.rec.closed.empty()) << "not before 5 s";
  f.clock.advance(200ms);
  // The server sends FIN at once, then lingers for the client's FIN.
  for (int i = 0; i < 5; ++i) f.l->run_once();
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(a, rest, 5s)) << "the client sees the close";
  ::close(a);
  ASSERT_TRUE(f.step_until([&] { return !f.rec.closed.empty(); }));
  EXPECT_EQ(f.rec.closed.front(), close_reason::idle_timeout);
}

TEST(loop, read_deadline_moves_with_each_arrival) {
  fixture f([](loop_options& o) { o.read_timeout = 1s; });
  int a = f.connect_client();
  f.clock.advance(800ms);
  ASSERT_TRUE(test::send_all(a, "tick"));
  ASSERT_TRUE(f.step_until([&] { return f.rec.received == "tick"; }));
  f.clock.advance(700ms);  // 1.5 s after open, 0.7 s after the last bytes
  for (int i = 0; i < 5; ++i) f.l->run_once();
  EXPECT_TRUE(f.rec.closed.empty());
  f.clock.advance(400ms);  // 1.1 s after the last bytes
  for (int i = 0; i < 5; ++i) f.l->run_once();
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(a, rest, 5s)) << "FIN sent at the deadline";
  // The client never answers with its own FIN: the linger period ends it.
  f.clock.advance(opts_linger());
  ASSERT_TRUE(f.step_until([&] { return !f.rec.closed.empty(); }, 10));
  EXPECT_EQ(f.rec.closed.front(), close_reason::read_timeout);
  ::close(a);
}

TEST(loop, write_deadline_resets_a_stuck_connection) {
  fixture f([](loop_options& o) {
    o.write_timeout = 2s;
    o.max_output_bytes = 64 << 20;
    o.output_high_water = 64 << 20;
  });
  // The server writes 32 MB to a client that never reads: output gets stuck.
  f.rec.on_open_fn = [](connection& c) {
    std::string chunk(1 << 20, 'w');
    for (int i = 0; i < 32; ++i) (void)c.write(chunk);
  };
  int a = f.connect_client();
  for (int i = 0; i < 50; ++i) f.l->run_once();
  EXPECT_TRUE(f.rec.closed.empty());
  f.clock.advance(2100ms);
  ASSERT_TRUE(f.step_until([&] { return !f.rec.closed.empty(); }, 10));
  EXPECT_EQ(f.rec.closed.front(), close_reason::write_timeout);
  ::close(a);
}

TEST(loop, graceful_stop_closes_what_is_left_after_the_grace_period) {
  fixture f;
  int a = f.connect_client();
  f.l->stop(1s);
  EXPECT_LT(test::connect_to(f.at), 0) << "no longer listening";
  f.clock.advance(500ms);
  for (int i = 0; i < 5; ++i) f.l->run_once();
  EXPECT_TRUE(f.rec.closed.empty()) << "open connections may finish within the grace period";
  f.clock.advance(600ms);
  ASSERT_TRUE(f.step_until([&] { return !f.rec.closed.empty(); }, 10));
  EXPECT_EQ(f.rec.closed.front(), close_reason::shutdown);
  EXPECT_EQ(f.l->connection_count(), 0u);
  ::close(a);
}

TEST(loop, input_limit_stops_reading_until_the_handler_consumes) {
  fixture f([](loop_options& o) { o.max_input_bytes = 64 * 1024; });
  f.rec.consume = false;
  int a = f.connect_client();
  test::set_nonblocking(a);
  std::string data = test::random_bytes(64 << 20, 1);  // more than loopback socket buffers hold
  std::size_t sent = 0;
  // Push until the kernel refuses: the server stopped reading.
  for (int i = 0; i < 2000 && sent < data.size(); ++i) {
    ssize_t r = ::send(a, data.data() + sent, data.size() - sent, MSG_DONTWAIT);
    if (r > 0) sent += static_cast<std::size_t>(r);
    f.l->run_once();
  }
  ASSERT_LT(sent, data.size()) << "backpressure reached the sender";
  connection* c = f.l->get(f.rec.opened.back());
  ASSERT_NE(c, nullptr);
  EXPECT_LE(c->input().size(), 64u * 1024 + 16 * 1024 + 1) << "input bounded near the limit";
  EXPECT_GT(f.l->stats().reads_paused_input_full.get(), 0u);
  // Consume: reading resumes and everything arrives.
  f.rec.consume = true;
  f.rec.on_data(*c);
  ASSERT_TRUE(f.step_until([&] {
    if (sent < data.size()) {
      ssize_t r = ::send(a, data.data() + sent, data.size() - sent, MSG_DONTWAIT);
      if (r > 0) sent += static_cast<std::size_t>(r);
    }
    return f.rec.received.size() == data.size();
  }, 100000));
  EXPECT_EQ(f.rec.received, data);
  ::close(a);
}

TEST(loop, pool_exhaustion_stops_reading_and_resumes) {
  fixture f([](loop_options& o) {
    o.pool.segment_size = 4096;
    o.pool.segments_per_slab = 4;
    o.pool.max_bytes = 4 * 4096;
    o.max_input_bytes = 1 << 20;
  });
  f.rec.consume = false;
  int a = f.connect_client();
  std::string data = test::random_bytes(200000, 2);
  std::size_t sent = 0;
  test::set_nonblocking(a);
  for (int i = 0; i < 200; ++i) {
    ssize_t r = ::send(a, data.data() + sent, data.size() - sent, MSG_DONTWAIT);
    if (r > 0) sent += static_cast<std::size_t>(r);
    f.l->run_once();
  }
  connection* c = f.l->get(f.rec.opened.back());
  ASSERT_NE(c, nullptr);
  EXPECT_LE(c->input().size(), 4u * 4096) << "no more than the pool holds";
  EXPECT_GT(f.l->stats().reads_starved.get(), 0u);
  EXPECT_EQ(f.l->pool().segments_in_use(), 4u);
  f.rec.consume = true;
  f.rec.on_data(*c);
  c->input().release();
  ASSERT_TRUE(f.step_until([&] {
    if (sent < data.size()) {
      ssize_t r = ::send(a, data.data() + sent, data.size() - sent, MSG_DONTWAIT);
      if (r > 0) sent += static_cast<std::size_t>(r);
    }
    return f.rec.received.size() == data.size();
  }, 100000));
  EXPECT_EQ(f.rec.received, data);
  ::close(a);
}

// Regression: a connection that had already sent its FIN (shutdown_write)
// and was closed by the application once the peer's FIN arrived stayed in
// "closing" until linger_timeout ran out (2 s by default), although both
// directions were finished: after_flush() looked at "our FIN was sent"
// (linger for the peer's) before "the peer's FIN already came".
TEST(loop, regression_close_after_both_fins_waited_for_the_linger_timeout) {
  fixture f;
  f.rec.on_open_fn = [](connection& c) {
    (void)c.write("bye");
    c.shutdown_write();
  };
  int a = f.connect_client();
  std::string got;
  EXPECT_TRUE(test::read_to_eof(a, got, 5s)) << "our FIN";
  EXPECT_EQ(got, "bye");
  ::close(a);  // the peer's FIN; the default on_peer_shutdown closes
  // No time passes on the manual clock: the close must not wait for linger.
  ASSERT_TRUE(f.step_until([&] { return !f.rec.closed.empty(); }, 200))
      << "still lingering although both FINs were exchanged";
  EXPECT_EQ(f.rec.closed.front(), close_reason::peer_closed);
}

TEST(loop, write_refused_over_max_output) {
  fixture f([](loop_options& o) { o.max_output_bytes = 1000; });
  bool first = false, second = false;
  f.rec.on_open_fn = [&](connection& c) {
    first = c.write(std::string(900, 'a'));
    second = c.write(std::string(200, 'b'));
  };
  int a = f.connect_client();
  EXPECT_TRUE(first);
  EXPECT_FALSE(second) << "over the limit: refused, nothing silently dropped";
  EXPECT_EQ(f.l->stats().writes_rejected.get(), 1u);
  EXPECT_EQ(test::read_n(a, 900, 2s), std::string(900, 'a'));
  ::close(a);
}

// Two connections whose requests arrive in the same poll: with the default
// (flush once per iteration) the first reply is written after both handlers
// ran; with flush_each_event it is already on its way when the second
// handler runs. Each handler looks at what the clients can read.
std::vector<int> replies_visible_to_each_handler(bool flush_each_event, bool expedite = false) {
  fixture f([&](loop_options& o) { o.flush_each_event = flush_each_event; });
  int a = f.connect_client();
  int b = f.connect_client();
  std::vector<int> seen;
  f.rec.on_data_fn = [&](connection& c) {
    int visible = 0;
    for (int fd : {a, b}) {
      int n = 0;
      if (::ioctl(fd, FIONREAD, &n) == 0 && n > 0) ++visible;
    }
    seen.push_back(visible);
    (void)c.send(std::move(c.input()));
    if (expedite) c.expedite();
  };
  for (int fd : {a, b}) EXPECT_EQ(::send(fd, "x", 1, 0), 1);
  // Both requests in the server's receive queues (the kernel acknowledged
  // them) before the loop polls once.
  auto unacked = [](int fd) {
    int n = 0;
    return ::ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
  };
  for (int i = 0; i < 2000 && (unacked(a) != 0 || unacked(b) != 0); ++i) {
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 1);
  }
  EXPECT_EQ(unacked(a), 0);
  EXPECT_EQ(unacked(b), 0);
  f.l->run_once();
  EXPECT_EQ(seen.size(), 2u) << "both requests were in one poll";
  EXPECT_EQ(test::read_n(a, 1, 2s), "x");
  EXPECT_EQ(test::read_n(b, 1, 2s), "x");
  ::close(a);
  ::close(b);
  return seen;
}

TEST(loop, by_default_output_is_written_once_every_event_of_the_poll_was_handled) {
  EXPECT_EQ(replies_visible_to_each_handler(false), (std::vector<int>{0, 0}));
}

TEST(loop, flush_each_event_writes_a_reply_before_the_next_event_is_handled) {
  EXPECT_EQ(replies_visible_to_each_handler(true), (std::vector<int>{0, 1}));
}

TEST(loop, an_expedited_reply_is_written_before_the_next_event_is_handled) {
  // connection::expedite: the same as flush_each_event for the connection
  // that asks (what a TLS handshake flight does), with the default flushing.
  EXPECT_EQ(replies_visible_to_each_handler(false, true), (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace sluice
