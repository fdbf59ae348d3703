// What the kqueue transport does beyond the transport contract (which the
// conformance suite checks): interest changes ride on the next kevent() call,
// and where the kernel does not spread connections over per-loop sockets
// (macOS), one acceptor hands them to every loop. On Linux these run on the
// EMULATED <sys/event.h>; the single-acceptor mode is forced here, as macOS
// would choose it.

#include "sluice/kqueue/kqueue_transport.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include "harness.hpp"
#include "net.hpp"
#include "transports.hpp"

namespace sluice::conformance {
namespace {

using kqueue::kqueue_options;
using kqueue::listener_distribution;
using sluice::handoff_policy;

endpoint local_of_fd(int fd) {
  endpoint e;
  socklen_t len = endpoint::capacity();
  ::getsockname(fd, e.data(), &len);
  return endpoint(e.data(), len);
}

struct single_acceptor_traits : kqueue_traits {
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id, kqueue_options{listener_distribution::single_acceptor});
  }
};

template <handoff_policy P>
struct policy_traits : kqueue_traits {
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id, kqueue_options{listener_distribution::single_acceptor, P});
  }
};

// Echoes, and records where each connection came from.
class recording_echo final : public echo_handler {
 public:
  explicit recording_echo(observations* obs) : echo_handler(obs), obs_(obs) {}
  void on_open(connection& c) noexcept override {
    obs_->update([&] { peers.push_back(c.peer()); });
    echo_handler::on_open(c);
  }
  std::vector<endpoint> peers;  // under obs_->mu

 private:
  observations* obs_;
};

// A blocking client bound to `from` (any 127.0.0.0/8 address is loopback).
int connect_from(const char* from, const endpoint& to) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto src = endpoint::parse(std::string(from) + ":0");
  EXPECT_TRUE(src.ok());
  EXPECT_EQ(::bind(fd, src->data(), src->size()), 0);
  EXPECT_EQ(::connect(fd, to.data(), to.size()), 0);
  return fd;
}

// Two loops sharing one acceptor with policy P; returns the bound address.
template <class Traits>
endpoint share_port(threaded_loop<Traits>& l0, threaded_loop<Traits>& l1, handler& h0, handler& h1) {
  endpoint at = l0.call([&](loop_base& lp) {
    auto r = lp.listen(endpoint::loopback_v4(0), h0);
    EXPECT_TRUE(r.ok());
    return (*r)->local();
  });
  listen_options others;
  others.exclusive = false;
  EXPECT_TRUE(l1.call([&](loop_base& lp) { return lp.listen(at, h1, others).ok(); }));
  return at;
}

TEST(kqueue_transport, interest_changes_wait_for_the_next_kevent_call) {
  observations obs;
  echo_handler server(&obs);
  loop_options opts;
  stepped_loop<kqueue_traits> l(opts);
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(l->transport().pending_changes(), 0) << "a listener is registered at once (its errors are the caller's)";
  int fd = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 1; }));
  EXPECT_EQ(l->transport().pending_changes(), 2)
      << "the accepted socket's read and write filters wait for the next kevent() call";
  l->run_once();
  EXPECT_EQ(l->transport().pending_changes(), 0) << "handed over with the wait";
  ASSERT_TRUE(test::send_all(fd, "registered"));
  EXPECT_EQ(test::wait_for(fd, POLLIN, std::chrono::milliseconds(0)), 0) << "nothing echoes while nobody steps the loop";
  ASSERT_TRUE(l.step_until([&] { return test::wait_for(fd, POLLIN, std::chrono::milliseconds(0)) != 0; }));
  EXPECT_EQ(test::read_n(fd, 10, 5s), "registered");
  ::close(fd);
}

TEST(kqueue_transport, a_batch_larger_than_the_change_list_is_handed_over_early) {
  // 200 connections accepted in one iteration queue 400 changes, more than
  // the change list holds: the transport hands a full list over at once
  // (with receipts, so no event is lost) and every connection works.
  observations obs;
  echo_handler server(&obs);
  loop_options opts;
  opts.accept_batch = 1000;
  stepped_loop<kqueue_traits> l(opts);
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  std::vector<int> fds;
  for (int i = 0; i < 200; ++i) {
    int fd = test::connect_to((*r)->local());  // all wait in the backlog
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 200; }, 20));
  EXPECT_LE(l->transport().pending_changes(), kqueue::kqueue_transport::max_changes);
  EXPECT_EQ(l->stats().accepted.get(), 200u);
  for (int fd : fds) ASSERT_TRUE(test::send_all(fd, "e"));
  for (int fd : fds) {
    std::string got;
    ASSERT_TRUE(l.step_until([&] {
      char ch;
      if (::recv(fd, &ch, 1, MSG_DONTWAIT) == 1) got += ch;
      return got == "e";
    })) << "a connection registered in an early batch";
    ::close(fd);
  }
  EXPECT_EQ(l.finish(), 0u);
}

TEST(kqueue_transport, single_acceptor_hands_connections_to_every_loop_in_turn) {
  observations obs0, obs1;
  echo_handler h0(&obs0), h1(&obs1);
  threaded_loop<single_acceptor_traits> l0({}, 0);
  threaded_loop<single_acceptor_traits> l1({}, 1);
  listen_options first;  // the runtime's loop 0: exclusive
  endpoint at = l0.call([&](loop_base& lp) {
    auto r = lp.listen(endpoint::loopback_v4(0), h0, first);
    EXPECT_TRUE(r.ok());
    return (*r)->local();
  });
  listen_options others;  // the runtime's other loops: join loop 0's port
  others.exclusive = false;
  listener* joined = l1.call([&](loop_base& lp) {
    auto r = lp.listen(at, h1, others);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : nullptr;
  });
  ASSERT_NE(joined, nullptr);
  EXPECT_EQ(l1.call([&](loop_base&) { return joined->io.fd; }), -1) << "no socket of its own: a share of loop 0's";
  EXPECT_EQ(l1.call([&](loop_base&) { return joined->local(); }), at);

  auto echo_once = [&](int i) {
    int fd = test::connect_to(at);
    std::string msg = "client " + std::to_string(i);
    EXPECT_TRUE(test::send_all(fd, msg));
    EXPECT_EQ(test::read_n(fd, msg.size(), 5s), msg);
    return fd;
  };
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) fds.push_back(echo_once(i));
  EXPECT_EQ(l0.stats().accepted.get(), 20u) << "round robin: half each";
  EXPECT_EQ(l1.stats().accepted.get(), 20u);
  for (int fd : fds) ::close(fd);

  // Loop 1 stops listening: its share goes back to loop 0.
  l1.call([&](loop_base& lp) {
    lp.close_listener(*joined);
    return 0;
  });
  fds.clear();
  for (int i = 0; i < 4; ++i) fds.push_back(echo_once(100 + i));
  EXPECT_EQ(l0.stats().accepted.get(), 24u);
  EXPECT_EQ(l1.stats().accepted.get(), 20u);
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(obs0.wait([&] { return obs0.closes() == 24; }));
  EXPECT_TRUE(obs1.wait([&] { return obs1.closes() == 20; }));
}

TEST(kqueue_transport, sockets_handed_to_a_loop_that_stopped_are_closed) {
  observations obs0, obs1;
  echo_handler h0(&obs0), h1(&obs1);
  threaded_loop<single_acceptor_traits> l0({}, 0);
  endpoint at = l0.call([&](loop_base& lp) {
    auto r = lp.listen(endpoint::loopback_v4(0), h0);
    EXPECT_TRUE(r.ok());
    return (*r)->local();
  });
  {
    threaded_loop<single_acceptor_traits> l1({}, 1);
    listen_options others;
    others.exclusive = false;
    ASSERT_TRUE(l1.call([&](loop_base& lp) { return lp.listen(at, h1, others).ok(); }));
    l1.stop();  // leaves the group
    EXPECT_EQ(l1.connections_left(), 0u);
  }
  // Every connection goes to loop 0 now; none is lost or left hanging.
  for (int i = 0; i < 4; ++i) {
    int fd = test::connect_to(at);
    ASSERT_TRUE(test::send_all(fd, "x"));
    EXPECT_EQ(test::read_n(fd, 1, 5s), "x");
    ::close(fd);
  }
  EXPECT_EQ(l0.stats().accepted.get(), 4u);
}

TEST(kqueue_transport, source_hash_keeps_each_client_address_on_one_loop) {
  observations obs0, obs1;
  recording_echo h0(&obs0), h1(&obs1);
  using traits = policy_traits<handoff_policy::source_hash>;
  threaded_loop<traits> l0({}, 0), l1({}, 1);
  endpoint at = share_port(l0, l1, h0, h1);
  // An odd number of addresses: round robin would send each one's
  // connections to both loops in turn.
  const char* sources[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"};
  std::vector<int> fds;
  for (int round = 0; round < 3; ++round) {
    for (const char* src : sources) {
      int fd = connect_from(src, at);
      ASSERT_TRUE(test::send_all(fd, "h"));
      ASSERT_EQ(test::read_n(fd, 1, 5s), "h");
      fds.push_back(fd);
    }
  }
  std::map<std::uint32_t, std::set<int>> loops_of;  // client address -> loops that served it
  {
    std::lock_guard a(obs0.mu);
    for (const auto& p : h0.peers) loops_of[p.v4_addr()].insert(0);
  }
  {
    std::lock_guard b(obs1.mu);
    for (const auto& p : h1.peers) loops_of[p.v4_addr()].insert(1);
  }
  ASSERT_EQ(loops_of.size(), 5u);
  for (const auto& [addr, loops] : loops_of) EXPECT_EQ(loops.size(), 1u) << "address " << addr << " went to both loops";
  for (int fd : fds) ::close(fd);
}

TEST(kqueue_transport, least_connections_fills_the_emptier_loop) {
  observations obs0, obs1;
  recording_echo h0(&obs0), h1(&obs1);
  using traits = policy_traits<handoff_policy::least_connections>;
  threaded_loop<traits> l0({}, 0), l1({}, 1);
  endpoint at = share_port(l0, l1, h0, h1);
  std::map<std::uint16_t, int> fd_by_port;
  auto open_one = [&] {
    int fd = test::connect_to(at);
    EXPECT_TRUE(test::send_all(fd, "l"));
    EXPECT_EQ(test::read_n(fd, 1, 5s), "l");  // adopted and serving before the next one
    fd_by_port[local_of_fd(fd).port()] = fd;
  };
  for (int i = 0; i < 6; ++i) open_one();
  EXPECT_EQ(l0.stats().accepted.get(), 3u);
  EXPECT_EQ(l1.stats().accepted.get(), 3u);
  // Two of loop 0's clients leave.
  std::vector<std::uint16_t> on_loop0;
  {
    std::lock_guard a(obs0.mu);
    for (const auto& p : h0.peers) on_loop0.push_back(p.port());
  }
  ASSERT_EQ(on_loop0.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    const std::uint16_t port = on_loop0[static_cast<std::size_t>(i)];
    ::close(fd_by_port[port]);
    fd_by_port.erase(port);
  }
  ASSERT_TRUE(obs0.wait([&] { return obs0.closes() == 2; }));
  // 1 open on loop 0, 3 on loop 1: the next two both go to loop 0 (round
  // robin would split them).
  open_one();
  open_one();
  EXPECT_EQ(l0.stats().accepted.get(), 5u);
  EXPECT_EQ(l1.stats().accepted.get(), 3u);
  for (auto& [port, fd] : fd_by_port) ::close(fd);
}

}  // namespace
}  // namespace sluice::conformance
