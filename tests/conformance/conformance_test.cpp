// The transport conformance suite: one typed test suite that every transport
// instantiates (transports.hpp). A transport that cannot run here skips every
// test with its probe's reason. The tests use only the transport contract
// (loop_base, connection, handler, udp_socket) plus kernel-socket peers
// (tests/support/net.hpp) that check the transport against the OS. The
// addresses come from the transport's traits: loopback for the kernel
// transports, each loop's own stack address and the kernel behind its tap
// for DPDK. A test that checks what a transport cannot have (IPv6 on the
// IPv4-only user-space stack, descriptors on a stack that has none) skips
// there, saying so.
//
// Two ways of driving a loop: threaded_loop (the loop runs and blocks for
// real, as in production; the test waits on observations) and stepped_loop
// (the test calls run_once with a manual clock: deadlines, backpressure and
// descriptor exhaustion become exact).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "harness.hpp"
#include "net.hpp"
#include "transports.hpp"

namespace sluice::conformance {
namespace {

template <class Traits>
class transport_conformance : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = Traits::unavailable();
    if (!why.empty()) GTEST_SKIP() << Traits::name << " cannot run here: " << why;
  }
};

TYPED_TEST_SUITE(transport_conformance, conformance_transports, transport_names);

// ---- helpers ---------------------------------------------------------------------------

// Listens on the loop's thread; the bound address (empty on failure, with the
// error reported as a test failure).
template <class L>
endpoint listen_on(L& l, const endpoint& at, handler& h, listen_options opts = {}) {
  return l.call([&](loop_base& lp) -> endpoint {
    auto r = lp.listen(at, h, opts);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? (*r)->local() : endpoint{};
  });
}

// Reads until EOF or an error: the bytes, and in *err the errno of the
// failed read (0 for EOF, -1 if neither came within the limit).
std::string read_until_end(int fd, int* err, std::chrono::milliseconds limit = 20s) {
  std::string out;
  *err = -1;
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<char> buf(1 << 16);
  while (std::chrono::steady_clock::now() < deadline) {
    if ((test::wait_for(fd, POLLIN, 100ms) & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (r > 0) {
      out.append(buf.data(), static_cast<std::size_t>(r));
    } else if (r == 0) {
      *err = 0;
      return out;
    } else if (errno != EAGAIN && errno != EINTR) {
      *err = errno;
      return out;
    }
  }
  return out;
}

endpoint local_of(int fd) {
  endpoint e;
  socklen_t len = endpoint::capacity();
  ::getsockname(fd, e.data(), &len);
  return endpoint(e.data(), len);
}

// A listener that completes no handshake: its accept queue (backlog 0) is
// full, so Linux drops further SYNs and a connect to it stays pending.
// On a local address (`on`, port 0); nothing leaves the machine.
struct unresponsive_listener {
  int fd = -1;
  std::vector<int> fillers;
  endpoint at;
  explicit unresponsive_listener(const endpoint& on) {
    fd = ::socket(on.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    const endpoint& any = on;
    EXPECT_EQ(::bind(fd, any.data(), any.size()), 0);
    EXPECT_EQ(::listen(fd, 0), 0);
    at = local_of(fd);
    // Fill the queue with a connection nobody accepts (blocking: it has
    // completed when connect returns), plus one more whose SYN is already
    // dropped, in case a kernel counts the queue as full one later.
    int first = test::connect_to(at);
    EXPECT_GE(first, 0);
    fillers.push_back(first);
    int second = test::connect_nonblocking(at);
    if (second >= 0) fillers.push_back(second);
  }
  ~unresponsive_listener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
};

// A blocking kernel client connected to `at` while the test steps `l`: a
// user-space stack answers the handshake only while its loop runs (for the
// kernel transports the kernel completes it in the backlog by itself, so
// this is connect_to there). -1 if it did not connect.
template <class L>
int connect_stepping(L& l, const endpoint& at) {
  int fd = test::connect_nonblocking(at);
  if (fd < 0) return -1;
  const bool done = l.step_until([&] {
    pollfd p{fd, POLLOUT, 0};
    return ::poll(&p, 1, 0) > 0;
  });
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (!done || err != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// Lowers the soft descriptor limit for the scope of a test.
struct nofile_limit {
  rlimit saved{};
  explicit nofile_limit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit r = saved;
    r.rlim_cur = soft;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  }
  void restore() { ::setrlimit(RLIMIT_NOFILE, &saved); }
  ~nofile_limit() { restore(); }
};

// Runs `body` at the transport's IPv6 address (the loopback for kernel
// sockets, the stack's own address for the user-space stack), or skips the
// test (saying why) on a transport that speaks IPv4 only.
template <class Traits, class Body>
void over_ipv6_loopback(Body body) {
  if constexpr (!Traits::ipv6) {
    GTEST_SKIP() << Traits::name << " speaks IPv4 only";
  } else {
    body(Traits::listen_v6());
  }
}

// ---- listen, accept, connect ------------------------------------------------------------

// Listens at `where` (port 0); a kernel client and a sluice client of the
// same loop connect, are echoed, and close.
template <class Traits>
void listen_accept_connect(const endpoint& where) {
  {
    SCOPED_TRACE(where.to_string());
    observations obs;
    echo_handler server(&obs);
    observations client_obs;
    scripted_handler client(&client_obs);
    client.at_open = [](connection& c) { (void)c.write_and_flush("through sluice"); };
    threaded_loop<Traits> l;
    endpoint at = listen_on(l, where, server);
    ASSERT_EQ(at.family(), where.family());
    ASSERT_NE(at.port(), 0) << "port 0 resolved";
    at = l.call([&](typename Traits::loop_type& lp) { return Traits::reachable(lp, at); });

    // A kernel-socket client.
    int fd = test::connect_to(at);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_TRUE(test::send_all(fd, "through the kernel"));
    EXPECT_EQ(test::read_n(fd, 18), "through the kernel");

    // A sluice client on the same loop: connect(), on_open, echo.
    auto h = l.call([&](loop_base& lp) { return lp.connect(at, client); });
    ASSERT_TRUE(h.ok()) << h.err().message;
    ASSERT_TRUE(client_obs.wait([&] { return client.received.size() >= 14; })) << client.got();
    EXPECT_EQ(client.got(), "through sluice");
    EXPECT_TRUE(client.opened);
    // Its peer is the listener's address; the server saw two connections.
    EXPECT_EQ(l.call([&](loop_base& lp) {
      connection* c = lp.get(client.handle);
      return c != nullptr && c->peer() == at && c->outgoing();
    }),
              true);
    EXPECT_TRUE(obs.wait([&] { return obs.opened == 2; }));
    ::close(fd);
    l.call([&](loop_base& lp) {
      if (connection* c = lp.get(client.handle)) c->close();
      return 0;
    });
    EXPECT_TRUE(obs.wait([&] { return obs.closed[close_reason::peer_closed] == 2; }))
        << "both server sides end when their clients close";
    l.stop();
    EXPECT_EQ(l.segments_left(), 0u);
    EXPECT_EQ(l.connections_left(), 0u);
  }
}

TYPED_TEST(transport_conformance, listen_accept_connect_over_ipv4) {
  listen_accept_connect<TypeParam>(TypeParam::listen_v4());
}

TYPED_TEST(transport_conformance, listen_accept_connect_over_ipv6_loopback) {
  over_ipv6_loopback<TypeParam>([](const endpoint& where) { listen_accept_connect<TypeParam>(where); });
}

TYPED_TEST(transport_conformance, listener_on_a_busy_port_fails_clearly) {
  observations obs;
  echo_handler server(&obs);
  threaded_loop<TypeParam> l;
  // A second listener of the same loop on a port it already listens on.
  endpoint mine = listen_on(l, TypeParam::listen_v4(), server);
  std::string own = l.call([&](loop_base& lp) {
    auto r = lp.listen(mine, server);
    return r.ok() ? std::string("listened") : r.err().message;
  });
  EXPECT_NE(own.find("cannot listen on " + mine.to_string()), std::string::npos) << own;
  EXPECT_NE(own.find("Address already in use"), std::string::npos) << own;
}

TYPED_TEST(transport_conformance, listener_on_a_port_another_socket_holds_fails_clearly) {
  if constexpr (!TypeParam::kernel_sockets) {
    GTEST_SKIP() << TypeParam::name
                 << ": no other socket can hold a port of the user-space stack's address (the stack owns it whole)";
  }
  observations obs;
  echo_handler server(&obs);
  threaded_loop<TypeParam> l;
  // Someone else listens there.
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  endpoint any = endpoint::loopback_v4(0);
  ASSERT_EQ(::bind(holder, any.data(), any.size()), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  endpoint busy = local_of(holder);
  std::string msg = l.call([&](loop_base& lp) {
    auto r = lp.listen(busy, server);
    return r.ok() ? std::string("listened") : r.err().message;
  });
  EXPECT_NE(msg.find("cannot listen on " + busy.to_string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Address already in use"), std::string::npos) << msg;
  ::close(holder);

  // Even another SO_REUSEPORT listener (which would silently share the port)
  // is refused.
  holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(holder, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  ASSERT_EQ(::bind(holder, any.data(), any.size()), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  busy = local_of(holder);
  EXPECT_FALSE(l.call([&](loop_base& lp) { return lp.listen(busy, server).ok(); }));
  ::close(holder);
}

TYPED_TEST(transport_conformance, connect_refused_is_reported_without_opening) {
  const endpoint peer = TypeParam::peer_v4();
  auto [holder, port] = test::reserve_closed_port(peer);
  observations obs;
  scripted_handler client(&obs);
  threaded_loop<TypeParam> l;
  auto h = l.call([&](loop_base& lp) { return lp.connect(endpoint::ipv4(peer.v4_addr(), port), client); });
  ASSERT_TRUE(h.ok()) << "a refused connect is reported through on_close, not as a call error";
  ASSERT_TRUE(obs.wait([&] { return obs.closed[close_reason::connect_refused] == 1; }));
  EXPECT_FALSE(client.opened) << "a refused connect never opens";
  EXPECT_EQ(client.error, ECONNREFUSED);
  EXPECT_EQ(l.stats().connect_failed.get(), 1u);
  ::close(holder);
}

TYPED_TEST(transport_conformance, connect_timeout_on_the_loop_clock) {
  unresponsive_listener blackhole(TypeParam::peer_v4());
  manual_clock clock;
  loop_options opts;
  opts.connect_timeout = 2s;
  stepped_loop<TypeParam> l(opts, &clock);
  observations obs;
  scripted_handler client(&obs);
  auto h = l->connect(blackhole.at, client);
  ASSERT_TRUE(h.ok()) << h.err().message;
  l.steps(20);
  ASSERT_EQ(obs.total_closed(), 0) << "the SYN is dropped: still connecting";
  ASSERT_FALSE(client.opened);
  clock.advance(1900ms);
  l.steps(5);
  EXPECT_EQ(obs.total_closed(), 0) << "not before the deadline";
  clock.advance(200ms);
  ASSERT_TRUE(l.step_until([&] { return obs.total_closed() == 1; }, 10));
  EXPECT_EQ(client.reason, close_reason::connect_timeout);
  EXPECT_FALSE(client.opened);
  EXPECT_EQ(l.finish(), 0u);
}

// ---- data ------------------------------------------------------------------------------------

TYPED_TEST(transport_conformance, echo_of_random_payloads_in_random_chunks_is_byte_exact) {
  observations obs;
  echo_handler server(&obs);
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  std::mt19937_64 rng(17);

  // Kernel clients: sizes log-uniform from 1 byte to 1 MiB.
  std::vector<test::stream_client> clients(40);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    double e = std::uniform_real_distribution<double>(0, 20)(rng);
    std::size_t size = std::max<std::size_t>(1, static_cast<std::size_t>(std::pow(2.0, e)));
    if (i == 0) size = 1;
    if (i == 1) size = 1 << 20;
    clients[i].payload = test::random_bytes(size, 1000 + i);
    clients[i].fd = test::connect_nonblocking(at);
    ASSERT_GE(clients[i].fd, 0);
  }
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  for (auto& c : clients) {
    EXPECT_TRUE(c.eof);
    EXPECT_EQ(c.got.size(), c.payload.size());
    EXPECT_TRUE(c.got == c.payload) << "echo differs";
    ::close(c.fd);
  }

  // Sluice clients on a second loop of the same transport: random chunk
  // sizes through connection::write, respecting writable().
  constexpr int n = 10;
  observations client_obs;
  std::vector<std::unique_ptr<scripted_handler>> hs;
  std::vector<std::string> payloads;
  std::vector<std::size_t> sent(n, 0);
  for (int i = 0; i < n; ++i) {
    payloads.push_back(test::random_bytes(1 + rng() % 300000, 5000 + static_cast<unsigned>(i)));
    auto h = std::make_unique<scripted_handler>(&client_obs);
    auto pump = [&, i](connection& c) {
      std::mt19937_64 local(static_cast<std::uint64_t>(i) * 7 + sent[i]);
      while (sent[i] < payloads[i].size() && c.writable()) {
        std::size_t k = std::min<std::size_t>(payloads[i].size() - sent[i], 1 + local() % 40000);
        if (!c.write(std::string_view(payloads[i]).substr(sent[i], k))) break;
        sent[i] += k;
      }
      if (sent[i] == payloads[i].size() && !c.write_shut()) c.shutdown_write();
    };
    h->at_open = pump;
    h->at_writable = pump;
    hs.push_back(std::move(h));
  }
  {
    threaded_loop<TypeParam> clients_loop;
    clients_loop.call([&](loop_base& lp) {
      for (auto& h : hs) EXPECT_TRUE(lp.connect(at, *h).ok());
      return 0;
    });
    ASSERT_TRUE(client_obs.wait([&] { return client_obs.closes() == n; }, 60s));
    clients_loop.stop();
    EXPECT_EQ(clients_loop.segments_left(), 0u);
  }
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(hs[static_cast<std::size_t>(i)]->reason, close_reason::peer_closed);
    EXPECT_TRUE(hs[static_cast<std::size_t>(i)]->received == payloads[static_cast<std::size_t>(i)])
        << "sluice client " << i << " got " << hs[static_cast<std::size_t>(i)]->received.size() << " of "
        << payloads[static_cast<std::size_t>(i)].size();
  }
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

TYPED_TEST(transport_conformance, a_thousand_concurrent_connections) {
  observations obs;
  echo_handler server(&obs);
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  std::mt19937_64 rng(23);
  std::vector<test::stream_client> clients(1000);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].payload = test::random_bytes(1 + rng() % 8192, 20000 + i);
    clients[i].fd = test::connect_nonblocking(at);
    ASSERT_GE(clients[i].fd, 0) << std::strerror(errno);
  }
  // All of them open at the same time before any byte moves.
  ASSERT_TRUE(obs.wait([&] { return obs.opened == 1000; }, 30s)) << obs.opened;
  EXPECT_EQ(l.call([](loop_base& lp) { return lp.connection_count(); }), 1000u);
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  std::size_t exact = 0;
  std::string first_bad;
  for (auto& c : clients) {
    if (c.eof && c.got == c.payload) {
      ++exact;
    } else if (first_bad.empty()) {
      first_bad = "e.g. sent " + std::to_string(c.sent) + " of " + std::to_string(c.payload.size()) + ", got " +
                  std::to_string(c.got.size()) +
                  (c.eof ? (c.error == 0 ? std::string(", then EOF") : std::string(", then ") + std::strerror(c.error))
                         : std::string(", no EOF")) +
                  (c.payload.compare(0, c.got.size(), c.got) == 0 ? " (a prefix)" : " (differs)");
    }
    ::close(c.fd);
  }
  EXPECT_EQ(exact, clients.size()) << "every connection echoed byte-exact, then closed after the half-close; "
                                   << first_bad;
  EXPECT_TRUE(obs.wait([&] { return obs.closed[close_reason::peer_closed] == 1000; }));
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

TYPED_TEST(transport_conformance, hundred_megabytes_each_way_with_a_checksum) {
  static constexpr std::uint64_t total = 100ull << 20;
  const byte_stream up(0x1111), down(0x2222);
  // The server sends `down` while it receives and checks `up`.
  struct sink_source final : handler {
    const byte_stream* up;
    const byte_stream* down;
    observations* obs;
    std::uint64_t sent = 0, received = 0;
    bool mismatch = false;
    checksum sum;
    void pump(connection& c) noexcept {
      while (sent < total && c.writable()) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(16384, total - sent));
        auto room = c.output().reserve(n);
        if (room.empty()) break;
        down->fill(sent, reinterpret_cast<char*>(room.data()), n);
        c.output().commit(n);
        sent += n;
      }
      c.flush();
      if (sent == total && c.peer_shut()) c.close();
    }
    void on_open(connection& c) noexcept override { pump(c); }
    void on_writable(connection& c) noexcept override { pump(c); }
    void on_data(connection& c) noexcept override {
      c.input().for_each_piece([&](std::string_view piece) {
        if (!up->matches(received, piece)) mismatch = true;
        sum.update(piece);
        received += piece.size();
        return true;
      });
      c.input().skip(c.input().size());
    }
    void on_peer_shutdown(connection& c) noexcept override { pump(c); }
    void on_close(connection& c, close_reason r) noexcept override { obs->note_close(r, c.error()); }
  };
  observations obs;
  sink_source server;
  server.up = &up;
  server.down = &down;
  server.obs = &obs;
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);

  int fd = test::connect_to(at);
  ASSERT_GE(fd, 0);
  test::set_nonblocking(fd);
  std::uint64_t sent = 0, got = 0;
  bool mismatch = false, eof = false;
  checksum got_sum;
  std::string out(1 << 18, '\0'), in(1 << 18, '\0');
  std::size_t out_len = 0, out_off = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!eof && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < total ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 1000) < 0) {
      ASSERT_EQ(errno, EINTR) << std::strerror(errno);  // net_tap's SIGIO interrupts poll
      continue;
    }
    if ((p.revents & POLLOUT) && sent < total) {
      if (out_off == out_len) {
        out_len = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), total - sent));
        up.fill(sent, out.data(), out_len);
        out_off = 0;
      }
      ssize_t r = ::send(fd, out.data() + out_off, out_len - out_off, MSG_NOSIGNAL);
      if (r > 0) {
        out_off += static_cast<std::size_t>(r);
        sent += static_cast<std::uint64_t>(r);
        if (sent == total) ::shutdown(fd, SHUT_WR);
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::recv(fd, in.data(), in.size(), 0);
      if (r > 0) {
        std::string_view piece(in.data(), static_cast<std::size_t>(r));
        if (!down.matches(got, piece)) mismatch = true;
        got_sum.update(piece);
        got += static_cast<std::uint64_t>(r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof = true;
      }
    }
  }
  ::close(fd);
  ASSERT_TRUE(eof) << "timed out: sent " << sent << ", received " << got;
  EXPECT_EQ(got, total);
  EXPECT_FALSE(mismatch) << "the client received bytes that differ from what the server sent";
  EXPECT_EQ(got_sum.value(), checksum_of(down, total));
  ASSERT_TRUE(obs.wait([&] { return obs.closes() == 1; }));
  EXPECT_EQ(server.received, total);
  EXPECT_FALSE(server.mismatch) << "the server received bytes that differ from what the client sent";
  EXPECT_EQ(server.sum.value(), checksum_of(up, total));
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

// ---- half-close, reset, close -------------------------------------------------------------

TYPED_TEST(transport_conformance, half_close_by_the_peer_still_lets_us_answer) {
  observations obs;
  scripted_handler server(&obs);
  // After the client's FIN: answer with what arrived, then close.
  server.at_peer_shutdown = [&](connection& c) {
    (void)c.write("got " + std::to_string(server.received.size()));
    c.close();
  };
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  int fd = test::connect_to(at);
  std::string data = test::random_bytes(200000, 9);
  ASSERT_TRUE(test::send_all(fd, data));
  ::shutdown(fd, SHUT_WR);
  int err = 0;
  std::string answer = read_until_end(fd, &err);
  EXPECT_EQ(err, 0) << "a clean FIN after the answer";
  EXPECT_EQ(answer, "got 200000");
  ::close(fd);
  ASSERT_TRUE(obs.wait([&] { return obs.closes() == 1; }));
  EXPECT_TRUE(server.peer_shut_seen);
  EXPECT_EQ(server.reason, close_reason::local);
  EXPECT_TRUE(server.received == data);
}

TYPED_TEST(transport_conformance, half_close_by_us_still_reads_the_peer) {
  observations obs;
  scripted_handler server(&obs);
  server.at_open = [](connection& c) {
    (void)c.write("hello");
    c.shutdown_write();  // FIN after "hello"; reading goes on
  };
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  int fd = test::connect_to(at);
  int err = -1;
  EXPECT_EQ(read_until_end(fd, &err), "hello");
  EXPECT_EQ(err, 0) << "the client sees our FIN";
  std::string late = test::random_bytes(100000, 4);
  ASSERT_TRUE(test::send_all(fd, late)) << "the other direction still works";
  ASSERT_TRUE(obs.wait([&] { return server.received.size() == late.size(); }));
  ::close(fd);
  ASSERT_TRUE(obs.wait([&] { return obs.closes() == 1; }));
  EXPECT_TRUE(server.received == late);
  EXPECT_EQ(server.reason, close_reason::peer_closed) << "both directions done";
}

TYPED_TEST(transport_conformance, reset_by_the_peer_is_reported) {
  observations obs;
  echo_handler server(&obs);
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  int fd = test::connect_to(at);
  ASSERT_TRUE(test::send_all(fd, "abc"));
  EXPECT_EQ(test::read_n(fd, 3), "abc");
  test::close_with_reset(fd);
  ASSERT_TRUE(obs.wait([&] { return obs.closed[close_reason::peer_reset] == 1; }));
  std::lock_guard lock(obs.mu);
  EXPECT_EQ(obs.close_errors.back(), ECONNRESET);
}

TYPED_TEST(transport_conformance, reset_by_us_reaches_the_peer) {
  observations obs;
  scripted_handler server(&obs);
  server.at_data = [](connection& c) { c.abort(); };
  threaded_loop<TypeParam> l;
  endpoint at = listen_on(l, TypeParam::listen_v4(), server);
  int fd = test::connect_to(at);
  ASSERT_TRUE(test::send_all(fd, "reset me"));
  int err = 0;
  (void)read_until_end(fd, &err);
  EXPECT_EQ(err, ECONNRESET) << "abort() sends RST, not FIN";
  ::close(fd);
  ASSERT_TRUE(obs.wait([&] { return obs.closes() == 1; }));
  EXPECT_EQ(server.reason, close_reason::aborted);
}

TYPED_TEST(transport_conformance, close_during_pending_output_delivers_it_all) {
  const byte_stream s(77);
  constexpr std::size_t size = 8 << 20;
  loop_options opts;
  opts.max_output_bytes = 32 << 20;
  observations obs;
  scripted_handler graceful(&obs);
  // Everything written at once, then closed: the loop must drain it first.
  graceful.at_open = [&](connection& c) {
    EXPECT_TRUE(c.write(s.bytes(0, size)));
    c.close();
  };
  observations obs2;
  scripted_handler hard(&obs2);
  hard.at_open = [&](connection& c) {
    EXPECT_TRUE(c.write(s.bytes(0, size)));
    c.abort();
  };
  threaded_loop<TypeParam> l(opts);
  endpoint at = listen_on(l, TypeParam::listen_v4(), graceful);
  int fd = test::connect_to(at);
  int err = -1;
  std::string got = read_until_end(fd, &err, 60s);
  EXPECT_EQ(err, 0) << "FIN after the last byte";
  EXPECT_EQ(got.size(), size);
  EXPECT_TRUE(s.matches(0, got));
  ::close(fd);
  ASSERT_TRUE(obs.wait([&] { return obs.closes() == 1; }));
  EXPECT_EQ(graceful.reason, close_reason::local);

  // abort() with output pending discards it and resets.
  endpoint at2 = listen_on(l, TypeParam::listen_v4(), hard);
  int fd2 = test::connect_to(at2);
  std::string got2;
  if (fd2 < 0) {
    // The server aborts as soon as it accepts: the reset may reach this side
    // before connect() returns, and then connect() reports it.
    err = errno;
  } else {
    got2 = read_until_end(fd2, &err, 20s);
    ::close(fd2);
  }
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_LT(got2.size(), size) << "aborted output is discarded";
  ASSERT_TRUE(obs2.wait([&] { return obs2.closes() == 1; }));
  EXPECT_EQ(hard.reason, close_reason::aborted);
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

// ---- deadlines (manual clock) ----------------------------------------------------------------

template <class Traits>
struct deadline_fixture {
  manual_clock clock;
  observations obs;
  scripted_handler server{&obs};
  stepped_loop<Traits> l;
  endpoint at;
  int fd = -1;
  explicit deadline_fixture(loop_options opts) : l(opts, &clock) {
    auto r = l->listen(Traits::listen_v4(), server);
    EXPECT_TRUE(r.ok());
    at = (*r)->local();
    fd = connect_stepping(l, at);
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(l.step_until([&] { return server.opened; }));
  }
  ~deadline_fixture() {
    if (fd >= 0) ::close(fd);
  }
};

TYPED_TEST(transport_conformance, read_deadline_moves_with_each_arrival) {
  loop_options opts;
  opts.read_timeout = 1s;
  deadline_fixture<TypeParam> f(opts);
  f.clock.advance(800ms);
  ASSERT_TRUE(test::send_all(f.fd, "tick"));
  ASSERT_TRUE(f.l.step_until([&] { return f.server.got() == "tick"; }));
  f.clock.advance(900ms);  // 1.7 s after open, 0.9 s after the last bytes
  f.l.steps(5);
  EXPECT_EQ(f.obs.total_closed(), 0);
  f.clock.advance(200ms);  // 1.1 s after the last bytes
  f.l.steps(5);
  int err = -1;
  (void)read_until_end(f.fd, &err, 5s);
  EXPECT_EQ(err, 0) << "FIN at the deadline";
  ::close(f.fd);
  f.fd = -1;
  ASSERT_TRUE(f.l.step_until([&] { return f.obs.total_closed() == 1; }));
  EXPECT_EQ(f.server.reason, close_reason::read_timeout);
}

TYPED_TEST(transport_conformance, idle_deadline_counts_both_directions) {
  loop_options opts;
  opts.idle_timeout = 5s;
  deadline_fixture<TypeParam> f(opts);
  f.server.at_data = [](connection& c) { (void)c.write("pong"); };
  f.clock.advance(4s);
  ASSERT_TRUE(test::send_all(f.fd, "ping"));
  ASSERT_TRUE(f.l.step_until([&] { return f.server.got() == "ping"; }));
  EXPECT_EQ(test::read_n(f.fd, 4, 5s), "pong");
  f.clock.advance(4900ms);
  f.l.steps(5);
  EXPECT_EQ(f.obs.total_closed(), 0) << "not before 5 s of silence";
  f.clock.advance(200ms);
  f.l.steps(5);
  int err = -1;
  (void)read_until_end(f.fd, &err, 5s);
  EXPECT_EQ(err, 0);
  ::close(f.fd);
  f.fd = -1;
  ASSERT_TRUE(f.l.step_until([&] { return f.obs.total_closed() == 1; }));
  EXPECT_EQ(f.server.reason, close_reason::idle_timeout);
}

TYPED_TEST(transport_conformance, write_deadline_resets_a_peer_that_does_not_read) {
  loop_options opts;
  opts.write_timeout = 2s;
  opts.max_output_bytes = 64 << 20;
  opts.output_high_water = 64 << 20;
  manual_clock clock;
  observations obs;
  scripted_handler server(&obs);
  server.at_open = [](connection& c) {
    std::string chunk(1 << 20, 'w');
    for (int i = 0; i < 32; ++i) (void)c.write(chunk);
  };
  stepped_loop<TypeParam> l(opts, &clock);
  auto r = l->listen(TypeParam::listen_v4(), server);
  ASSERT_TRUE(r.ok());
  int fd = connect_stepping(l, (*r)->local());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(l.step_until([&] { return server.opened; }));
  l.steps(50);
  EXPECT_EQ(obs.total_closed(), 0);
  clock.advance(1900ms);
  l.steps(5);
  EXPECT_EQ(obs.total_closed(), 0) << "not before the deadline";
  clock.advance(200ms);
  ASSERT_TRUE(l.step_until([&] { return obs.total_closed() == 1; }, 10));
  EXPECT_EQ(server.reason, close_reason::write_timeout);
  int err = 0;
  (void)read_until_end(fd, &err, 10s);
  EXPECT_EQ(err, ECONNRESET) << "stuck output ends in a reset";
  ::close(fd);
}

// ---- backpressure -----------------------------------------------------------------------------

TYPED_TEST(transport_conformance, backpressure_stops_the_writer_and_on_writable_resumes_it) {
  static constexpr std::uint64_t total = 24ull << 20;  // far more than loopback socket buffers hold
  static constexpr std::size_t chunk = 16384;
  loop_options opts;
  opts.pool.segment_size = 16384;
  opts.output_high_water = 256 * 1024;
  opts.output_low_water = 64 * 1024;
  opts.max_output_bytes = 1 << 20;
  const byte_stream s(4242);
  manual_clock clock;

  struct producer final : handler {
    const byte_stream* s;
    loop_base* lp = nullptr;
    std::uint64_t produced = 0;
    int writable_calls = 0;
    int refused = 0;
    int stopped_unwritable = 0;
    connection_handle handle{};
    std::size_t max_output = 0;
    std::size_t max_segments = 0;
    void note(connection& c) {
      max_output = std::max(max_output, c.output().size());
      max_segments = std::max(max_segments, lp->pool().segments_in_use());
    }
    void produce(connection& c) noexcept {
      if (!c.writable()) ++stopped_unwritable;
      while (produced < total && c.writable()) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - produced));
        if (!c.write(s->bytes(produced, n))) {
          ++refused;
          break;
        }
        produced += n;
        note(c);
        if (!c.writable()) ++stopped_unwritable;
      }
    }
    void on_open(connection& c) noexcept override {
      handle = c.handle();
      produce(c);
    }
    void on_data(connection&) noexcept override {}
    void on_writable(connection& c) noexcept override {
      ++writable_calls;
      note(c);
      produce(c);
    }
  };
  producer server;
  server.s = &s;
  stepped_loop<TypeParam> l(opts, &clock);
  server.lp = &*l;
  auto r = l->listen(TypeParam::listen_v4(), server);
  ASSERT_TRUE(r.ok());
  int fd = connect_stepping(l, (*r)->local());
  ASSERT_GE(fd, 0);
  test::set_nonblocking(fd);
  ASSERT_TRUE(l.step_until([&] { return server.produced > 0; }));

  // The client does not read: the kernel buffers fill, the writer stops.
  std::uint64_t written_before = 0;
  int stable = 0;
  for (int i = 0; i < 2000 && stable < 50; ++i) {
    l->run_once();
    std::uint64_t w = l->stats().bytes_written.get();
    stable = w == written_before ? stable + 1 : 0;
    written_before = w;
  }
  ASSERT_EQ(stable, 50) << "output stopped draining while the peer does not read";
  EXPECT_LT(server.produced, total) << "the writer was stopped";
  connection* c = l->get(server.handle);
  ASSERT_NE(c, nullptr);
  EXPECT_GT(server.stopped_unwritable, 0) << "writable() turned false and stopped the writer";
  // The kernel may have taken a little since (writable() may be true again),
  // but not enough to drain below low water: no on_writable yet.
  EXPECT_GE(c->output().size(), opts.output_low_water) << "the output chain stays full while nobody reads";
  EXPECT_EQ(c->output().size(), server.produced - l->stats().bytes_written.get());
  const int writable_before = server.writable_calls;
  l.steps(20);
  EXPECT_EQ(server.writable_calls, writable_before) << "no on_writable while the output cannot drain";
  EXPECT_EQ(l->stats().bytes_written.get(), written_before);

  // Memory stays bounded by the limits.
  EXPECT_LE(server.max_output, opts.output_high_water + chunk);
  EXPECT_LE(server.max_output, opts.max_output_bytes);
  EXPECT_EQ(server.refused, 0) << "a writer that respects writable() never hits max_output";
  EXPECT_LE(server.max_segments, (opts.output_high_water + chunk) / opts.pool.segment_size + 4);

  // The client reads: on_writable fires again and everything arrives intact.
  std::uint64_t got = 0;
  bool mismatch = false;
  std::vector<char> buf(1 << 18);
  checksum sum;
  ASSERT_TRUE(l.step_until(
      [&] {
        for (;;) {
          ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (n <= 0) break;
          std::string_view piece(buf.data(), static_cast<std::size_t>(n));
          if (!s.matches(got, piece)) mismatch = true;
          sum.update(piece);
          got += static_cast<std::uint64_t>(n);
        }
        return got == total;
      },
      200000));
  EXPECT_GT(server.writable_calls, writable_before) << "on_writable fired once the peer read";
  EXPECT_FALSE(mismatch);
  EXPECT_EQ(sum.value(), checksum_of(s, total));
  EXPECT_LE(server.max_output, opts.output_high_water + chunk) << "bounded for the whole transfer";
  ::close(fd);
  EXPECT_EQ(l.finish(), 0u);
}

// ---- descriptor exhaustion --------------------------------------------------------------------

TYPED_TEST(transport_conformance, out_of_descriptors_pauses_accepting_without_spinning) {
  if constexpr (!TypeParam::kernel_sockets) {
    GTEST_SKIP() << TypeParam::name
                 << ": the user-space stack's connections hold no file descriptors, so RLIMIT_NOFILE cannot run out";
  }
  manual_clock clock;
  loop_options opts;
  opts.accept_retry = 100ms;
  observations obs;
  echo_handler server(&obs);
  stepped_loop<TypeParam> l(opts, &clock);
  auto r = l->listen(TypeParam::listen_v4(), server);
  ASSERT_TRUE(r.ok());
  endpoint at = (*r)->local();

  // Room for exactly 4 accepted sockets below the limit: hold the 4 lowest
  // free numbers, open the clients above them, then lower the limit to just
  // above the held numbers and free them.
  int held[4];
  for (int& h : held) h = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int top = *std::max_element(std::begin(held), std::end(held));
  std::vector<int> clients;
  for (int i = 0; i < 10; ++i) {
    int fd = test::connect_to(at);  // completes in the backlog
    ASSERT_GT(fd, top);
    clients.push_back(fd);
  }
  nofile_limit limit(static_cast<rlim_t>(top + 1));
  for (int h : held) ::close(h);

  ASSERT_TRUE(l.step_until([&] { return l->stats().accept_fd_exhausted.get() == 1; }, 100));
  EXPECT_EQ(obs.opened, 4) << "four descriptors, four connections";
  // Paused, not spinning: many iterations, no further accept attempt, and
  // the poller reports nothing (a listener that stays "readable" would wake
  // every poll and burn the core).
  l.steps(2);
  const std::uint64_t events = l->stats().events.get();
  l.steps(50);
  EXPECT_EQ(l->stats().accept_fd_exhausted.get(), 1u) << "accept() is not retried on every iteration";
  EXPECT_EQ(l->stats().events.get(), events) << "the paused listener keeps waking the poller";
  EXPECT_EQ(obs.opened, 4);

  // A connection closes here: accepting resumes at once and takes its place.
  ::close(clients[0]);
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 5; }, 200));
  EXPECT_EQ(l->stats().accept_fd_exhausted.get(), 2u) << "then runs out again";
  l.steps(2);
  const std::uint64_t events2 = l->stats().events.get();
  l.steps(20);
  EXPECT_EQ(l->stats().accept_fd_exhausted.get(), 2u);
  EXPECT_EQ(l->stats().events.get(), events2);

  // Nothing closes, but accept_retry passes: one more attempt.
  clock.advance(100ms);
  ASSERT_TRUE(l.step_until([&] { return l->stats().accept_fd_exhausted.get() == 3; }, 20));

  // Descriptors come back: every waiting connection is served.
  limit.restore();
  clock.advance(100ms);
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 10; }, 500));
  for (std::size_t i = 1; i < clients.size(); ++i) {
    ASSERT_TRUE(test::send_all(clients[i], "x"));
    std::string got;
    ASSERT_TRUE(l.step_until([&] {
      char ch;
      if (::recv(clients[i], &ch, 1, MSG_DONTWAIT) == 1) got += ch;
      return got == "x";
    }));
    ::close(clients[i]);
  }
  EXPECT_EQ(l.finish(), 0u);
}

// ---- UDP ----------------------------------------------------------------------------------------

// Binds at `where` (port 0): a kernel socket's datagrams are echoed whole,
// and two sockets of the loop reach each other.
template <class Traits>
void udp_boundaries(const endpoint& where) {
  {
    SCOPED_TRACE(where.to_string());
    struct collector final : datagram_handler {
      observations* obs;
      std::vector<std::string> got;
      void on_datagram(udp_socket&, const endpoint&, std::string_view p) noexcept override {
        obs->update([&] { got.emplace_back(p); });
      }
    };
    observations obs;
    collector sink;
    sink.obs = &obs;
    datagram_echo echo;
    threaded_loop<Traits> l;
    endpoint at = l.call([&](typename Traits::loop_type& lp) {
      auto r = lp.udp_bind(where, echo);
      EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
      return r.ok() ? Traits::reachable(lp, (*r)->local()) : endpoint{};
    });
    ASSERT_NE(at.port(), 0);
    int fd = ::socket(at.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(fd, at.data(), at.size()), 0);
    std::multiset<std::string> want, got;
    // Bursts of 8 different sizes (1 byte to ~9 KB), echoes collected in
    // whatever order they come back. Small bursts: UDP may drop under load,
    // and a drop is not what this checks.
    for (int burst = 0; burst < 25; ++burst) {
      for (int i = 0; i < 8; ++i) {
        std::string d = test::random_bytes(1 + static_cast<std::size_t>((burst * 8 + i) * 45),
                                           static_cast<std::uint64_t>(burst * 8 + i));
        ASSERT_EQ(::send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
        want.insert(d);
      }
      for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(test::wait_for(fd, POLLIN, 5s) & POLLIN);
        char buf[65536];
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        ASSERT_GT(r, 0);
        got.insert(std::string(buf, static_cast<std::size_t>(r)));
      }
    }
    EXPECT_TRUE(got == want) << "every datagram came back whole: same sizes, same bytes";
    ::close(fd);

    // Between two sockets of the loop itself.
    l.call([&](typename Traits::loop_type& lp) {
      auto a = lp.udp_bind(where, sink);
      auto b = lp.udp_bind(where, echo);
      EXPECT_TRUE(a.ok() && b.ok());
      const endpoint to = Traits::reachable(lp, (*a)->local());
      EXPECT_TRUE((*b)->send_to(to, "one"));
      EXPECT_TRUE((*b)->send_to(to, std::string(3000, 'x')));
      EXPECT_TRUE((*b)->send_to(to, "three"));
      return 0;
    });
    ASSERT_TRUE(obs.wait([&] { return sink.got.size() == 3; }));
    std::multiset<std::string> loop_got(sink.got.begin(), sink.got.end());
    EXPECT_TRUE(loop_got == (std::multiset<std::string>{"one", std::string(3000, 'x'), "three"}));
  }
}

TYPED_TEST(transport_conformance, udp_datagrams_keep_their_boundaries_over_ipv4) {
  udp_boundaries<TypeParam>(TypeParam::listen_v4());
}

TYPED_TEST(transport_conformance, udp_datagrams_keep_their_boundaries_over_ipv6_loopback) {
  over_ipv6_loopback<TypeParam>([](const endpoint& where) { udp_boundaries<TypeParam>(where); });
}

}  // namespace
}  // namespace sluice::conformance
