// Loopback tests of the epoll transport and the runtime, with an echo handler
// in process and independent kernel-socket clients (tests/support/net.hpp).

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "echo_handlers.hpp"
#include "net.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice/core/udp_socket.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// What the server saw, for the tests to wait on. Any thread.
struct observations {
  std::mutex mu;
  std::condition_variable cv;
  std::map<close_reason, int> closed;
  int opened = 0;

  void note_open() {
    std::lock_guard l(mu);
    ++opened;
    cv.notify_all();
  }
  void note_close(close_reason r) {
    std::lock_guard l(mu);
    ++closed[r];
    cv.notify_all();
  }
  // Waits (on events, with a deadline) until `r` was seen `n` times.
  bool wait_closed(close_reason r, int n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, timeout, [&] { return closed[r] >= n; });
  }
};

class echo_handler final : public handler {
 public:
  explicit echo_handler(observations* obs) : obs_(obs) {}
  void on_open(connection&) noexcept override {
    if (obs_) obs_->note_open();
  }
  // sluice-echo's own handler does the echoing.
  void on_data(connection& c) noexcept override { app_.on_data(c); }
  void on_writable(connection& c) noexcept override { app_.on_writable(c); }
  void on_peer_shutdown(connection& c) noexcept override { app_.on_peer_shutdown(c); }
  void on_close(connection&, close_reason r) noexcept override {
    if (obs_) obs_->note_close(r);
  }

 private:
  observations* obs_;
  echo_app::echo_handler app_;
};

// An echo server on 127.0.0.1:0, running in this process.
struct echo_server {
  observations obs;
  runtime rt;
  endpoint at;
  explicit echo_server(runtime_config cfg = {}, endpoint where = endpoint::loopback_v4(0)) : rt(prepare(cfg)) {
    rt.listen(where, [this](loop_base&) { return std::make_unique<echo_handler>(&obs); });
    auto r = rt.start();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    if (r.ok()) at = rt.bound().front();
  }
  ~echo_server() {
    rt.stop(1s);
    rt.wait();
  }
  static runtime_config prepare(runtime_config cfg) {
    if (cfg.transport == "auto") cfg.transport = "epoll";  // these tests are epoll's unless one names another
    cfg.handle_signals = false;
    return cfg;
  }
};

// n clients send log-uniform payloads (1 byte to 1 MiB; with `edges`, the
// first two exactly 1 B and 1 MiB) in random chunks, half-close, and must get
// each byte back, then the server's FIN.
void echo_random_payloads(echo_server& srv, std::size_t n, std::uint64_t seed, std::uint64_t payload_seed,
                          bool edges) {
  std::mt19937_64 rng(seed);
  std::vector<test::stream_client> clients(n);
  std::size_t total = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    // Log-uniform sizes from 1 byte to 1 MiB.
    double e = std::uniform_real_distribution<double>(0, 20)(rng);
    std::size_t size = std::max<std::size_t>(1, static_cast<std::size_t>(std::pow(2.0, e)));
    if (edges && i == 0) size = 1;
    if (edges && i == 1) size = 1 << 20;
    clients[i].payload = test::random_bytes(size, payload_seed + i);
    total += size;
    clients[i].fd = test::connect_nonblocking(srv.at);
    ASSERT_GE(clients[i].fd, 0);
  }
  ASSERT_TRUE(test::drive(clients, rng, 120s));
  std::size_t exact = 0;
  for (auto& c : clients) {
    if (c.eof && c.got == c.payload) ++exact;
    ::close(c.fd);
  }
  EXPECT_EQ(exact, clients.size()) << "every connection echoed byte-exact, then closed after the half-close ("
                                   << total << " bytes each way)";
  EXPECT_TRUE(srv.obs.wait_closed(close_reason::peer_closed, static_cast<int>(clients.size())));
}

TEST(loopback_echo, random_payloads_random_chunks_1000_connections) {
  echo_server srv;
  echo_random_payloads(srv, 1000, 7, 0, true);
}

TEST(loopback_echo, two_loops_share_the_port) {
  runtime_config cfg;
  cfg.placement.loops = 2;
  echo_server srv(cfg);
  std::mt19937_64 rng(11);
  std::vector<test::stream_client> clients(64);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].payload = test::random_bytes(1 + rng() % 100000, 100 + i);
    clients[i].fd = test::connect_nonblocking(srv.at);
  }
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  for (auto& c : clients) {
    EXPECT_TRUE(c.eof);
    EXPECT_EQ(c.got, c.payload);
    ::close(c.fd);
  }
  EXPECT_GT(srv.rt.loop(0).stats().accepted.get() + srv.rt.loop(1).stats().accepted.get(), 63u);
}

TEST(loopback_echo, ipv6_loopback) {
  echo_server srv({}, endpoint::loopback_v6(0));
  ASSERT_TRUE(srv.at.is_v6());
  int fd = test::connect_to(srv.at);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(test::send_all(fd, "over v6"));
  EXPECT_EQ(test::read_n(fd, 7), "over v6");
  ::close(fd);
}

TEST(loopback_echo, half_close_delivers_everything_then_fin) {
  echo_server srv;
  int fd = test::connect_to(srv.at);
  ASSERT_GE(fd, 0);
  std::string data = test::random_bytes(300000, 3);
  ASSERT_TRUE(test::send_all(fd, data));
  ::shutdown(fd, SHUT_WR);
  std::string got;
  EXPECT_TRUE(test::read_to_eof(fd, got));
  EXPECT_EQ(got, data);
  ::close(fd);
  EXPECT_TRUE(srv.obs.wait_closed(close_reason::peer_closed, 1));
}

TEST(loopback_echo, peer_reset_is_reported) {
  echo_server srv;
  int fd = test::connect_to(srv.at);
  ASSERT_TRUE(test::send_all(fd, "abc"));
  EXPECT_EQ(test::read_n(fd, 3), "abc");
  test::close_with_reset(fd);
  EXPECT_TRUE(srv.obs.wait_closed(close_reason::peer_reset, 1));
}

TEST(loopback_echo, idle_deadline_closes_the_connection) {
  runtime_config cfg;
  cfg.loop.idle_timeout = 200ms;
  echo_server srv(cfg);
  int fd = test::connect_to(srv.at);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(test::send_all(fd, "ping"));
  EXPECT_EQ(test::read_n(fd, 4), "ping");
  auto t0 = std::chrono::steady_clock::now();
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(fd, rest, 5s)) << "the server closes an idle connection";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms) << "not before the deadline";
  ::close(fd);
  EXPECT_TRUE(srv.obs.wait_closed(close_reason::idle_timeout, 1));
}

// A client handler that records how its connects end.
class connect_probe final : public handler {
 public:
  explicit connect_probe(observations* obs) : obs_(obs) {}
  void on_open(connection& c) noexcept override {
    obs_->note_open();
    c.close();
  }
  void on_data(connection&) noexcept override {}
  void on_close(connection& c, close_reason r) noexcept override {
    error_ = c.error();
    obs_->note_close(r);
  }
  int error_ = 0;

 private:
  observations* obs_;
};

TEST(loopback_echo, connect_to_closed_port_is_refused) {
  auto [holder, port] = test::reserve_closed_port();
  observations obs;
  runtime_config cfg;
  cfg.transport = "epoll";
  cfg.handle_signals = false;
  runtime rt(cfg);
  connect_probe probe(&obs);
  rt.on_start([&](loop_base& l) -> result<void> {
    auto h = l.connect(endpoint::loopback_v4(port), probe);
    if (!h) return h.err();
    return {};
  });
  ASSERT_TRUE(rt.start().ok());
  EXPECT_TRUE(obs.wait_closed(close_reason::connect_refused, 1));
  EXPECT_EQ(probe.error_, ECONNREFUSED);
  EXPECT_EQ(obs.opened, 0) << "a refused connect never opens";
  rt.stop(0s);
  rt.wait();
  ::close(holder);
}

TEST(loopback_echo, listening_on_a_busy_port_fails_clearly) {
  auto [holder, busy] = test::listen_loopback();
  ASSERT_GE(holder, 0);

  runtime_config cfg;
  cfg.transport = "epoll";
  cfg.handle_signals = false;
  runtime rt(cfg);
  observations obs;
  rt.listen(busy, [&](loop_base&) { return std::make_unique<echo_handler>(&obs); });
  auto r = rt.start();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("cannot listen on " + busy.to_string()), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("Address already in use"), std::string::npos) << r.err().message;
  ::close(holder);
}

TEST(loopback_echo, busy_port_even_against_another_reuseport_listener) {
  // SO_REUSEPORT would silently share the port with another process of the
  // same user: sluice checks first and refuses.
  auto [holder, busy] = test::listen_loopback(1, /*reuse_port=*/true);
  ASSERT_GE(holder, 0);
  runtime_config cfg;
  cfg.transport = "epoll";
  cfg.handle_signals = false;
  runtime rt(cfg);
  observations obs;
  rt.listen(busy, [&](loop_base&) { return std::make_unique<echo_handler>(&obs); });
  EXPECT_FALSE(rt.start().ok());
  ::close(holder);
}

// 20 clients have each sent 1000 bytes when the server is asked to stop: it
// accepts no more, but every open connection is echoed to the end.
void graceful_stop_loses_nothing(echo_server& srv, std::uint64_t seed, std::uint64_t payload_seed) {
  std::mt19937_64 rng(seed);
  std::vector<test::stream_client> clients(20);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].payload = test::random_bytes(200000 + i * 1000, payload_seed + i);
    clients[i].fd = test::connect_nonblocking(srv.at);
  }
  // Every connection is open and has started before the stop.
  {
    std::unique_lock l(srv.obs.mu);
    ASSERT_TRUE(srv.obs.cv.wait_for(l, 10s, [&] { return srv.obs.opened == 20; }));
  }
  for (auto& c : clients) {
    ASSERT_TRUE(test::wait_for(c.fd, POLLOUT, 5s) & POLLOUT);
    ssize_t r = ::send(c.fd, c.payload.data(), 1000, MSG_NOSIGNAL);
    ASSERT_EQ(r, 1000);
    c.sent = 1000;
  }
  srv.rt.stop(30s);  // stop accepting; open connections may finish
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  for (auto& c : clients) {
    EXPECT_TRUE(c.eof);
    EXPECT_EQ(c.got.size(), c.payload.size());
    EXPECT_EQ(c.got, c.payload);
    ::close(c.fd);
  }
  // And it no longer accepts.
  int late = test::connect_to(srv.at);
  EXPECT_LT(late, 0);
  if (late >= 0) ::close(late);
}

TEST(loopback_echo, graceful_stop_loses_no_echoed_bytes) {
  echo_server srv;
  graceful_stop_loses_nothing(srv, 5, 50);
}

// The same echo over the io_uring transport (issue 18), where it can run.
runtime_config on_io_uring() {
  runtime_config cfg;
  cfg.transport = "io_uring";
  return cfg;
}
std::string io_uring_unavailable() {
  const transport_entry* e = find_transport("io_uring");
  if (e == nullptr) return "the io_uring transport is not built here";
  return e->probe();
}

TEST(loopback_echo, io_uring_random_payloads_random_chunks_200_connections) {
  if (auto why = io_uring_unavailable(); !why.empty()) GTEST_SKIP() << why;
  echo_server srv(on_io_uring());
  echo_random_payloads(srv, 200, 11, 100, false);
}

TEST(loopback_echo, io_uring_graceful_stop_loses_no_echoed_bytes) {
  if (auto why = io_uring_unavailable(); !why.empty()) GTEST_SKIP() << why;
  echo_server srv(on_io_uring());
  graceful_stop_loses_nothing(srv, 6, 70);
}

class udp_echo final : public datagram_handler {
 public:
  void on_datagram(udp_socket& s, const endpoint& from, std::string_view payload) noexcept override {
    (void)s.send_to(from, payload);
  }
};

TEST(loopback_echo, udp_datagrams_keep_boundaries) {
  runtime_config cfg;
  cfg.transport = "epoll";
  cfg.handle_signals = false;
  runtime rt(cfg);
  rt.udp_bind(endpoint::loopback_v4(0), [](loop_base&) { return std::make_unique<udp_echo>(); });
  ASSERT_TRUE(rt.start().ok());
  endpoint at = rt.udp_bound().front();
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(::connect(fd, at.data(), at.size()), 0);
  std::map<std::string, int> want;
  for (int i = 0; i < 100; ++i) {
    std::string d = test::random_bytes(1 + static_cast<std::size_t>(i) * 97, 900 + static_cast<unsigned>(i));
    ASSERT_EQ(::send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
    ++want[d];
    // Wait for each echo: UDP may drop under a burst, and a drop is not what we test.
    ASSERT_TRUE(test::wait_for(fd, POLLIN, 5s) & POLLIN);
    char buf[65536];
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(r, 0);
    std::string got(buf, static_cast<std::size_t>(r));
    EXPECT_EQ(want.count(got), 1u) << "a datagram came back whole";
    --want[got];
  }
  ::close(fd);
  rt.stop(0s);
  rt.wait();
}

}  // namespace
}  // namespace sluice
