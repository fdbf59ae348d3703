// sluice::relay in a small L4 proxy built on sessions (client side: the
// relay's end a; upstream side: end b), stepped one iteration at a time over
// the epoll transport with a manual clock, between plain kernel sockets that
// the test drives: byte-exact both ways with counts, half-close both ways,
// backpressure bounding what a pair holds, resets passed on as resets, and a
// failed connect retried on another address.

#include "stepping.hpp"
#include "sluice/core/relay.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <optional>

#include "net.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/session.hpp"
#include "sluice/epoll/epoll_transport.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test_loop = loop<epoll::epoll_transport>;

struct client_side;
struct upstream_side;
struct proxy_state;
using front_handler = sessions<client_side, proxy_state*>;
using back_handler = sessions<upstream_side, proxy_state*>;

// What the proxy shares, per loop (here: per test).
struct proxy_state {
  front_handler* front = nullptr;
  back_handler* back = nullptr;
  endpoint upstream;                // where a new client's upstream connects first
  std::optional<endpoint> retry_to; // where to connect after a failed connect
  std::vector<close_reason> a_closed;
  std::vector<close_reason> b_closed;
  std::uint64_t a_to_b = 0;  // the relay's counts when a closed
  std::uint64_t b_to_a = 0;
  connection_handle last_a;
  connection_handle last_b;
};

struct client_side {
  client_side(proxy_state*& s, connection&) noexcept : st(s) {}
  proxy_state* st;
  relay link;

  // Connects this client's upstream to `to`: the relay's first end b, or a
  // new one after a failed connect.
  bool connect(connection& a, const endpoint& to, bool first) noexcept;

  void on_open(connection& a) noexcept {
    st->last_a = a.handle();
    if (!connect(a, st->upstream, true)) a.close();
  }
  void on_data(connection& a) noexcept { link.on_data(a); }
  void on_writable(connection& a) noexcept { link.on_writable(a); }
  void on_peer_shutdown(connection& a) noexcept { link.on_peer_shutdown(a); }
  void on_close(connection& a, close_reason why) noexcept {
    st->a_closed.push_back(why);
    st->a_to_b = link.a_to_b();
    st->b_to_a = link.b_to_a();
    link.on_close(a, why);
  }
};

struct upstream_side {
  upstream_side(proxy_state*& s, connection&) noexcept : st(s) {}
  proxy_state* st;
  connection_handle down;

  // The client's session, while the client connection lives.
  client_side* owner(connection& b) const noexcept {
    connection* a = b.loop().get(down);
    return a != nullptr ? st->front->find(*a) : nullptr;
  }
  void on_open(connection& b) noexcept {
    if (client_side* o = owner(b)) return o->link.on_open(b);
    b.close();
  }
  void on_data(connection& b) noexcept {
    if (client_side* o = owner(b)) o->link.on_data(b);
  }
  void on_writable(connection& b) noexcept {
    if (client_side* o = owner(b)) o->link.on_writable(b);
  }
  void on_peer_shutdown(connection& b) noexcept {
    if (client_side* o = owner(b)) return o->link.on_peer_shutdown(b);
    b.close();
  }
  void on_close(connection& b, close_reason why) noexcept {
    st->b_closed.push_back(why);
    client_side* o = owner(b);
    if (o == nullptr || o->link.on_close(b, why)) return;
    // A failed connect: retry once elsewhere, or give up on the client.
    connection* a = b.loop().get(down);
    if (st->retry_to && o->connect(*a, *std::exchange(st->retry_to, std::nullopt), false)) return;
    a->close();
  }
};

bool client_side::connect(connection& a, const endpoint& to, bool first) noexcept {
  auto h = st->back->connect(a.loop(), to);
  if (!h) return false;
  connection* b = a.loop().get(*h);
  upstream_side* u = b != nullptr ? st->back->find(*b) : nullptr;
  if (u == nullptr) return false;
  u->down = a.handle();
  st->last_b = *h;
  if (first) {
    link.start(a, *h);
  } else {
    link.connect_b(*h);
  }
  return true;
}

struct fixture {
  manual_clock clock;
  loop_options opts;
  proxy_state st;
  front_handler front{&st};
  back_handler back{&st};
  std::unique_ptr<test_loop> l;  // after the handlers: dies first
  endpoint at;
  int upstream_listener = -1;

  explicit fixture(const std::function<void(loop_options&)>& tweak = {}) {
    opts.clock.manual = &clock;
    if (tweak) tweak(opts);
    st.front = &front;
    st.back = &back;
    auto [lfd, where] = test::listen_loopback(16);
    upstream_listener = lfd;
    st.upstream = where;
    l = std::make_unique<test_loop>(opts, 0);
    auto lr = l->listen(endpoint::loopback_v4(0), front);
    EXPECT_TRUE(lr.ok());
    at = (*lr)->local();
  }
  ~fixture() {
    l->stop(0s);
    for (int i = 0; i < 100 && l->connection_count() != 0; ++i) l->run_once();
    ::close(upstream_listener);
  }
  // Steps the loop until pred holds (tests/support/stepping.hpp).
  bool step_until(const std::function<bool()>& pred, int n = 3000) { return test::step_until(*l, pred, n); }
  // A client connected through the proxy and the upstream socket it reached.
  std::pair<int, int> open_pair() {
    int client = test::connect_to(at);
    EXPECT_GE(client, 0);
    int upstream = -1;
    EXPECT_TRUE(step_until([&] {
      if (test::wait_for(upstream_listener, POLLIN, 0ms) & POLLIN) {
        upstream = ::accept4(upstream_listener, nullptr, nullptr, SOCK_CLOEXEC);
      }
      return upstream >= 0;
    }));
    EXPECT_TRUE(step_until([&] {
      client_side* s = live_client();
      return s != nullptr && s->link.b_open();
    }));
    return {client, upstream};
  }
  client_side* live_client() {
    connection* a = l->get(st.last_a);
    return a != nullptr ? front.find(*a) : nullptr;
  }
  // Reads what is there on fd without blocking (appended to out); false on
  // EOF or error.
  static bool drain(int fd, std::string& out) {
    char buf[65536];
    for (;;) {
      ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) {
        out.append(buf, static_cast<std::size_t>(r));
        continue;
      }
      return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }
  // Sends `data` on `from` and reads it on `to`, stepping the loop between
  // non-blocking sends and reads; `reading` says whether `to` is read yet.
  void push(int from, const std::string& data, std::size_t& sent, int to, std::string& got,
            const std::function<bool()>& reading, int steps) {
    for (int i = 0; i < steps && got.size() < data.size(); ++i) {
      if (sent < data.size()) {
        ssize_t r = ::send(from, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) sent += static_cast<std::size_t>(r);
      }
      l->run_once();
      if (reading()) (void)drain(to, got);
    }
  }
};

TEST(relay, moves_bytes_both_ways_exactly_and_counts_them) {
  fixture f;
  auto [client, upstream] = f.open_pair();
  const std::string up = test::random_bytes(300000, 1);
  const std::string down = test::random_bytes(200000, 2);
  std::size_t sent = 0;
  std::string got;
  f.push(client, up, sent, upstream, got, [] { return true; }, 20000);
  ASSERT_EQ(got.size(), up.size());
  EXPECT_TRUE(got == up);
  std::size_t sent_back = 0;
  std::string got_back;
  f.push(upstream, down, sent_back, client, got_back, [] { return true; }, 20000);
  ASSERT_EQ(got_back.size(), down.size());
  EXPECT_TRUE(got_back == down);
  client_side* s = f.live_client();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->link.a_to_b(), up.size());
  EXPECT_EQ(s->link.b_to_a(), down.size());
  ::close(client);
  ::close(upstream);
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1 && f.st.b_closed.size() == 1; }));
  EXPECT_EQ(f.st.a_to_b, up.size());
  EXPECT_EQ(f.st.b_to_a, down.size());
  EXPECT_EQ(f.front.pool().live(), 0u) << "the client's session is gone with its connection";
  EXPECT_EQ(f.back.pool().live(), 0u);
}

TEST(relay, half_close_travels_both_ways) {
  fixture f;
  auto [client, upstream] = f.open_pair();
  ASSERT_TRUE(test::send_all(client, "request"));
  ::shutdown(client, SHUT_WR);
  std::string at_upstream;
  ASSERT_TRUE(f.step_until([&] {
    std::string chunk;
    bool open = fixture::drain(upstream, chunk);
    at_upstream += chunk;
    return !open;
  })) << "the client's FIN reaches the upstream";
  EXPECT_EQ(at_upstream, "request");
  // The other way still flows after the client's FIN.
  ASSERT_TRUE(test::send_all(upstream, "answer after FIN"));
  ::shutdown(upstream, SHUT_WR);
  std::string at_client;
  ASSERT_TRUE(f.step_until([&] {
    std::string chunk;
    bool open = fixture::drain(client, chunk);
    at_client += chunk;
    return !open;
  }));
  EXPECT_EQ(at_client, "answer after FIN");
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1 && f.st.b_closed.size() == 1; }));
  EXPECT_FALSE(relay::abortive(f.st.a_closed[0])) << to_string(f.st.a_closed[0]);
  ::close(client);
  ::close(upstream);
}

TEST(relay, backpressure_bounds_what_a_pair_holds) {
  constexpr std::size_t high = 64 * 1024;
  constexpr std::size_t input_limit = 64 * 1024;
  fixture f([](loop_options& o) {
    o.output_high_water = high;
    o.output_low_water = 16 * 1024;
    o.max_input_bytes = input_limit;
    o.max_output_bytes = 4 << 20;
  });
  auto [client, upstream] = f.open_pair();
  // Small kernel buffers on the upstream side, so that its output backs up.
  int small = 16 * 1024;
  ::setsockopt(upstream, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const std::string data = test::random_bytes(16 << 20, 3);
  std::size_t sent = 0;
  std::string got;
  // The upstream reads nothing: the client must be held back.
  f.push(client, data, sent, upstream, got, [] { return false; }, 3000);
  ASSERT_LT(sent, data.size()) << "backpressure reached the client";
  client_side* s = f.live_client();
  ASSERT_NE(s, nullptr);
  connection* a = s->link.a();
  connection* b = s->link.b();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(a->reading_paused()) << "a is not read while b's output is above high water";
  EXPECT_LE(b->output().size(), high + input_limit + 16 * 1024) << "b's output bounded near the high water";
  EXPECT_LE(a->input().size(), input_limit + 16 * 1024);
  // The upstream reads again: everything arrives, in order.
  f.push(client, data, sent, upstream, got, [] { return true; }, 200000);
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_EQ(s->link.a_to_b(), data.size());
  ::close(client);
  ::close(upstream);
}

// An end closed while held back by backpressure (here as an idle timeout of a
// stalled pair would close it) leaves bytes it never passed on: the other peer
// must get a reset, not a FIN that would pass a truncated stream for a whole one.
TEST(relay, an_end_closed_while_held_back_resets_the_other) {
  fixture f([](loop_options& o) {
    o.output_high_water = 64 * 1024;
    o.output_low_water = 16 * 1024;
    o.max_input_bytes = 64 * 1024;
  });
  auto [client, upstream] = f.open_pair();
  int small = 16 * 1024;
  ::setsockopt(upstream, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const std::string data = test::random_bytes(8 << 20, 5);
  std::size_t sent = 0;
  std::string got;
  f.push(client, data, sent, upstream, got, [] { return false; }, 3000);
  client_side* s = f.live_client();
  ASSERT_NE(s, nullptr);
  connection* a = s->link.a();
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->reading_paused());
  a->close(close_reason::idle_timeout);
  f.clock.advance(3s);  // past the linger: a held back cannot see the client's end
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1 && f.st.b_closed.size() == 1; }));
  EXPECT_EQ(f.st.a_closed.at(0), close_reason::idle_timeout);
  EXPECT_EQ(f.st.b_closed.at(0), close_reason::aborted) << "the upstream is reset, not given a clean FIN";
  std::string rest;
  EXPECT_FALSE(test::read_to_eof(upstream, rest, 5s)) << "the upstream sees a reset";
  ::close(client);
  ::close(upstream);
}

// Regression (examples/tcp_proxy lost the tail of an 8 MiB echo under
// load): the upstream's last bytes and its FIN come in one read while the
// client reads nothing, so passing them on puts the client's side above its
// high water (b held back) just as b ends. Everything b sent was passed on
// with its FIN: the client must get all of it and a FIN, not a reset.
TEST(relay, an_end_that_finished_while_held_back_closes_the_other_cleanly) {
  fixture f([](loop_options& o) {
    o.output_high_water = 64 * 1024;
    o.output_low_water = 16 * 1024;
    o.max_input_bytes = 256 * 1024;
  });
  auto [client, upstream] = f.open_pair();
  ::shutdown(client, SHUT_WR);  // the client's FIN first, as an echo's client sends it
  std::string none;
  ASSERT_TRUE(f.step_until([&] { return !fixture::drain(upstream, none); })) << "the upstream sees the client's end";
  client_side* s = f.live_client();
  ASSERT_NE(s, nullptr);
  // The client reads nothing: the upstream's bytes fill the kernel's buffers
  // towards it, then the proxy's own output to it, below its high water.
  const std::string answer = test::random_bytes(32 << 20, 7);
  std::size_t sent = 0;
  for (int i = 0; i < 200000 && sent < answer.size(); ++i) {
    connection* a = s->link.a();
    ASSERT_NE(a, nullptr);
    if (a->output().size() > 24 * 1024) break;
    ssize_t r = ::send(upstream, answer.data() + sent, std::min<std::size_t>(4096, answer.size() - sent),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) sent += static_cast<std::size_t>(r);
    for (int k = 0; k < 4; ++k) f.l->run_once();
  }
  connection* a = s->link.a();
  ASSERT_NE(a, nullptr);
  ASSERT_GT(a->output().size(), 24u * 1024) << "the proxy holds output for the client";
  ASSERT_FALSE(a->reading_paused() && s->link.b()->reading_paused()) << "b is still read";
  // The last 100 KB and the FIN at once: one read of b takes both, and
  // passing them on goes above the high water.
  const std::size_t last = std::min<std::size_t>(100 * 1024, answer.size() - sent);
  ASSERT_EQ(::send(upstream, answer.data() + sent, last, MSG_DONTWAIT | MSG_NOSIGNAL), static_cast<ssize_t>(last));
  sent += last;
  ::close(upstream);
  for (int k = 0; k < 20; ++k) f.l->run_once();
  // The client reads it all now.
  std::string got;
  bool eof = false;
  for (int i = 0; i < 200000 && !eof; ++i) {
    f.l->run_once();
    char buf[65536];
    ssize_t r = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) got.append(buf, static_cast<std::size_t>(r));
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
  }
  EXPECT_EQ(got.size(), sent);
  EXPECT_TRUE(got == answer.substr(0, sent));
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1 && f.st.b_closed.size() == 1; }));
  EXPECT_FALSE(relay::abortive(f.st.a_closed[0])) << "the client got a FIN, not a reset: "
                                                  << to_string(f.st.a_closed[0]);
  ::close(client);
}

TEST(relay, a_reset_on_one_side_resets_the_other) {
  fixture f;
  auto [client, upstream] = f.open_pair();
  ASSERT_TRUE(test::send_all(client, "x"));
  std::string x;
  ASSERT_TRUE(f.step_until([&] { return fixture::drain(upstream, x) && x == "x"; }));
  test::close_with_reset(upstream);
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1; }));
  EXPECT_EQ(f.st.b_closed.at(0), close_reason::peer_reset);
  EXPECT_EQ(f.st.a_closed.at(0), close_reason::aborted) << "the client is reset, not given a clean FIN";
  std::string rest;
  EXPECT_FALSE(test::read_to_eof(client, rest, 5s)) << "the client sees a reset";
  ::close(client);
}

TEST(relay, a_clean_close_lets_pending_bytes_go_out_first) {
  fixture f;
  auto [client, upstream] = f.open_pair();
  const std::string last = test::random_bytes(100000, 4);
  ASSERT_TRUE(test::send_all(upstream, last));
  ::close(upstream);  // FIN, then gone
  std::string got;
  ASSERT_TRUE(f.step_until([&] { return !fixture::drain(client, got); }));
  EXPECT_TRUE(got == last) << got.size() << " of " << last.size();
  ::close(client);
  ASSERT_TRUE(f.step_until([&] { return f.st.a_closed.size() == 1 && f.st.b_closed.size() == 1; }));
  EXPECT_FALSE(relay::abortive(f.st.a_closed[0]));
}

TEST(relay, a_failed_connect_leaves_a_alone_for_a_retry) {
  fixture f;
  auto [hold, port] = test::reserve_closed_port();
  const endpoint real = f.st.upstream;
  f.st.upstream = endpoint::loopback_v4(port);
  f.st.retry_to = real;
  int client = test::connect_to(f.at);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(test::send_all(client, "sent while connecting"));
  int upstream = -1;
  ASSERT_TRUE(f.step_until([&] {
    if (test::wait_for(f.upstream_listener, POLLIN, 0ms) & POLLIN) {
      upstream = ::accept4(f.upstream_listener, nullptr, nullptr, SOCK_CLOEXEC);
    }
    return upstream >= 0;
  }));
  ASSERT_EQ(f.st.b_closed.size(), 1u);
  EXPECT_EQ(f.st.b_closed[0], close_reason::connect_refused);
  EXPECT_TRUE(f.st.a_closed.empty()) << "the failed connect did not end the client";
  std::string got;
  ASSERT_TRUE(f.step_until([&] {
    (void)fixture::drain(upstream, got);
    return got.size() >= 21;
  }));
  EXPECT_EQ(got, "sent while connecting") << "bytes sent before b opened go on once it does";
  ::close(client);
  ::close(upstream);
  ::close(hold);
}

TEST(relay, abortive_endings_are_the_failures) {
  EXPECT_TRUE(relay::abortive(close_reason::peer_reset));
  EXPECT_TRUE(relay::abortive(close_reason::aborted));
  EXPECT_TRUE(relay::abortive(close_reason::io_error));
  EXPECT_TRUE(relay::abortive(close_reason::shutdown));
  EXPECT_FALSE(relay::abortive(close_reason::local));
  EXPECT_FALSE(relay::abortive(close_reason::peer_closed));
  EXPECT_FALSE(relay::abortive(close_reason::idle_timeout));
}

}  // namespace
}  // namespace sluice
