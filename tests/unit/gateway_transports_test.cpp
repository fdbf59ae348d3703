// The gateway's code on every transport: the same shard (pools, proxies,
// health checks) on a loop of each transport the conformance suite knows
// (epoll, and kqueue: EMULATED on Linux), proxying tcp and http between
// plain kernel sockets that the test drives itself; with TLS, the gateway
// terminates TLS from an OpenSSL client on one socket and originates it to
// an OpenSSL server on another (certificates made with the openssl command).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include <openssl/ssl.h>
#endif

#include "net.hpp"
#include "shard.hpp"
#include "transports.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using conformance::conformance_transports;
using conformance::transport_names;

// One loop of transport T running a gateway shard on its own thread.
template <class T>
class running_gateway {
 public:
  explicit running_gateway(config cfg) : cfg_(std::move(cfg)), stats_(cfg_) {
    std::promise<endpoint> bound;
    auto ready = bound.get_future();
    thread_ = std::thread([this, &bound] {
      std::unique_ptr<shard> sh;
      std::unique_ptr<handler> front;
      auto l = T::make(loop_options{}, 0);  // declared last: dies first
      sh = std::make_unique<shard>(*l, cfg_, stats_);
      front = sh->make_front(cfg_.listeners[0]);
      auto lr = l->listen(cfg_.listeners[0].address, *front);
      if (!lr) {
        bound.set_value(endpoint{});
        return;
      }
      loop_ = l.get();
      bound.set_value((*lr)->local());
      l->run();
    });
    at_ = ready.get();
  }
  ~running_gateway() {
    if (loop_ != nullptr) loop_->request_stop(0s);
    thread_.join();
  }
  [[nodiscard]] const endpoint& at() const { return at_; }

 private:
  config cfg_;
  shard_stats stats_;
  std::thread thread_;
  loop_base* loop_ = nullptr;
  endpoint at_;
};

config one_pool(proxy_mode mode, const endpoint& upstream) {
  config c;
  pool_config p;
  p.name = "p";
  p.upstreams = {upstream};
  p.upstream_names = {upstream.to_string()};
  p.check.kind = check_kind::none;
  c.pools.push_back(p);
  listener_config l;
  l.address = endpoint::loopback_v4(0);
  l.mode = mode;
  l.pool = "p";
  c.listeners.push_back(l);
  auto v = validate(c);
  EXPECT_TRUE(v) << (v ? "" : v.err().message);
  return c;
}

template <class T>
class gateway_on : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = T::unavailable(); !why.empty()) GTEST_SKIP() << T::name << " cannot run here: " << why;
  }
};
TYPED_TEST_SUITE(gateway_on, conformance_transports, transport_names);

TYPED_TEST(gateway_on, tcp_streams_pass_byte_exact_and_half_close) {
  auto [lfd, where] = test::listen_loopback(16);
  running_gateway<TypeParam> gw(one_pool(proxy_mode::tcp, where));
  ASSERT_FALSE(gw.at().empty());
  int client = test::connect_to(gw.at());
  ASSERT_GE(client, 0);
  ASSERT_NE(test::wait_for(lfd, POLLIN, 5s) & POLLIN, 0);
  int upstream = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(upstream, 0);
  const std::string payload = test::random_bytes(300000, 42);
  std::thread writer([&] { (void)test::send_all(client, payload); ::shutdown(client, SHUT_WR); });
  std::string got;
  EXPECT_TRUE(test::read_to_eof(upstream, got)) << "the client's FIN reaches the upstream";
  writer.join();
  EXPECT_TRUE(got == payload);
  const std::string answer = test::random_bytes(200000, 43);
  std::thread back([&] { (void)test::send_all(upstream, answer); ::shutdown(upstream, SHUT_WR); });
  std::string reply;
  EXPECT_TRUE(test::read_to_eof(client, reply));
  back.join();
  EXPECT_TRUE(reply == answer);
  ::close(client);
  ::close(upstream);
  ::close(lfd);
}

TYPED_TEST(gateway_on, http_requests_are_proxied_with_x_forwarded_for) {
  auto [lfd, where] = test::listen_loopback(16);
  running_gateway<TypeParam> gw(one_pool(proxy_mode::http, where));
  int client = test::connect_to(gw.at());
  ASSERT_GE(client, 0);
  ASSERT_TRUE(test::send_all(client, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"));
  ASSERT_NE(test::wait_for(lfd, POLLIN, 5s) & POLLIN, 0);
  int upstream = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(upstream, 0);
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    std::string b = test::read_n(upstream, 1, 5s);
    if (b.empty()) break;
    head += b;
  }
  EXPECT_NE(head.find("GET /x HTTP/1.1\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Forwarded-For: 127.0.0.1\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("Connection"), std::string::npos) << head;
  ASSERT_TRUE(test::send_all(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  std::string reply;
  while (reply.find("hello") == std::string::npos) {
    std::string b = test::read_n(client, 1, 5s);
    if (b.empty()) break;
    reply += b;
  }
  EXPECT_EQ(reply.substr(0, 15), "HTTP/1.1 200 OK") << reply;
  EXPECT_NE(reply.find("\r\n\r\nhello"), std::string::npos) << reply;
  ::close(client);
  ::close(upstream);
  ::close(lfd);
}

#if SLUICE_HAVE_TLS

// OpenSSL straight on a blocking socket (the peers the gateway talks to).
struct ssl_end {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ssl_end(const ssl_end&) = delete;
  ssl_end& operator=(const ssl_end&) = delete;
  ssl_end(bool server, int fd, const std::string& cert, const std::string& key, const std::string& ca) {
    ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (server) {
      SSL_CTX_use_certificate_chain_file(ctx, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
    } else {
      SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (!server) SSL_set_tlsext_host_name(ssl, "gw.test");
  }
  ~ssl_end() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  bool write_all(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      std::size_t n = 0;
      if (SSL_write_ex(ssl, data.data() + done, data.size() - done, &n) != 1) return false;
      done += n;
    }
    return true;
  }
  std::string read_exactly(std::size_t want) {
    std::string out(want, '\0');
    std::size_t got = 0;
    while (got < want) {
      std::size_t n = 0;
      if (SSL_read_ex(ssl, out.data() + got, want - got, &n) != 1) break;
      got += n;
    }
    out.resize(got);
    return out;
  }
};

TYPED_TEST(gateway_on, tls_terminated_and_originated_streams_pass_byte_exact) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sluice-gwtls-" + std::to_string(::getpid()) + "-" + std::string(TypeParam::name));
  fs::create_directories(dir);
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                          (dir / "gw.key").string() + " -out " + (dir / "gw.crt").string() +
                          " -days 2 -subj /CN=gw.test -addext subjectAltName=DNS:gw.test >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string crt = (dir / "gw.crt").string(), key = (dir / "gw.key").string();

  auto [lfd, where] = test::listen_loopback(16);
  config c = one_pool(proxy_mode::tcp, where);
  c.listeners[0].certs.push_back({crt, key});
  c.pools[0].tls = true;
  c.pools[0].ca = crt;  // the upstream shows the same certificate
  c.pools[0].sni = "gw.test";
  ASSERT_TRUE(validate(c));
  ASSERT_TRUE(check_tls_files(c));
  running_gateway<TypeParam> gw(std::move(c));
  ASSERT_FALSE(gw.at().empty());

  const std::string payload = test::random_bytes(300000, 44);
  const std::string answer = test::random_bytes(200000, 45);
  // The upstream: accepts once the client's handshake is done (the gateway
  // connects only then), reads the payload, answers.
  std::string upstream_got;
  std::thread upstream([&] {
    if ((test::wait_for(lfd, POLLIN, 10s) & POLLIN) == 0) return;
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    {
      ssl_end up(true, fd, crt, key, {});
      if (SSL_accept(up.ssl) == 1) {
        upstream_got = up.read_exactly(payload.size());
        (void)up.write_all(answer);
        SSL_shutdown(up.ssl);
      }
    }
    ::close(fd);
  });
  int client = test::connect_to(gw.at());
  ASSERT_GE(client, 0);
  std::string reply;
  {
    ssl_end down(false, client, {}, {}, crt);
    ASSERT_EQ(SSL_connect(down.ssl), 1) << "the gateway's certificate verifies";
    // The upstream reads all of it before it answers: no need to read meanwhile.
    ASSERT_TRUE(down.write_all(payload));
    reply = down.read_exactly(answer.size());
    SSL_shutdown(down.ssl);
  }
  upstream.join();
  EXPECT_TRUE(upstream_got == payload) << "got " << upstream_got.size() << " of " << payload.size();
  EXPECT_TRUE(reply == answer) << "got " << reply.size() << " of " << answer.size();
  ::close(client);
  ::close(lfd);
  fs::remove_all(dir);
}

#endif

}  // namespace
}  // namespace sluice::gateway
