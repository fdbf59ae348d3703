// sluice-echo's handler (apps/echo/echo_handlers.hpp), driven step by step on
// a loop with small output limits so that backpressure is certain.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_handlers.hpp"
#include "net.hpp"
#include "sluice/core/loop.hpp"
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

}  // namespace
}  // namespace sluice
