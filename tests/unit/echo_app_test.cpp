// sluice-echo's handler (apps/echo/echo_handlers.hpp), driven step by step on
// a loop with small output limits so that backpressure is certain.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "echo_handlers.hpp"
#include "net.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/epoll/epoll_transport.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// Regression: sluice-echo lost the tail of the echo when the peer sent a
// burst, half-closed, and read only afterwards. The last bytes were still in
// input() (output was above high water, so on_data left them there) when the
// FIN arrived, and the default on_peer_shutdown closed the connection,
// discarding them. Seen from outside: 1 MiB in, 981989 bytes back.
TEST(echo_app, regression_lost_the_tail_when_the_peer_half_closed_under_backpressure) {
  loop_options opts;
  opts.output_high_water = 16 * 1024;
  opts.output_low_water = 4 * 1024;
  opts.max_input_bytes = 32 << 20;  // the server reads everything, FIN included
  loop<epoll::epoll_transport> l(opts, 0);
  echo_app::echo_handler echo;
  auto lr = l.listen(endpoint::loopback_v4(0), echo);
  ASSERT_TRUE(lr.ok());
  endpoint at = (*lr)->local();

  // A client with a small receive window: the echo gets stuck in the server.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_EQ(::connect(fd, at.data(), at.size()), 0);
  test::set_nonblocking(fd);
  const std::string data = test::random_bytes(8 << 20, 31);
  std::size_t sent = 0;
  for (int i = 0; i < 100000 && sent < data.size(); ++i) {
    ssize_t r = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (r > 0) sent += static_cast<std::size_t>(r);
    l.run_once();
  }
  ASSERT_EQ(sent, data.size());
  ::shutdown(fd, SHUT_WR);
  // The server takes everything and the FIN while the client reads nothing.
  for (int i = 0; i < 500; ++i) l.run_once();
  ASSERT_EQ(l.stats().bytes_read.get(), data.size()) << "the server read all of it";

  std::string got;
  bool eof = false;
  std::vector<char> buf(1 << 16);
  for (int i = 0; i < 200000 && !eof; ++i) {
    for (;;) {
      ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) {
        got.append(buf.data(), static_cast<std::size_t>(r));
        continue;
      }
      eof = r == 0;
      break;
    }
    l.run_once();
  }
  EXPECT_TRUE(eof);
  EXPECT_EQ(got.size(), data.size()) << "the whole echo, tail included";
  EXPECT_TRUE(got == data);
  ::close(fd);
  l.stop(0s);
  for (int i = 0; i < 100 && l.connection_count() != 0; ++i) l.run_once();
}

// Issue 15, item 4: sluice-echo --frames with a frame between --max-input
// (256k) and --max-frame (1m) stalled: reading stopped at the input limit, so
// the 300000-byte frame never completed, and nothing refused it either. The
// app now refuses such limits at start-up (apps_test); the handler itself
// closes a connection whose frame cannot fit its loop's input limit, and
// counts it, whatever the decoder's maximum.
TEST(echo_app, regression_a_frame_larger_than_the_input_limit_is_refused_not_waited_for) {
  loop_options opts;
  opts.max_input_bytes = 64 * 1024;
  loop<epoll::epoll_transport> l(opts, 0);
  auto decoder = codec::length_field_decoder::make({.field_size = 4, .strip = 4, .max_frame_length = (1 << 20) + 4});
  auto prepender = codec::length_field_prepender::make({.field_size = 4});
  ASSERT_TRUE(decoder && prepender);
  echo_app::frame_echo_handler frames(*decoder, *prepender);
  auto lr = l.listen(endpoint::loopback_v4(0), frames);
  ASSERT_TRUE(lr.ok());
  int fd = test::connect_to((*lr)->local());
  ASSERT_GE(fd, 0);
  test::set_nonblocking(fd);
  // A small frame first: echoed as usual.
  const std::string small = std::string("\x00\x00\x00\x03", 4) + "abc";
  ASSERT_EQ(::send(fd, small.data(), small.size(), MSG_NOSIGNAL), static_cast<ssize_t>(small.size()));
  // Then a header announcing 300000 bytes, and the bytes: more than the input holds.
  const std::string big = std::string("\x00\x04\x93\xe0", 4) + test::random_bytes(300000, 7);
  std::size_t sent = 0;
  std::string got;
  bool eof = false;
  std::vector<char> buf(1 << 16);
  for (int i = 0; i < 100000 && !eof; ++i) {
    if (sent < big.size()) {
      const ssize_t r = ::send(fd, big.data() + sent, big.size() - sent, MSG_NOSIGNAL);
      if (r > 0) sent += static_cast<std::size_t>(r);
    }
    l.run_once();
    for (;;) {
      const ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) {
        got.append(buf.data(), static_cast<std::size_t>(r));
        continue;
      }
      eof = r == 0 || (r < 0 && errno == ECONNRESET);
      break;
    }
  }
  EXPECT_TRUE(eof) << "the connection was closed, not left waiting";
  EXPECT_EQ(got, small) << "the frame before it was echoed; nothing of the big one";
  EXPECT_EQ(l.stats().frames_rejected.get(), 1u);
  ::close(fd);
  l.stop(0s);
  for (int i = 0; i < 100 && l.connection_count() != 0; ++i) l.run_once();
}

}  // namespace
}  // namespace sluice
