// The EMULATED <sys/event.h> (tests/support/kqueue_emulation) checked against
// the semantics FreeBSD's kqueue(2) man page documents. The kqueue transport's
// results on Linux are only worth what this emulation is worth, so each
// documented behaviour the transport relies on (and the ones the man page
// names besides) has a test here. Passing here says nothing about a real BSD.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "net.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

static_assert(SLUICE_KQUEUE_EMULATED == 1, "these tests are for the emulation");

struct kevent make_kev(std::uintptr_t ident, short filter, unsigned short flags, unsigned fflags = 0,
                       std::int64_t data = 0, void* udata = nullptr) {
  struct kevent k;
  EV_SET(&k, ident, filter, flags, fflags, data, udata);
  return k;
}

// A kqueue that closes itself.
struct kq_fd {
  int fd = ::kqueue();
  kq_fd() { EXPECT_GE(fd, 0); }
  ~kq_fd() { ::close(fd); }
  // Applies changes only (no event list): 0, or -1 with errno.
  int apply(std::vector<struct kevent> changes) const {
    return ::kevent(fd, changes.data(), static_cast<int>(changes.size()), nullptr, 0, nullptr);
  }
  // Retrieves events, waiting at most `wait` (zero: just look).
  std::vector<struct kevent> poll(std::chrono::milliseconds wait = 0ms, int max = 16) const {
    std::vector<struct kevent> out(static_cast<std::size_t>(max));
    timespec ts{static_cast<time_t>(wait.count() / 1000), static_cast<long>(wait.count() % 1000) * 1'000'000};
    int n = ::kevent(fd, nullptr, 0, out.data(), max, &ts);
    EXPECT_GE(n, 0) << std::strerror(errno);
    out.resize(static_cast<std::size_t>(std::max(n, 0)));
    return out;
  }
};

// Two connected, non-blocking loopback TCP sockets.
struct tcp_pair {
  int a = -1;
  int b = -1;
  tcp_pair() {
    auto [l, at] = test::listen_loopback(4);
    EXPECT_GE(l, 0);
    a = test::connect_to(at);
    b = ::accept(l, nullptr, nullptr);
    ::close(l);
    test::set_nonblocking(a);
    test::set_nonblocking(b);
  }
  ~tcp_pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

void send_bytes(int fd, std::size_t n) { ASSERT_TRUE(test::send_all(fd, std::string(n, 'x'))); }

// Waits (on the kqueue itself) for one event of `filter` on `ident`.
bool wait_event(const kq_fd& kq, std::uintptr_t ident, short filter, struct kevent* got,
                std::chrono::milliseconds limit = 2000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : kq.poll(50ms)) {
      if (e.ident == ident && e.filter == filter) {
        *got = e;
        return true;
      }
    }
  }
  return false;
}

int tag_a = 0, tag_b = 0;

TEST(kqueue_emulation, read_data_is_the_number_of_bytes_available) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_a)}), 0);
  EXPECT_TRUE(kq.poll().empty()) << "nothing to read yet";
  send_bytes(p.a, 100);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  EXPECT_EQ(e.data, 100);
  EXPECT_EQ(e.udata, &tag_a);
  EXPECT_EQ(e.flags & EV_EOF, 0);
}

TEST(kqueue_emulation, level_triggered_read_repeats_until_drained) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD)}), 0);
  send_bytes(p.a, 10);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  auto again = kq.poll();
  ASSERT_EQ(again.size(), 1u) << "without EV_CLEAR the condition is reported while it holds";
  EXPECT_EQ(again[0].data, 10);
  char buf[64];
  ASSERT_EQ(::read(p.b, buf, sizeof buf), 10);
  EXPECT_TRUE(kq.poll().empty()) << "drained: the filter no longer holds";
}

TEST(kqueue_emulation, clear_reports_once_per_arrival) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_CLEAR)}), 0);
  send_bytes(p.a, 100);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  EXPECT_EQ(e.data, 100);
  EXPECT_NE(e.flags & EV_CLEAR, 0);
  EXPECT_TRUE(kq.poll(20ms).empty()) << "EV_CLEAR: state reset after retrieval, although 100 bytes are unread";
  send_bytes(p.a, 50);
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e)) << "new data is a new event";
  EXPECT_EQ(e.data, 150) << "data is what is available, not what is new";
}

TEST(kqueue_emulation, re_adding_modifies_the_event_instead_of_duplicating_it) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_a)}), 0);
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_b)}), 0);
  send_bytes(p.a, 1);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  EXPECT_EQ(e.udata, &tag_b) << "the second EV_ADD changed udata";
  auto rest = kq.poll();
  EXPECT_EQ(rest.size(), 1u) << "one knote per (ident, filter): one event, not two";
}

TEST(kqueue_emulation, changes_are_applied_before_events_are_read) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_a)}), 0);
  send_bytes(p.a, 1);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  struct kevent ch = make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_b);
  struct kevent out[4];
  const timespec zero{};
  ASSERT_EQ(::kevent(kq.fd, &ch, 1, out, 4, &zero), 1);
  EXPECT_EQ(out[0].udata, &tag_b) << "the change in the same call applies first";
}

TEST(kqueue_emulation, delete_removes_the_event_and_a_second_delete_is_enoent) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD)}), 0);
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_DELETE)}), 0);
  send_bytes(p.a, 5);
  EXPECT_TRUE(kq.poll(50ms).empty()) << "deleted: never reported";
  errno = 0;
  EXPECT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_DELETE)}), -1) << "no event list: the call fails";
  EXPECT_EQ(errno, ENOENT);
  // With room in the event list the failure comes back as an EV_ERROR entry.
  struct kevent ch = make_kev(p.b, EVFILT_READ, EV_DELETE, 0, 0, &tag_a);
  struct kevent out[2];
  ASSERT_EQ(::kevent(kq.fd, &ch, 1, out, 2, nullptr), 1) << "returns at once with the error, without waiting";
  EXPECT_EQ(out[0].flags, EV_ERROR);
  EXPECT_EQ(out[0].data, ENOENT);
  EXPECT_EQ(out[0].ident, static_cast<std::uintptr_t>(p.b));
  EXPECT_EQ(out[0].udata, &tag_a);
}

TEST(kqueue_emulation, disable_holds_an_event_and_enable_delivers_it) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_CLEAR | EV_DISABLE)}), 0);
  send_bytes(p.a, 7);
  EXPECT_TRUE(kq.poll(50ms).empty()) << "disabled: not returned";
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ENABLE)}), 0);
  auto got = kq.poll(1000ms);
  ASSERT_EQ(got.size(), 1u) << "\"The filter itself is not disabled\": enabling reports what happened";
  EXPECT_EQ(got[0].data, 7);
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_DISABLE)}), 0);
  send_bytes(p.a, 1);
  EXPECT_TRUE(kq.poll(50ms).empty());
}

TEST(kqueue_emulation, oneshot_is_deleted_after_delivery) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_ONESHOT)}), 0);
  send_bytes(p.a, 3);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  EXPECT_NE(e.flags & EV_ONESHOT, 0);
  send_bytes(p.a, 3);
  EXPECT_TRUE(kq.poll(50ms).empty()) << "returned once, then deleted";
  EXPECT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_DELETE)}), -1);
  EXPECT_EQ(errno, ENOENT) << "the knote is gone";
}

TEST(kqueue_emulation, dispatch_disables_after_delivery_until_enabled) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_CLEAR | EV_DISPATCH, 0, 0, &tag_a)}), 0);
  send_bytes(p.a, 2);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  send_bytes(p.a, 2);
  EXPECT_TRUE(kq.poll(50ms).empty()) << "EV_DISPATCH: disabled after delivery";
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ENABLE, 0, 0, &tag_b)}), 0);
  auto got = kq.poll(1000ms);
  ASSERT_EQ(got.size(), 1u) << "enabled again: what arrived meanwhile is reported";
  EXPECT_EQ(got[0].data, 4);
  EXPECT_EQ(got[0].udata, &tag_b) << "a change to an existing knote sets udata";
}

TEST(kqueue_emulation, receipt_reports_every_change_without_waiting) {
  kq_fd kq;
  tcp_pair p;
  int closed = ::dup(p.a);
  ::close(closed);  // a descriptor number that is certainly not open
  struct kevent list[2] = {make_kev(p.b, EVFILT_READ, EV_ADD | EV_RECEIPT),
                           make_kev(static_cast<std::uintptr_t>(closed), EVFILT_READ, EV_ADD | EV_RECEIPT)};
  // The same array serves as change list and event list (kqueue(2) allows it).
  ASSERT_EQ(::kevent(kq.fd, list, 2, list, 2, nullptr), 2) << "no timeout, yet it returns: receipts";
  EXPECT_EQ(list[0].flags, EV_ERROR);
  EXPECT_EQ(list[0].data, 0) << "success is reported with data 0";
  EXPECT_EQ(list[0].ident, static_cast<std::uintptr_t>(p.b));
  EXPECT_EQ(list[1].flags, EV_ERROR);
  EXPECT_EQ(list[1].data, EBADF);
}

TEST(kqueue_emulation, a_failing_change_without_room_fails_the_call_and_stops_there) {
  kq_fd kq;
  tcp_pair p;
  int closed = ::dup(p.a);
  ::close(closed);
  errno = 0;
  EXPECT_EQ(kq.apply({make_kev(static_cast<std::uintptr_t>(closed), EVFILT_READ, EV_ADD),
                      make_kev(p.b, EVFILT_READ, EV_ADD)}),
            -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_DELETE)}), -1) << "the change after the failure was not applied";
  EXPECT_EQ(errno, ENOENT);
}

TEST(kqueue_emulation, a_failing_change_with_room_is_reported_and_the_others_applied) {
  kq_fd kq;
  tcp_pair p;
  send_bytes(p.a, 1);
  struct kevent ch[3] = {make_kev(p.a, EVFILT_WRITE, EV_ADD), make_kev(p.a, EVFILT_PROC, EV_ADD),
                         make_kev(p.b, EVFILT_READ, EV_ADD)};
  struct kevent out[8];
  ASSERT_EQ(::kevent(kq.fd, ch, 3, out, 8, nullptr), 1) << "errors only; no scan in this call";
  EXPECT_EQ(out[0].flags, EV_ERROR);
  EXPECT_EQ(out[0].filter, EVFILT_PROC);
  EXPECT_EQ(out[0].data, EINVAL) << "a filter the emulation does not provide";
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e)) << "the change after the failing one was applied";
}

TEST(kqueue_emulation, write_data_is_the_space_left_in_the_send_buffer) {
  kq_fd kq;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  test::set_nonblocking(sv[0]);
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  ASSERT_EQ(::getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
  ASSERT_EQ(kq.apply({make_kev(sv[0], EVFILT_WRITE, EV_ADD)}), 0);
  auto got = kq.poll();
  ASSERT_EQ(got.size(), 1u) << "a new socket is writable";
  EXPECT_EQ(got[0].data, sndbuf) << "nothing queued: all of the buffer is free";
  send_bytes(sv[0], 1000);
  got = kq.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(got[0].data, sndbuf - 1000) << "1000 unread bytes take room";
  // Fill it: the level-triggered write filter stops reporting.
  std::string chunk(65536, 'f');
  while (::send(sv[0], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  EXPECT_TRUE(kq.poll().empty()) << "no room: not writable";
  // The peer reads: room again.
  std::vector<char> buf(1 << 20);
  while (::recv(sv[1], buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
  }
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, static_cast<std::uintptr_t>(sv[0]), EVFILT_WRITE, &e));
  EXPECT_GT(e.data, 0);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(kqueue_emulation, low_water_mark_delays_the_read_event) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, NOTE_LOWAT, 10)}), 0);
  send_bytes(p.a, 5);
  EXPECT_TRUE(kq.poll(50ms).empty()) << "5 bytes are below the low-water mark of 10";
  send_bytes(p.a, 5);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));
  EXPECT_EQ(e.data, 10);
}

TEST(kqueue_emulation, fin_sets_eof_and_leaves_the_data_readable) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_CLEAR)}), 0);
  send_bytes(p.a, 4);
  ::shutdown(p.a, SHUT_WR);
  struct kevent e{};
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while ((e.flags & EV_EOF) == 0 && std::chrono::steady_clock::now() < deadline) {
    if (!wait_event(kq, p.b, EVFILT_READ, &e, 100ms)) continue;
  }
  ASSERT_NE(e.flags & EV_EOF, 0) << "the read direction is shut down";
  EXPECT_EQ(e.fflags, 0u) << "a clean FIN: no socket error";
  EXPECT_EQ(e.data, 4) << "EOF may come while data is still pending";
  char buf[8];
  EXPECT_EQ(::read(p.b, buf, sizeof buf), 4);
  EXPECT_EQ(::read(p.b, buf, sizeof buf), 0);
}

TEST(kqueue_emulation, reset_sets_eof_with_the_socket_error_in_fflags) {
  kq_fd kq;
  tcp_pair p;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD | EV_CLEAR), make_kev(p.b, EVFILT_WRITE, EV_ADD | EV_CLEAR)}),
            0);
  (void)kq.poll();  // the initial writability
  test::close_with_reset(p.a);
  p.a = -1;
  bool read_eof = false, write_eof = false;
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!(read_eof && write_eof) && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : kq.poll(50ms)) {
      if ((e.flags & EV_EOF) == 0) continue;
      EXPECT_EQ(e.fflags, static_cast<unsigned>(ECONNRESET)) << "filter " << e.filter;
      (e.filter == EVFILT_READ ? read_eof : write_eof) = true;
    }
  }
  EXPECT_TRUE(read_eof) << "EVFILT_READ: EV_EOF with the error";
  EXPECT_TRUE(write_eof) << "EVFILT_WRITE: EV_EOF with the error";
}

TEST(kqueue_emulation, listen_data_is_the_number_of_pending_connections) {
  kq_fd kq;
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  endpoint at = endpoint::loopback_v4(0);
  ASSERT_EQ(::bind(l, at.data(), at.size()), 0);
  ASSERT_EQ(::listen(l, 16), 0);
  socklen_t len = endpoint::capacity();
  ::getsockname(l, at.data(), &len);
  at = endpoint(at.data(), len);
  ASSERT_EQ(kq.apply({make_kev(l, EVFILT_READ, EV_ADD)}), 0);
  EXPECT_TRUE(kq.poll().empty()) << "nobody waiting";
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(test::connect_to(at));  // completes in the backlog
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, static_cast<std::uintptr_t>(l), EVFILT_READ, &e));
  EXPECT_EQ(e.data, 3);
  int a = ::accept(l, nullptr, nullptr);
  ASSERT_GE(a, 0);
  auto got = kq.poll();
  ASSERT_EQ(got.size(), 1u) << "level-triggered: still two waiting";
  EXPECT_EQ(got[0].data, 2);
  ::close(a);
  for (int c : clients) ::close(c);
  ::close(l);
}

TEST(kqueue_emulation, user_event_wakes_a_waiter_in_another_thread) {
  kq_fd kq;
  ASSERT_EQ(kq.apply({make_kev(42, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_FFCOPY | 0x5)}), 0);
  EXPECT_TRUE(kq.poll().empty()) << "not triggered yet";
  auto waiter = std::async(std::launch::async, [&] {
    struct kevent e{};
    int n = ::kevent(kq.fd, nullptr, 0, &e, 1, nullptr);  // no timeout: waits for the trigger
    return std::make_pair(n, e);
  });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout) << "blocked until triggered";
  ASSERT_EQ(kq.apply({make_kev(42, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFOR | 0x2)}), 0);
  ASSERT_EQ(waiter.wait_for(5s), std::future_status::ready) << "the trigger woke the waiter";
  auto [n, e] = waiter.get();
  ASSERT_EQ(n, 1);
  EXPECT_EQ(e.ident, 42u);
  EXPECT_EQ(e.filter, EVFILT_USER);
  EXPECT_EQ(e.fflags, 0x7u) << "NOTE_FFCOPY 0x5, then NOTE_FFOR 0x2";
  EXPECT_TRUE(kq.poll().empty()) << "EV_CLEAR: the trigger was consumed";
  ASSERT_EQ(kq.apply({make_kev(42, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFAND | 0x6)}), 0);
  auto got = kq.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].fflags, 0x6u) << "NOTE_FFAND 0x6";
}

TEST(kqueue_emulation, timer_counts_expirations_since_the_last_retrieval) {
  kq_fd kq;
  ASSERT_EQ(kq.apply({make_kev(7, EVFILT_TIMER, EV_ADD, 0, 5)}), 0);  // every 5 ms (milliseconds by default)
  // Let at least 50 ms pass without retrieving, waiting on a one-shot timer
  // in another queue (an event, not a sleep).
  kq_fd other;
  ASSERT_EQ(other.apply({make_kev(8, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_USECONDS, 50'000)}), 0);
  auto t0 = std::chrono::steady_clock::now();
  struct kevent e{};
  ASSERT_EQ(::kevent(other.fd, nullptr, 0, &e, 1, nullptr), 1);
  EXPECT_EQ(e.data, 1) << "a one-shot timer expires once";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 49ms) << "NOTE_USECONDS: 50000 us";
  auto got = kq.poll();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].filter, EVFILT_TIMER);
  EXPECT_GE(got[0].data, 9) << "about 10 expirations of a 5 ms timer in 50 ms, counted, not one event each";
  EXPECT_LE(got[0].data, 1000);
  // The count starts again after retrieval: the next report counts only what
  // expired since (bounded by the time that passed, however loaded the machine).
  auto retrieved = std::chrono::steady_clock::now();
  struct kevent next;
  ASSERT_TRUE(wait_event(kq, 7, EVFILT_TIMER, &next));
  auto since = std::chrono::steady_clock::now() - retrieved;
  EXPECT_GE(next.data, 1);
  EXPECT_LE(next.data, since / 5ms + 2) << "expirations before the retrieval were counted again";
  EXPECT_EQ(other.apply({make_kev(8, EVFILT_TIMER, EV_DELETE)}), -1) << "the one-shot timer is gone";
  EXPECT_EQ(errno, ENOENT);
}

TEST(kqueue_emulation, zero_timeout_polls_and_a_timeout_is_never_early) {
  kq_fd kq;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(kq.poll(0ms).empty());
  auto t1 = std::chrono::steady_clock::now();
  EXPECT_TRUE(kq.poll(30ms).empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t1, 29ms) << "a timeout expires, not before";
  (void)t0;
  // nevents == 0: returns at once even with no timeout.
  EXPECT_EQ(::kevent(kq.fd, nullptr, 0, nullptr, 0, nullptr), 0);
}

TEST(kqueue_emulation, closing_a_descriptor_removes_its_events_even_if_the_number_is_reused) {
  kq_fd kq;
  tcp_pair p;
  tcp_pair q;
  ASSERT_EQ(kq.apply({make_kev(p.b, EVFILT_READ, EV_ADD, 0, 0, &tag_a)}), 0);
  send_bytes(p.a, 1);
  struct kevent e;
  ASSERT_TRUE(wait_event(kq, p.b, EVFILT_READ, &e));  // queued and level-triggered
  // Close it and give its number to another socket that has data.
  int number = p.b;
  ASSERT_EQ(::dup2(q.b, number), number);
  send_bytes(q.a, 1);
  for (const auto& ev : kq.poll(50ms)) {
    EXPECT_NE(ev.udata, &tag_a) << "an event of the closed socket reached the new one";
  }
  EXPECT_EQ(kq.apply({make_kev(number, EVFILT_READ, EV_DELETE)}), -1);
  EXPECT_EQ(errno, ENOENT) << "the knote died with the first socket";
}

}  // namespace
}  // namespace sluice
