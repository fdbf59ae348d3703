// sluice-echo --protocol=sockperf (apps/echo/sockperf_handlers.hpp): which
// messages are answered and how, over TCP (framing across any cut, limits)
// on epoll with kernel sockets, and over UDP both on epoll and on the
// user-space stack (where the answer leaves in the request's buffer).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "frames.hpp"
#include "net.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/epoll/epoll_transport.hpp"
#include "sluice/memory/memory_port.hpp"
#include "sluice/memory/memory_transport.hpp"
#include "sockperf_handlers.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using echo_app::sockperf_header;

// A sockperf message: seq, flags, total length, then body bytes.
std::string message(std::uint64_t seq, std::uint16_t flags, std::string_view body) {
  std::string m;
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>(seq >> (8 * i)));
  m.push_back(static_cast<char>(flags >> 8));
  m.push_back(static_cast<char>(flags));
  const auto len = static_cast<std::uint32_t>(14 + body.size());
  for (int i = 3; i >= 0; --i) m.push_back(static_cast<char>(len >> (8 * i)));
  m.append(body);
  return m;
}
// The answer `sockperf server` gives: the same, client flag cleared.
std::string answer(const std::string& m) {
  std::string a = m;
  a[9] = static_cast<char>(a[9] & ~1);
  return a;
}

constexpr std::uint16_t ping = sockperf_header::client | sockperf_header::pong_request;

TEST(sockperf_handler, tcp_answers_pong_requests_only_whatever_the_cuts) {
  loop<epoll::epoll_transport> l(loop_options{}, 0);
  echo_app::sockperf_stream_handler h;
  auto lr = l.listen(endpoint::loopback_v4(0), h);
  ASSERT_TRUE(lr.ok());
  int fd = test::connect_to((*lr)->local());
  ASSERT_GE(fd, 0);
  // Else Nagle holds the rest of a cut message until the server's delayed ACK.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string a = message(1, ping, std::string(100, 'a'));
  const std::string quiet = message(2, sockperf_header::client, "no answer wanted");
  const std::string warm = message(3, ping | sockperf_header::warmup, "warm-up");
  const std::string server = message(4, sockperf_header::pong_request, "not from a client");
  const std::string b = message(5, ping, std::string(3000, 'b'));
  const std::string all = a + quiet + warm + server + b;
  // Cut the stream everywhere: the answers must be the same.
  for (std::size_t cut : {1ul, 7ul, 13ul, 14ul, 15ul, 200ul, all.size() - 1}) {
    ASSERT_TRUE(test::send_all(fd, all.substr(0, cut)));
    for (int i = 0; i < 20; ++i) l.run_once();
    ASSERT_TRUE(test::send_all(fd, all.substr(cut)));
    std::string got;
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (got.size() < a.size() + b.size() && std::chrono::steady_clock::now() < end) {
      l.run_once();
      char buf[8192];
      ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) got.append(buf, static_cast<std::size_t>(r));
    }
    EXPECT_EQ(got, answer(a) + answer(b)) << "cut at " << cut;
  }
  ::close(fd);
  l.stop(0s);
  for (int i = 0; i < 100 && l.connection_count() != 0; ++i) l.run_once();
}

TEST(sockperf_handler, tcp_closes_on_a_length_sockperf_would_refuse) {
  for (std::uint32_t len : {13u, 65507u}) {
    loop<epoll::epoll_transport> l(loop_options{}, 0);
    echo_app::sockperf_stream_handler h;
    auto lr = l.listen(endpoint::loopback_v4(0), h);
    ASSERT_TRUE(lr.ok());
    int fd = test::connect_to((*lr)->local());
    std::string bad = message(1, ping, "");
    for (int i = 0; i < 4; ++i) bad[10 + i] = static_cast<char>(len >> (8 * (3 - i)));
    ASSERT_TRUE(test::send_all(fd, bad));
    std::string rest;
    bool eof = false;
    for (int i = 0; i < 2000 && !eof; ++i) {
      l.run_once();
      char buf[64];
      ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      eof = r == 0;
    }
    EXPECT_TRUE(eof) << "length " << len;
    EXPECT_EQ(l.stats().frames_rejected.get(), 1u);
    ::close(fd);
    for (int i = 0; i < 100 && l.connection_count() != 0; ++i) l.run_once();
  }
}

TEST(sockperf_handler, udp_on_kernel_sockets_answers_each_message_of_a_datagram) {
  loop<epoll::epoll_transport> l(loop_options{}, 0);
  echo_app::sockperf_datagram_handler h;
  auto ur = l.udp_bind(endpoint::loopback_v4(0), h);
  ASSERT_TRUE(ur.ok());
  const endpoint at = (*ur)->local();
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const std::string a = message(10, ping, "ping");
  const std::string w = message(11, ping | sockperf_header::warmup, "warm");
  const std::string b = message(12, ping, "pong me too");
  for (const std::string& d : {a, w, a + b}) {
    ASSERT_EQ(::sendto(fd, d.data(), d.size(), 0, at.data(), at.size()), static_cast<ssize_t>(d.size()));
  }
  std::vector<std::string> got;
  for (int i = 0; i < 2000 && got.size() < 3; ++i) {
    l.run_once();
    char buf[2048];
    ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) got.emplace_back(buf, static_cast<std::size_t>(r));
  }
  EXPECT_EQ(got, (std::vector<std::string>{answer(a), answer(a), answer(b)}));
  ::close(fd);
}

TEST(sockperf_handler, udp_on_the_user_space_stack_answers_in_the_request_buffer) {
  namespace fr = test::frames;
  manual_clock clock;
  memory::memory_wire::options wo;
  wo.clock = {&clock};
  memory::memory_wire wire(wo);
  memory::memory_port peer(wire, memory::memory_wire::side::b);
  inet::inet_transport_options to;
  to.stack.iface = inet::interface_config::parse("10.0.0.2/24", "").value();
  loop_options lo;
  lo.clock = {&clock};
  {
    loop<memory::memory_transport> l(lo, 0, std::make_unique<memory::memory_port>(wire, memory::memory_wire::side::a), to);
    echo_app::sockperf_datagram_handler h;
    ASSERT_TRUE(l.udp_bind(endpoint::ipv4(0, 11111), h).ok());
    const inet::mac_address them{{2, 0, 0, 0, 0, 0x77}};
    const inet::mac_address us = wire.mac(memory::memory_wire::side::a);
    ASSERT_TRUE(fr::send(peer, fr::ethernet(inet::mac_address::broadcast(), them, 0x0806,
                                            fr::arp(1, them, fr::ip("10.0.0.1"), {}, fr::ip("10.0.0.2")))));
    l.run_once();
    (void)fr::receive_all(peer);
    const std::string m = message(99, ping, std::string(64, 'x'));
    const std::string no = message(100, sockperf_header::client, "quiet");
    for (const auto& d : {m, no}) {
      ASSERT_TRUE(fr::send(peer, fr::udp_frame(us, them, fr::ip("10.0.0.1"), fr::ip("10.0.0.2"), 5000, 11111, d)));
    }
    l.run_once();
    auto out = fr::receive_all(peer);
    ASSERT_EQ(out.size(), 1u);
    auto d = fr::decode(out[0]);
    EXPECT_TRUE(d.l4_checksum_ok);
    EXPECT_EQ(d.payload, answer(m));
    EXPECT_EQ(l.transport().ip().stats().tx_in_place.get(), 2u) << "the ARP reply and the pong, no copy";
  }
  EXPECT_EQ(wire.free_buffers(memory::memory_wire::side::a), wo.buffers_per_end);
}

}  // namespace
}  // namespace sluice
