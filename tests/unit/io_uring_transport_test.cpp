// What the io_uring transport does beyond the transport contract (which the
// conformance suite checks on it): multishot receives into a provided buffer
// ring of pool segments that grows when it runs dry, waits for the pool when
// the pool is exhausted (no spin, no byte lost), stops while input is paused,
// gives its segments back when no receive is armed; and output flushed in an
// iteration reaches the kernel in that iteration. Skips with the probe's
// reason where io_uring cannot run.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "harness.hpp"
#include "net.hpp"
#include "transports.hpp"

namespace sluice::conformance {
namespace {

#define SKIP_WITHOUT_IO_URING()                                      \
  do {                                                               \
    if (auto why = io_uring_traits::unavailable(); !why.empty()) {   \
      GTEST_SKIP() << why;                                           \
    }                                                                \
  } while (0)

#if SLUICE_HAVE_IO_URING

// Keeps what arrives in the connection's input while `hold`; otherwise
// consumes it into `got`. Optionally pauses reading at the first data.
struct holding_handler final : handler {
  bool hold = true;
  bool pause_at_first_data = false;
  int data_calls = 0;
  connection_handle handle{};
  std::string got;
  observations* obs = nullptr;

  void on_open(connection& c) noexcept override {
    handle = c.handle();
    if (obs) obs->note_open();
  }
  void on_data(connection& c) noexcept override {
    ++data_calls;
    if (pause_at_first_data && data_calls == 1) c.pause_reading();
    if (!hold) take(c);
  }
  void on_close(connection& c, close_reason r) noexcept override {
    if (obs) obs->note_close(r, c.error());
  }
  void take(connection& c) noexcept {
    std::size_t n = c.input().size();
    std::size_t at = got.size();
    got.resize(at + n);
    c.input().copy_out(got.data() + at, n);
    c.input().skip(n);
  }
};

// The address fd is bound to.
endpoint sockets_local(int fd) {
  endpoint e;
  socklen_t len = endpoint::capacity();
  if (::getsockname(fd, e.data(), &len) != 0) return endpoint{};
  return endpoint(e.data(), len);
}

// Reads what fd has now without blocking; appends it to out.
void drain_socket(int fd, std::string& out) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

TEST(io_uring_transport, a_dry_buffer_ring_grows_and_loses_no_byte) {
  SKIP_WITHOUT_IO_URING();
  // Twenty connections' data lands at once on a ring that starts with two
  // buffers: most receives end with ENOBUFS, the ring grows, the receives
  // are armed again, and every byte comes back in order.
  observations obs;
  echo_handler server(&obs);
  loop_options opts;
  stepped_loop<io_uring_traits> l(opts);
  auto& t = l->transport();
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  constexpr int conns = 20;
  constexpr std::size_t size = 48 * 1024;
  std::vector<int> fds;
  for (int i = 0; i < conns; ++i) fds.push_back(test::connect_to((*r)->local()));
  ASSERT_TRUE(l.step_until([&] { return obs.opened == conns; }));
  EXPECT_LE(t.ring_target(), io_uring::io_uring_transport::buf_ring_initial) << "the ring starts small";
  std::vector<byte_stream> streams;
  for (int i = 0; i < conns; ++i) {
    streams.emplace_back(1000 + static_cast<std::uint64_t>(i));
    ASSERT_TRUE(test::send_all(fds[i], streams.back().bytes(0, size)));
  }
  std::vector<std::string> back(conns);
  ASSERT_TRUE(l.step_until([&] {
    bool all = true;
    for (int i = 0; i < conns; ++i) {
      drain_socket(fds[i], back[i]);
      all = all && back[i].size() >= size;
    }
    return all;
  }));
  for (int i = 0; i < conns; ++i) {
    ASSERT_EQ(back[i].size(), size) << "connection " << i;
    EXPECT_TRUE(streams[i].matches(0, back[i])) << "connection " << i << " got its bytes back in order";
  }
  EXPECT_GT(t.ring_exhausted(), 0u) << "two buffers cannot hold twenty connections' data: receives ran dry";
  EXPECT_GT(t.ring_target(), io_uring::io_uring_transport::buf_ring_initial) << "and the ring grew";
  EXPECT_EQ(t.receives_armed(), static_cast<unsigned>(conns)) << "every receive was armed again";

  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(l.step_until([&] { return obs.closed[close_reason::peer_closed] == conns; }));
  l.steps(2);
  EXPECT_EQ(t.receives_armed(), 0u);
  EXPECT_EQ(t.ring_buffers(), 0u) << "no receive armed: the ring gave its buffers back";
  EXPECT_EQ(l->pool().segments_in_use(), 0u) << "and they went back to the pool";
}

TEST(io_uring_transport, an_exhausted_pool_pauses_receiving_without_spinning_or_losing_bytes) {
  SKIP_WITHOUT_IO_URING();
  // A pool of 8 segments of 4 KiB and a handler that keeps its input: the
  // pool runs out, the receive ends and the connection waits for segments.
  // While it waits nothing completes (no receive is re-armed in a loop); once
  // the input is consumed the rest arrives, in order.
  observations obs;
  holding_handler server;
  server.obs = &obs;
  loop_options opts;
  opts.pool.segment_size = 4096;
  opts.pool.max_bytes = 8 * 4096;
  opts.max_input_bytes = 1 << 20;  // the pool, not the input limit, stops the reads
  stepped_loop<io_uring_traits> l(opts);
  auto& t = l->transport();
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  int fd = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 1; }));
  const byte_stream stream(77);
  constexpr std::size_t size = 64 * 1024;  // twice what the pool holds; fits the socket buffers
  ASSERT_TRUE(test::send_all(fd, stream.bytes(0, size)));
  ASSERT_TRUE(l.step_until([&] { return l->pool().starved() && t.receives_armed() == 0; }));
  connection* c = l->get(server.handle);
  ASSERT_NE(c, nullptr);
  const std::size_t held = c->input().size();
  EXPECT_LT(held, size);
  const std::uint64_t events = l->stats().events.get();
  const std::uint64_t dry = t.ring_exhausted();
  l.steps(50);
  EXPECT_EQ(l->stats().events.get(), events) << "nothing completes while the pool is exhausted: no spin";
  EXPECT_EQ(t.ring_exhausted(), dry);
  EXPECT_EQ(c->input().size(), held);

  // Consume what is held: segments go back, receiving resumes.
  server.hold = false;
  server.take(*c);
  c->input().release();
  ASSERT_TRUE(l.step_until([&] { return server.got.size() >= size; }));
  ASSERT_EQ(server.got.size(), size);
  EXPECT_TRUE(stream.matches(0, server.got)) << "every byte, in order, across the pause";
  EXPECT_GT(l->stats().reads_starved.get(), 0u);
  ::close(fd);
  ASSERT_TRUE(l.step_until([&] { return obs.closed.size() == 1; }));
}

TEST(io_uring_transport, paused_input_cancels_the_receive_and_resuming_arms_it_again) {
  SKIP_WITHOUT_IO_URING();
  observations obs;
  holding_handler server;
  server.obs = &obs;
  server.pause_at_first_data = true;
  loop_options opts;
  stepped_loop<io_uring_traits> l(opts);
  auto& t = l->transport();
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  int fd = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 1; }));
  EXPECT_EQ(t.receives_armed(), 1u);
  ASSERT_TRUE(test::send_all(fd, "first"));
  ASSERT_TRUE(l.step_until([&] { return server.data_calls == 1 && t.receives_armed() == 0; }))
      << "pausing cancels the multishot receive";
  connection* c = l->get(server.handle);
  ASSERT_NE(c, nullptr);
  const std::size_t held = c->input().size();
  ASSERT_TRUE(test::send_all(fd, "second"));
  l.steps(20);
  EXPECT_EQ(c->input().size(), held) << "nothing is read while paused";
  EXPECT_EQ(t.receives_armed(), 0u);
  server.hold = false;
  c->resume_reading();
  ASSERT_TRUE(l.step_until([&] { return server.got.size() >= 11; }));
  EXPECT_EQ(server.got, "firstsecond");
  EXPECT_EQ(t.receives_armed(), 1u) << "resuming armed the receive again";
  ::close(fd);
  ASSERT_TRUE(l.step_until([&] { return obs.closed.size() == 1; }));
}

TEST(io_uring_transport, a_receive_armed_in_the_closing_iteration_does_not_outlive_the_socket) {
  SKIP_WITHOUT_IO_URING();
  // Regression: a receive armed and a close in the same iteration. The
  // receive's submission was still queued when release() cancelled the
  // socket's operations, so the cancel missed it and the next poll handed it
  // to the kernel for a descriptor number that may already be another file's.
  observations obs;
  holding_handler server;
  server.obs = &obs;
  server.pause_at_first_data = true;
  loop_options opts;
  manual_clock clock;
  stepped_loop<io_uring_traits> l(opts, &clock);
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  int fd = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 1; }));
  const connection_handle first = server.handle;
  // A second connection keeps its receive armed, so the buffer ring stays
  // registered (with none armed it is unregistered, and a stray receive
  // would fail for want of buffers instead of reading).
  int other = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 2; }));
  ASSERT_TRUE(test::send_all(fd, "a"));
  ASSERT_TRUE(l.step_until([&] { return server.data_calls == 1 && l->transport().receives_armed() == 1; }));
  connection* c = l->get(first);
  ASSERT_NE(c, nullptr);
  const int old_fd = transport_loop::slot(*c).fd;
  // One iteration: its ready pass arms the resumed receive, its timers abort
  // the connection, its close phase releases the socket.
  timer t([](timer& tm) noexcept { static_cast<connection*>(tm.context())->abort(); }, c);
  l->timers().arm_after(t, 1ms);
  c->resume_reading();
  clock.advance(2ms);
  l->run_once();
  ASSERT_EQ(obs.closed.size(), 1u);
  // The descriptor number now names another file, with bytes waiting.
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  ASSERT_EQ(::dup2(sp[0], old_fd), old_fd);
  ASSERT_EQ(::write(sp[1], "mine", 4), 4);
  l.steps(5);
  std::string left;
  drain_socket(old_fd, left);
  EXPECT_EQ(left, "mine") << "no receive of the closed connection took another file's bytes";
  ::close(old_fd);
  ::close(sp[0]);
  ::close(sp[1]);
  ::close(fd);
  ::close(other);
}

TEST(io_uring_transport, output_reaches_the_kernel_in_the_iteration_that_flushed_it) {
  SKIP_WITHOUT_IO_URING();
  // The flush phase hands its sends to the kernel at once and takes their
  // completions in the same call: the client has the echo without another
  // step, and only the long-lived operations stay in flight (the wake-up
  // read, the accept, the receive), so the next poll may sleep.
  observations obs;
  echo_handler server(&obs);
  loop_options opts;
  stepped_loop<io_uring_traits> l(opts);
  auto& t = l->transport();
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  int fd = test::connect_to((*r)->local());
  ASSERT_TRUE(l.step_until([&] { return obs.opened == 1; }));
  ASSERT_TRUE(test::send_all(fd, "ping"));
  ASSERT_TRUE(l.step_until([&] { return l->stats().bytes_written.get() == 4; }));
  EXPECT_NE(test::wait_for(fd, POLLIN, 5s), 0) << "the echo left without another iteration";
  EXPECT_EQ(test::read_n(fd, 4, 5s), "ping");
  EXPECT_EQ(t.in_flight(), 3u) << "the send's completion was reaped in the flush phase";
  ::close(fd);
  ASSERT_TRUE(l.step_until([&] { return obs.closed.size() == 1; }));
}

// A loop whose sends of 4 KiB or more go zero-copy.
struct io_uring_zerocopy_traits : io_uring_traits {
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id, std::size_t{4096});
  }
};

// Sends `total` bytes of a byte stream, as fast as writable() allows.
struct producing_handler final : handler {
  const byte_stream* stream = nullptr;
  std::uint64_t total = 0;
  std::uint64_t produced = 0;
  observations* obs = nullptr;
  void on_open(connection& c) noexcept override {
    if (obs) obs->note_open();
    produce(c);
  }
  void on_data(connection& c) noexcept override { c.input().skip(c.input().size()); }
  void on_writable(connection& c) noexcept override { produce(c); }
  void on_close(connection& c, close_reason r) noexcept override {
    if (obs) obs->note_close(r, c.error());
  }
  void produce(connection& c) noexcept {
    while (produced < total && c.writable()) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(32 * 1024, total - produced));
      if (!c.write(stream->bytes(produced, n))) break;
      produced += n;
    }
    if (produced == total) c.close(close_reason::local);
  }
};

TEST(io_uring_transport, zero_copy_sends_hold_their_segments_until_the_notification) {
  SKIP_WITHOUT_IO_URING();
  // 4 MiB through send_zc: every byte arrives in order, every zero-copy send
  // got its notification before its segments went back, and none is left.
  observations obs;
  const byte_stream stream(4242);
  producing_handler server;
  server.stream = &stream;
  server.total = 4 << 20;
  server.obs = &obs;
  loop_options opts;
  stepped_loop<io_uring_zerocopy_traits> l(opts);
  auto& t = l->transport();
  EXPECT_EQ(t.zerocopy_threshold(), 4096u);
  auto r = l->listen(endpoint::loopback_v4(0), server);
  ASSERT_TRUE(r.ok());
  int fd = test::connect_to((*r)->local());
  std::string got;
  ASSERT_TRUE(l.step_until(
      [&] {
        drain_socket(fd, got);
        return got.size() >= server.total && obs.closed.size() == 1;
      },
      200000));
  ASSERT_EQ(got.size(), server.total);
  EXPECT_TRUE(stream.matches(0, got)) << "every byte, in order";
  EXPECT_GT(t.zerocopy_sends(), 0u);
  ASSERT_TRUE(l.step_until([&] { return t.zerocopy_notified() == t.zerocopy_sends(); }));
  EXPECT_EQ(l->pool().segments_in_use(), 0u) << "each held segment went back after its notification";
  ::close(fd);
}

TEST(io_uring_transport, a_udp_burst_larger_than_the_buffer_ring_arrives_whole) {
  SKIP_WITHOUT_IO_URING();
  // More datagrams than the UDP ring has buffers land before the loop runs:
  // the multishot recvmsg ends (ENOBUFS) once the buffers are taken, is armed
  // again with the buffers back, and every datagram arrives whole with its
  // sender's address, the largest one too.
  struct collector final : datagram_handler {
    std::vector<std::string> got;
    std::vector<endpoint> from;
    void on_datagram(udp_socket&, const endpoint& peer, std::string_view p) noexcept override {
      got.emplace_back(p);
      from.push_back(peer);
    }
  };
  collector sink;
  loop_options opts;
  stepped_loop<io_uring_traits> l(opts);
  auto r = l->udp_bind(endpoint::loopback_v4(0), sink);
  ASSERT_TRUE(r.ok());
  const endpoint at = (*r)->local();
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::connect(fd, at.data(), at.size()), 0);
  const endpoint me = sockets_local(fd);
  constexpr unsigned small = 2 * io_uring::io_uring_transport::udp_ring_buffers + 8;
  std::vector<std::string> want;
  for (unsigned i = 0; i < small; ++i) want.push_back(test::random_bytes(1 + i * 7, i));
  want.push_back(test::random_bytes(65000, 99));  // near the largest UDP payload
  for (const std::string& d : want) ASSERT_EQ(::send(fd, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  ASSERT_TRUE(l.step_until([&] { return sink.got.size() >= want.size(); }));
  EXPECT_EQ(sink.got, want) << "every datagram, whole and in order";
  EXPECT_GT(l->transport().udp_rearmed(), 0u) << "the burst outran the buffers: the receive ended and was armed again";
  for (const endpoint& e : sink.from) EXPECT_EQ(e.to_string(), me.to_string());
  ::close(fd);
}

#else

TEST(io_uring_transport, not_built_here) { SKIP_WITHOUT_IO_URING(); }

#endif

}  // namespace
}  // namespace sluice::conformance
