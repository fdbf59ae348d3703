// What the kqueue transport does beyond the transport contract (which the
// conformance suite checks): interest changes ride on the next kevent() call,
// and accepted sockets pass through the listener's distributor (the runtime's
// single acceptor). On Linux these run on the EMULATED <sys/event.h>.

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

// Where the kernel does not spread connections over per-loop sockets (macOS),
// the runtime runs one acceptor and hands sockets out by its --balance
// policy (the policies themselves are tested with the runtime). What the
// transport owes that scheme: ask the listener's distributor for every
// accepted socket, and adopt() a socket accepted by another loop.
TEST(kqueue_transport, accepted_sockets_go_through_the_listeners_distributor) {
  observations obs0, obs1;
  echo_handler h0(&obs0), h1(&obs1);
  threaded_loop<kqueue_traits> l0({}, 0);
  threaded_loop<kqueue_traits> l1({}, 1);
  struct hand_out {
    loop_base* to;
    handler* h;
    unsigned n = 0;
  };
  static hand_out out;
  out = hand_out{nullptr, &h1, 0};
  out.to = l1.call([&](loop_base& lp) { return &lp; });
  endpoint at = l0.call([&](loop_base& lp) {
    auto r = lp.listen(endpoint::loopback_v4(0), h0);
    EXPECT_TRUE(r.ok());
    // Every second socket to loop 1 (through its inbox, as a foreign thread).
    (*r)->set_distributor(
        [](void*, int fd, const endpoint& peer) noexcept {
          if (out.n++ % 2 == 0) return false;
          out.to->post([fd, peer] { out.to->adopt(fd, peer, *out.h); });
          return true;
        },
        nullptr);
    return (*r)->local();
  });
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) {
    int fd = test::connect_to(at);
    std::string msg = "client " + std::to_string(i);
    EXPECT_TRUE(test::send_all(fd, msg));
    EXPECT_EQ(test::read_n(fd, msg.size(), 5s), msg);
    fds.push_back(fd);
  }
  EXPECT_EQ(l0.stats().accepted.get(), 20u);
  EXPECT_EQ(l1.stats().accepted.get(), 20u) << "adopted sockets are served by the loop that took them";
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(obs0.wait([&] { return obs0.closes() == 20; }));
  EXPECT_TRUE(obs1.wait([&] { return obs1.closes() == 20; }));
}

}  // namespace
}  // namespace sluice::conformance
