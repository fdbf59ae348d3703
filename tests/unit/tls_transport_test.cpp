// tls::server_sessions over each kernel transport the conformance suite
// runs (epoll, kqueue — on Linux against the EMULATED <sys/event.h> —, and
// io_uring where it can run; each skips with its probe's reason), with a
// client none of our code is in: OpenSSL over a kernel socket (SSL_set_fd,
// OpenSSL's own socket BIO). Built a second time for DPDK
// (test_tls_transport_dpdk, as test_conformance_dpdk: a network namespace
// and net_tap devices of its own, the client a kernel socket on the other
// side of the tap; needs root, else it skips with the reason). TLS 1.2 and 1.3: the handshake (certificate
// verified), 200 KB echoed back whole, a second connection resuming the
// first one's session, close_notify both ways; the server's counters agree.
// Then sluice-httpd's session type (apps/httpd) under TLS with curl.

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "harness.hpp"
#include "http_handler.hpp"
#include "net.hpp"
#include "sluice/tls/server_sessions.hpp"
#include "tls_test_certs.hpp"
#include "transports.hpp"

namespace sluice::conformance {
namespace {

namespace fs = std::filesystem;

// Echoes the plaintext it gets (the TLS wrapper seals it).
struct echo_session {
  explicit echo_session(connection&) noexcept {}
  void on_data(connection& c) noexcept {
    buffer_chain& in = c.input();
    std::string bytes(in.size(), '\0');
    in.copy_out(bytes.data(), bytes.size());
    in.skip(bytes.size());
    if (!c.write(bytes)) c.close(close_reason::resource_limit);
  }
};

using tls_echo = tls::server_sessions<echo_session>;

// Answers "bye" to its first data and shuts its side for writing
// (half-close); then echoes nothing more (its writes are refused).
struct half_closer {
  explicit half_closer(connection&) noexcept {}
  void on_data(connection& c) noexcept {
    c.input().skip(c.input().size());
    if (c.write_shut()) return;
    if (!c.write("bye")) c.close(close_reason::resource_limit);
    c.shutdown_write();
  }
  void on_peer_shutdown(connection& c) noexcept { c.close(close_reason::peer_closed); }
};

fs::path dir;

class TlsCerts : public ::testing::Environment {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-tls-transport-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    test::make_cert_pair(dir, "ec", "ec -pkeyopt ec_paramgen_curve:P-256", "ec.test");
  }
  void TearDown() override { fs::remove_all(dir); }
};
const auto* env = ::testing::AddGlobalTestEnvironment(new TlsCerts);

// A blocking kernel socket connected to `to` (20 s receive limit: a test
// that fails does not hang).
int connect_to(const endpoint& to) {
  const int fd = test::connect_to(to);
  EXPECT_GE(fd, 0);
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Runs an OpenSSL call on a blocking socket again while it only wants to be
// retried (a read interrupted by a signal: EINTR, as in the DPDK process);
// true once it succeeded.
template <class F>
bool again(SSL* ssl, F&& f) {
  for (int i = 0; i < 1000; ++i) {
    const int r = f();
    if (r == 1) return true;
    const int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
  }
  return false;
}

// recv() on a blocking socket, again after a signal (EINTR: the DPDK
// process gets them).
ssize_t recv_some(int fd, char* buf, std::size_t n) {
  ssize_t r;
  do {
    r = ::recv(fd, buf, n, 0);
  } while (r < 0 && errno == EINTR);
  return r;
}

struct ssl_ctx_free {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};

// One client connection: handshake, `bytes` echoed, close_notify both ways.
// Returns the session to resume with (SSL_SESSION, owned by the caller).
SSL_SESSION* one_connection(SSL_CTX* ctx, const endpoint& to, SSL_SESSION* resume, bool expect_resumed,
                            const std::string& bytes) {
  const int fd = connect_to(to);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "ec.test");
  if (resume != nullptr) SSL_set_session(ssl, resume);
  EXPECT_TRUE(again(ssl, [&] { return SSL_connect(ssl); })) << ERR_error_string(ERR_get_error(), nullptr);
  EXPECT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
  EXPECT_EQ(SSL_session_reused(ssl) == 1, expect_resumed);
  std::size_t written = 0;
  EXPECT_TRUE(again(ssl, [&] { return SSL_write_ex(ssl, bytes.data(), bytes.size(), &written); }));
  EXPECT_EQ(written, bytes.size());
  std::string back;
  char buf[16384];
  while (back.size() < bytes.size()) {
    std::size_t got = 0;
    if (!again(ssl, [&] { return SSL_read_ex(ssl, buf, sizeof buf, &got); })) break;
    back.append(buf, got);
  }
  EXPECT_TRUE(back == bytes) << "echoed " << back.size() << " of " << bytes.size() << " bytes";
  SSL_SESSION* saved = SSL_get1_session(ssl);
  EXPECT_EQ(SSL_shutdown(ssl), 0);  // ours sent, theirs not read yet
  // Theirs came: a clean close both ways (SSL_shutdown is 1).
  EXPECT_TRUE(again(ssl, [&] { return SSL_shutdown(ssl); }));
  SSL_free(ssl);
  ::close(fd);
  return saved;
}

// Listens with `server` on loop l's transport; the address a client reaches
// it at (port 0 on failure, reported).
template <class Traits, class Handler>
endpoint listen_on(threaded_loop<Traits>& l, Handler& server) {
  return l.call([&](auto& lp) -> endpoint {
    auto r = lp.listen(Traits::listen_v4(), server);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return r.ok() ? Traits::reachable(lp, (*r)->local()) : endpoint{};
  });
}

template <class Traits>
class tls_transport : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = Traits::unavailable();
    if (!why.empty()) GTEST_SKIP() << Traits::name << " cannot run here: " << why;
  }
};

TYPED_TEST_SUITE(tls_transport, conformance_transports, transport_names);

TYPED_TEST(tls_transport, handshake_echo_resumption_and_close_notify) {
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "ec.key").string()}};
  auto keys = tls::ticket_keys::make();
  ASSERT_TRUE(keys);
  so.tickets = *keys;
  auto ctx = tls::context::make_server(so);
  ASSERT_TRUE(ctx) << ctx.err().message;
  tls_echo server(std::move(*ctx));  // outlives the loop
  std::string bytes(200 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 251);
  {
    threaded_loop<TypeParam> l;
    const endpoint at = listen_on(l, server);
    ASSERT_NE(at.port(), 0);
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
      std::unique_ptr<SSL_CTX, ssl_ctx_free> cctx(SSL_CTX_new(TLS_client_method()));
      ASSERT_EQ(SSL_CTX_load_verify_locations(cctx.get(), (dir / "ec.crt").c_str(), nullptr), 1);
      SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_max_proto_version(cctx.get(), version);
      SSL_SESSION* first = one_connection(cctx.get(), at, nullptr, false, bytes);
      ASSERT_NE(first, nullptr);
      SSL_SESSION* second = one_connection(cctx.get(), at, first, true, bytes);
      SSL_SESSION_free(first);
      SSL_SESSION_free(second);
    }
    const tls::stats st = l.call([&](loop_base&) { return server.context().tls.stats(); });
    EXPECT_EQ(st.handshakes, 4u);
    EXPECT_EQ(st.resumed, 2u);
    EXPECT_EQ(st.tls12, 2u);
    EXPECT_EQ(st.tls13, 2u);
    EXPECT_EQ(st.close_notify_received, 4u);
    EXPECT_EQ(st.close_notify_sent, 4u);
    EXPECT_EQ(st.handshake_failures + st.record_errors + st.truncated, 0u);
    l.stop();
    EXPECT_EQ(l.segments_left(), 0u);
    EXPECT_EQ(l.connections_left(), 0u);
  }
}

// Regression: the sealed output bounds what the application is given.
// Before, the application's own writable() saw only its plaintext chain, so
// an echo to a client that does not read sealed everything it was sent
// into the connection's output (tens of MB). Now, with a client that writes
// 48 MB and reads nothing until it stalls, the server holds at most a few
// MB of buffers (input cap, plaintext cap, output high water, one sealed
// batch), and then every byte still comes back.
TYPED_TEST(tls_transport, a_client_that_does_not_read_stalls_the_echo_not_the_memory) {
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "ec.key").string()}};
  auto ctx = tls::context::make_server(so);
  ASSERT_TRUE(ctx) << ctx.err().message;
  tls_echo server(std::move(*ctx));
  loop_options lo;
  lo.max_input_bytes = 256 * 1024;
  threaded_loop<TypeParam> l(lo);
  const endpoint at = listen_on(l, server);
  ASSERT_NE(at.port(), 0);
  std::unique_ptr<SSL_CTX, ssl_ctx_free> cctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_mode(cctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const int fd = connect_to(at);
  SSL* ssl = SSL_new(cctx.get());
  SSL_set_fd(ssl, fd);
  ASSERT_TRUE(again(ssl, [&] { return SSL_connect(ssl); }));
  test::set_nonblocking(fd);
  const std::size_t total = 48u << 20;
  const std::string block = test::random_bytes(64 * 1024, 19);
  std::size_t sent = 0;
  std::size_t received = 0;
  bool same = true;
  char buf[65536];
  // Write until the socket stays unwritable (the server stopped reading).
  for (;;) {
    std::size_t n = 0;
    const std::size_t off = sent % block.size();
    if (SSL_write_ex(ssl, block.data() + off, std::min(block.size() - off, total - sent), &n) == 1) {
      sent += n;
      if (sent == total) break;
      continue;
    }
    ASSERT_EQ(SSL_get_error(ssl, 0), SSL_ERROR_WANT_WRITE);
    if ((test::wait_for(fd, POLLOUT, 300ms) & POLLOUT) == 0) break;  // stalled
  }
  ASSERT_LT(sent, total) << "the whole 48 MB went out unread: nothing held the server back";
  const std::size_t held = l.call([](auto& lp) { return lp.pool().segments_in_use() * lp.pool().segment_size(); });
  EXPECT_LT(held, std::size_t{4} << 20) << "server buffers while its client does not read (sent " << sent << ")";
  // Now read everything back, writing the rest as the server makes room.
  while (received < total && same) {
    std::size_t got = 0;
    bool moved = false;
    if (SSL_read_ex(ssl, buf, sizeof buf, &got) == 1) {
      for (std::size_t i = 0; i < got && same; ++i) same = buf[i] == block[(received + i) % block.size()];
      received += got;
      moved = true;
    } else {
      const int e = SSL_get_error(ssl, 0);
      ASSERT_TRUE(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) << e;
    }
    if (sent < total) {
      std::size_t n = 0;
      const std::size_t off = sent % block.size();
      if (SSL_write_ex(ssl, block.data() + off, std::min(block.size() - off, total - sent), &n) == 1) {
        sent += n;
        moved = true;
      }
    }
    if (!moved) {
      ASSERT_NE(test::wait_for(fd, POLLIN | POLLOUT, 20s), 0) << "no progress at " << received;
    }
  }
  EXPECT_TRUE(same) << "echoed bytes differ near " << received;
  EXPECT_EQ(received, total);
  SSL_free(ssl);
  ::close(fd);
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

// Regression: a last message and close_notify in one read. The plaintext
// went to the application, and the peer's end was noticed only while no
// plaintext was waiting, so nothing told the application afterwards: the
// connection stayed open (a client that sent its last request and
// close_notify together waited for a timeout). Now the echo comes back,
// then the server's close_notify and its FIN.
TYPED_TEST(tls_transport, last_data_and_close_notify_in_one_read_are_both_delivered) {
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "ec.key").string()}};
  auto ctx = tls::context::make_server(so);
  ASSERT_TRUE(ctx) << ctx.err().message;
  tls_echo server(std::move(*ctx));
  threaded_loop<TypeParam> l;
  const endpoint at = listen_on(l, server);
  ASSERT_NE(at.port(), 0);
  // An OpenSSL client over memory BIOs, so that its records are sent in one
  // write of our choosing.
  std::unique_ptr<SSL_CTX, ssl_ctx_free> cctx(SSL_CTX_new(TLS_client_method()));
  SSL* ssl = SSL_new(cctx.get());
  BIO* rb = BIO_new(BIO_s_mem());
  BIO* wb = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rb, wb);
  SSL_set_connect_state(ssl);
  const int fd = connect_to(at);
  auto flush = [&] {
    char buf[16384];
    std::string out;
    int n;
    while ((n = BIO_read(wb, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out.empty() || test::send_all(fd, out);
  };
  auto feed = [&] {  // one read from the socket into the client; false at EOF
    char buf[16384];
    const ssize_t n = recv_some(fd, buf, sizeof buf);
    if (n <= 0) return false;
    BIO_write(rb, buf, static_cast<int>(n));
    return true;
  };
  for (int i = 0; i < 10 && SSL_is_init_finished(ssl) == 0; ++i) {
    SSL_do_handshake(ssl);
    ASSERT_TRUE(flush());
    if (SSL_is_init_finished(ssl) == 0) {
      ASSERT_TRUE(feed());
    }
  }
  ASSERT_EQ(SSL_is_init_finished(ssl), 1);
  const std::string last = "the last message";
  std::size_t n = 0;
  ASSERT_EQ(SSL_write_ex(ssl, last.data(), last.size(), &n), 1);
  ASSERT_EQ(SSL_shutdown(ssl), 0);  // close_notify, behind the message
  ASSERT_TRUE(flush());             // both records in one send
  std::string back;
  bool notified = false;
  while (!notified && feed()) {
    char buf[256];
    std::size_t got = 0;
    while (SSL_read_ex(ssl, buf, sizeof buf, &got) == 1) back.append(buf, got);
    notified = SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
  }
  EXPECT_EQ(back, last);
  EXPECT_TRUE(notified) << "no close_notify from the server (it waited for more)";
  char one;
  EXPECT_EQ(recv_some(fd, &one, 1), 0) << "no FIN after the server's close_notify (" << std::strerror(errno) << ")";
  SSL_free(ssl);
  ::close(fd);
  const tls::stats st = l.call([&](auto&) { return server.context().tls.stats(); });
  EXPECT_EQ(st.close_notify_received, 1u);
  EXPECT_EQ(st.close_notify_sent, 1u);
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

// An application session that shuts its side for writing under TLS: what it
// wrote, then close_notify, then the FIN (a half-close the client can tell
// from a truncation). Before plaintext_link, server_sessions sent
// close_notify only after a close(): the FIN came alone.
TYPED_TEST(tls_transport, shutdown_write_sends_close_notify_before_the_fin) {
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "ec.key").string()}};
  auto ctx = tls::context::make_server(so);
  ASSERT_TRUE(ctx) << ctx.err().message;
  tls::server_sessions<half_closer> server(std::move(*ctx));
  threaded_loop<TypeParam> l;
  const endpoint at = listen_on(l, server);
  ASSERT_NE(at.port(), 0);
  std::unique_ptr<SSL_CTX, ssl_ctx_free> cctx(SSL_CTX_new(TLS_client_method()));
  const int fd = connect_to(at);
  SSL* ssl = SSL_new(cctx.get());
  SSL_set_fd(ssl, fd);
  ASSERT_TRUE(again(ssl, [&] { return SSL_connect(ssl); })) << ERR_error_string(ERR_get_error(), nullptr);
  std::size_t n = 0;
  ASSERT_TRUE(again(ssl, [&] { return SSL_write_ex(ssl, "hi", 2, &n); }));
  std::string back;
  char buf[256];
  int err = SSL_ERROR_NONE;
  for (int i = 0; i < 100 && err == SSL_ERROR_NONE; ++i) {
    std::size_t got = 0;
    const int r = SSL_read_ex(ssl, buf, sizeof buf, &got);
    if (r == 1) {
      back.append(buf, got);
    } else {
      err = SSL_get_error(ssl, r);
      if (err == SSL_ERROR_WANT_READ) err = SSL_ERROR_NONE;  // (a signal: again)
    }
  }
  EXPECT_EQ(back, "bye");
  EXPECT_EQ(err, SSL_ERROR_ZERO_RETURN) << "the server's FIN came without close_notify (a truncation)";
  char one;
  EXPECT_EQ(recv_some(fd, &one, 1), 0) << "no FIN after the server's close_notify (" << std::strerror(errno) << ")";
  // Our close_notify (and FIN) ends the server's reading side too.
  EXPECT_EQ(SSL_shutdown(ssl), 1);
  ::shutdown(fd, SHUT_WR);
  SSL_free(ssl);
  ::close(fd);
  const tls::stats st = l.call([&](auto&) { return server.context().tls.stats(); });
  EXPECT_EQ(st.close_notify_sent, 1u);
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

// sluice-httpd's own session type (apps/httpd, compiled into this test)
// under TLS on this transport, and curl as the client: GET / verified
// against the certificate, three requests on one connection, and a 100 KB
// POST /echo coming back whole.
TYPED_TEST(tls_transport, httpd_session_serves_curl) {
  if (std::system("curl --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "curl is not installed";
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "ec.key").string()}};
  auto ctx = tls::context::make_server(so);
  ASSERT_TRUE(ctx) << ctx.err().message;
  http::limits limits;
  tls::server_sessions<httpd::http_session, httpd::httpd_context> server(std::move(*ctx), limits, nullptr,
                                                                         std::chrono::seconds(10), true);
  threaded_loop<TypeParam> l;
  const endpoint at = listen_on(l, server);
  ASSERT_NE(at.port(), 0);
  const std::string port = std::to_string(at.port());
  std::string host = at.to_string();
  host = host.substr(0, host.rfind(':'));
  const std::string curl = "curl -sS --max-time 20 --cacert " + (dir / "ec.crt").string() + " --resolve ec.test:" +
                           port + ":" + host + " ";
  const std::string url = "https://ec.test:" + port;
  auto run = [](const std::string& cmd) {
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[65536];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      pclose(p);
    }
    return out;
  };
  EXPECT_EQ(run(curl + url + "/ " + url + "/ " + url + "/"), "Hello, World!Hello, World!Hello, World!");
  const std::string body = test::random_bytes(100 * 1024, 7);
  const fs::path file = dir / ("body-" + std::string(TypeParam::name));
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(body.data(), 1, body.size(), f);
    std::fclose(f);
  }
  EXPECT_TRUE(run(curl + "--data-binary @" + file.string() + " " + url + "/echo") == body) << "POST /echo";
  const tls::stats st = l.call([&](auto&) { return server.context().tls.stats(); });
  EXPECT_EQ(st.handshakes, 2u);
  EXPECT_EQ(st.handshake_failures + st.record_errors, 0u);
  l.stop();
  EXPECT_EQ(l.segments_left(), 0u);
}

}  // namespace
}  // namespace sluice::conformance
