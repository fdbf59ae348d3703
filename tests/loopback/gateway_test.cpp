// sluice-gateway as a process, in front of real upstreams (sluice-echo and
// sluice-httpd processes, or plain kernel sockets the test drives itself so
// that it sees exactly what the gateway sends): byte-exact tcp proxying with
// half-close and resets, an upstream killed mid-stream, a slow reader
// (gateway memory measured), HTTP routing, header rewriting, keep-alive and
// pipelining, streamed bodies, 400/502/504, health-check ejection and
// recovery, configuration errors, metrics and a graceful stop.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <tuple>

#include "http_client.hpp"
#include "net.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::http_client;
using test::http_reply;

// A child app announcing "... on HOST:PORT ..." on its first line(s).
struct app {
  std::unique_ptr<test::child> p;
  std::vector<endpoint> at;  // one per announce line read
  app(const char* env, std::vector<std::string> flags, int lines = 1) {
    std::vector<std::string> argv = {test::app_path(env)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    p = std::make_unique<test::child>(argv);
    for (int i = 0; i < lines; ++i) {
      std::string line = p->read_line();
      endpoint ep = test::parse_announced(line);
      EXPECT_FALSE(ep.empty()) << "announce line: '" << line << "' stderr: " << p->stderr_text();
      at.push_back(ep);
    }
  }
  app(app&&) = default;
  ~app() {
    if (p) stop();
  }
  int stop() {
    p->signal(SIGTERM);
    int rc = p->wait(20s);
    EXPECT_EQ(rc, 0) << p->stderr_text();
    p.reset();
    return rc;
  }
};

app echo_server() { return app("SLUICE_ECHO", {"--listen=127.0.0.1:0", "--cores=1"}); }

std::string list(const std::vector<endpoint>& eps) {
  std::string s;
  for (const auto& e : eps) s += (s.empty() ? "" : ",") + e.to_string();
  return s;
}

// The gateway: first the listener line, then (with --admin) the admin line.
app gateway(std::vector<std::string> flags, bool admin = false) {
  flags.insert(flags.begin(), "--listen=127.0.0.1:0");
  if (admin) flags.push_back("--admin=127.0.0.1:0");
  return app("SLUICE_GATEWAY", flags, admin ? 2 : 1);
}

int accept_within(int lfd, std::chrono::milliseconds t = 5s) {
  if ((test::wait_for(lfd, POLLIN, t) & POLLIN) == 0) return -1;
  return ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
}

// Reads an HTTP head (through the blank line) from a plain socket.
std::string read_head(int fd, std::chrono::milliseconds t = 5s) {
  std::string head;
  auto deadline = std::chrono::steady_clock::now() + t;
  while (head.find("\r\n\r\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    std::string more = test::read_n(fd, 1, left);
    if (more.empty()) break;
    head += more;
  }
  return head;
}

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// One metric's value from /metrics (the first line that starts with `name_and_labels`).
std::optional<double> metric(const endpoint& admin, const std::string& name_and_labels) {
  http_client c(admin);
  c.send(test::get_request("/metrics"));
  auto r = c.read_reply();
  if (!r || r->status != 200) return std::nullopt;
  auto at = r->body.find("\n" + name_and_labels + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::stod(r->body.substr(at + name_and_labels.size() + 2));
}

// Waits (polling the admin endpoint, with a deadline) until `pred` holds.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    test::wait_for(-1, 0, 20ms);  // a short poll() on nothing: paces the checks
  }
  return pred();
}

// A fresh directory under /tmp, removed when the test binary exits.
std::string temp_dir() {
  struct cleanup {
    std::vector<std::string> dirs;
    ~cleanup() {
      for (const auto& d : dirs) std::filesystem::remove_all(d);
    }
  };
  static cleanup made;
  char tmpl[] = "/tmp/sluice-gw-XXXXXX";
  made.dirs.emplace_back(::mkdtemp(tmpl));
  return made.dirs.back();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// ---- tcp -------------------------------------------------------------------------

TEST(gateway_tcp, random_payloads_in_random_chunks_are_byte_exact_with_half_close) {
  app up = echo_server();
  app gw = gateway({"--mode=tcp", "--upstream=" + list(up.at), "--cores=2"});
  std::mt19937_64 rng(7);
  std::vector<test::stream_client> clients(200);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].fd = test::connect_nonblocking(gw.at[0]);
    ASSERT_GE(clients[i].fd, 0);
    const std::size_t n = i % 10 == 0 ? 1 + rng() % (1 << 20) : 1 + rng() % 4096;
    clients[i].payload = test::random_bytes(n, i);
  }
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(clients[i].eof) << i;
    EXPECT_EQ(clients[i].got.size(), clients[i].payload.size()) << i;
    EXPECT_TRUE(clients[i].got == clients[i].payload) << "client " << i << ": bytes differ";
    ::close(clients[i].fd);
  }
}

// Issue 17: the gateway's listeners and upstreams may be IPv6, in any
// mix with IPv4. Each case moves 40 streams of random bytes (some over a
// megabyte) through the gateway and back from an echo upstream, byte-exact.
void proxy_both_families(const std::string& listen, const std::string& upstream_listen, int expect_client_family,
                         int expect_upstream_family) {
  SCOPED_TRACE("gateway on " + listen + ", upstream on " + upstream_listen);
  app up("SLUICE_ECHO", {"--listen=" + upstream_listen, "--cores=1"});
  ASSERT_EQ(up.at[0].family(), expect_upstream_family) << "the echo announces its own address";
  app gw("SLUICE_GATEWAY", {"--listen=" + listen, "--mode=tcp", "--upstream=" + list(up.at), "--cores=2"});
  ASSERT_EQ(gw.at[0].family(), expect_client_family);
  std::mt19937_64 rng(17);
  std::vector<test::stream_client> clients(40);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].fd = test::connect_nonblocking(gw.at[0]);
    ASSERT_GE(clients[i].fd, 0);
    const std::size_t n = i % 10 == 0 ? 1 + rng() % (1 << 20) : 1 + rng() % 4096;
    clients[i].payload = test::random_bytes(n, i + 1000);
  }
  ASSERT_TRUE(test::drive(clients, rng, 60s));
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(clients[i].eof) << i;
    EXPECT_TRUE(clients[i].got == clients[i].payload) << "client " << i << ": bytes differ";
    ::close(clients[i].fd);
  }
}

TEST(gateway_tcp, ipv6_listener_and_ipv6_upstream) {
  proxy_both_families("[::1]:0", "[::1]:0", AF_INET6, AF_INET6);
}

TEST(gateway_tcp, ipv4_clients_to_an_ipv6_upstream) {
  proxy_both_families("127.0.0.1:0", "[::1]:0", AF_INET, AF_INET6);
}

TEST(gateway_tcp, ipv6_clients_to_an_ipv4_upstream) {
  proxy_both_families("[::1]:0", "127.0.0.1:0", AF_INET6, AF_INET);
}

TEST(gateway_http, routes_ipv6_clients_to_an_ipv6_upstream) {
  app up("SLUICE_HTTPD", {"--listen=[::1]:0", "--cores=1"});
  ASSERT_TRUE(up.at[0].is_v6());
  app gw("SLUICE_GATEWAY", {"--listen=[::1]:0", "--mode=http", "--upstream=" + list(up.at), "--cores=1"});
  ASSERT_TRUE(gw.at[0].is_v6());
  http_client c(gw.at[0]);
  for (int i = 0; i < 3; ++i) {  // keep-alive: three requests on one connection
    const std::string body = "over-ipv6-" + std::to_string(i);
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n" + body));
    auto r = c.read_reply();
    ASSERT_TRUE(r) << "a reply through the gateway over IPv6";
    EXPECT_EQ(r->status, 200) << "the gateway reached its IPv6 upstream";
    EXPECT_EQ(r->body, body);
  }
}

TEST(gateway_tcp, half_close_travels_both_ways) {
  auto [lfd, where] = test::listen_loopback(16);
  app gw = gateway({"--mode=tcp", "--upstream=" + where.to_string(), "--health-check=none"});
  int client = test::connect_to(gw.at[0]);
  ASSERT_GE(client, 0);
  int upstream = accept_within(lfd);
  ASSERT_GE(upstream, 0) << "the gateway connects when a client arrives";
  // The upstream says its piece and half-closes: the client reads it, then EOF...
  ASSERT_TRUE(test::send_all(upstream, "from upstream"));
  ::shutdown(upstream, SHUT_WR);
  std::string got;
  EXPECT_TRUE(test::read_to_eof(client, got));
  EXPECT_EQ(got, "from upstream");
  // ...and may still send, which the upstream still receives.
  ASSERT_TRUE(test::send_all(client, "from client"));
  EXPECT_EQ(test::read_n(upstream, 11), "from client");
  ::shutdown(client, SHUT_WR);
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(upstream, rest)) << "the client's FIN reaches the upstream";
  EXPECT_EQ(rest, "");
  ::close(client);
  ::close(upstream);
  ::close(lfd);
}

TEST(gateway_tcp, resets_travel_both_ways) {
  auto [lfd, where] = test::listen_loopback(16);
  app gw = gateway({"--mode=tcp", "--upstream=" + where.to_string(), "--health-check=none"});
  auto reset_seen = [](int fd) {
    char b[64];
    for (;;) {
      if ((test::wait_for(fd, POLLIN, 5s) & (POLLIN | POLLHUP | POLLERR)) == 0) return false;
      ssize_t r = ::recv(fd, b, sizeof b, 0);
      if (r < 0) return errno == ECONNRESET;
      if (r == 0) return false;  // a clean FIN is not a reset
    }
  };
  {
    int client = test::connect_to(gw.at[0]);
    int upstream = accept_within(lfd);
    ASSERT_GE(upstream, 0);
    // Once a byte went through, the gateway has seen the upstream open (a
    // reset before that is a failed connect to it, which a retry handles).
    ASSERT_TRUE(test::send_all(client, "x"));
    EXPECT_EQ(test::read_n(upstream, 1), "x");
    test::close_with_reset(upstream);
    EXPECT_TRUE(reset_seen(client)) << "the upstream's reset reaches the client as a reset";
    ::close(client);
  }
  {
    int client = test::connect_to(gw.at[0]);
    int upstream = accept_within(lfd);
    ASSERT_GE(upstream, 0);
    ASSERT_TRUE(test::send_all(client, "x"));
    EXPECT_EQ(test::read_n(upstream, 1), "x");
    test::close_with_reset(client);
    EXPECT_TRUE(reset_seen(upstream)) << "the client's reset reaches the upstream as a reset";
    ::close(upstream);
  }
  ::close(lfd);
}

TEST(gateway_tcp, an_upstream_killed_mid_stream_never_gives_wrong_bytes_and_new_connections_fail_over) {
  app a = echo_server();
  auto b = std::make_unique<app>(echo_server());
  app gw = gateway({"--mode=tcp", "--upstream=" + a.at[0].to_string() + "," + b->at[0].to_string(),
                    "--health-check=none", "--cores=1"});
  // 20 streams, half through each upstream (round-robin), each mid-way.
  std::vector<int> fds;
  std::vector<std::string> sent(20), got(20);
  for (int i = 0; i < 20; ++i) {
    fds.push_back(test::connect_to(gw.at[0]));
    sent[i] = test::random_bytes(100000, 100 + i);
    ASSERT_TRUE(test::send_all(fds[i], std::string_view(sent[i]).substr(0, 50000)));
    got[i] = test::read_n(fds[i], 50000);
    ASSERT_EQ(got[i], sent[i].substr(0, 50000));
  }
  b->p->signal(SIGKILL);
  EXPECT_EQ(b->p->wait(), 128 + SIGKILL);
  b->p.reset();
  int cut = 0;
  for (int i = 0; i < 20; ++i) {
    (void)test::send_all(fds[i], std::string_view(sent[i]).substr(50000));
    ::shutdown(fds[i], SHUT_WR);
    std::string rest;
    const bool eof = test::read_to_eof(fds[i], rest);
    got[i] += rest;
    // Whatever came back is what was sent, in order: never a wrong byte.
    EXPECT_EQ(got[i], sent[i].substr(0, got[i].size())) << "stream " << i;
    if (got[i].size() < sent[i].size()) {
      ++cut;
    } else {
      EXPECT_TRUE(eof) << i;
    }
    ::close(fds[i]);
  }
  EXPECT_EQ(cut, 10) << "the streams through the killed upstream end early, the others complete";
  // New connections: the dead upstream refuses, the gateway tries the other.
  std::mt19937_64 rng(3);
  std::vector<test::stream_client> fresh(20);
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    fresh[i].fd = test::connect_nonblocking(gw.at[0]);
    fresh[i].payload = test::random_bytes(1000, 500 + i);
  }
  ASSERT_TRUE(test::drive(fresh, rng, 30s));
  for (auto& c : fresh) {
    EXPECT_TRUE(c.got == c.payload) << "fails over to the live upstream";
    ::close(c.fd);
  }
}

TEST(gateway_tcp, a_slow_reader_keeps_gateway_memory_bounded) {
  auto [lfd, where] = test::listen_loopback(16);
  app gw = gateway({"--mode=tcp", "--upstream=" + where.to_string(), "--health-check=none", "--cores=1"});
  int client = test::connect_to(gw.at[0]);
  int upstream = accept_within(lfd);
  ASSERT_GE(upstream, 0);
  test::set_nonblocking(upstream);
  const long before = rss_kib(gw.p->pid());
  // The upstream writes as fast as it can; the client reads nothing. The
  // upstream must be made to wait (backpressure through the gateway).
  std::string chunk = test::random_bytes(65536, 1);
  std::size_t written = 0;
  for (;;) {
    if ((test::wait_for(upstream, POLLOUT, 500ms) & POLLOUT) == 0) break;  // stalled
    ssize_t w = ::send(upstream, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (w > 0) written += static_cast<std::size_t>(w);
    ASSERT_LT(written, std::size_t{512} << 20) << "never stalled: no backpressure";
  }
  const long after = rss_kib(gw.p->pid());
  EXPECT_GT(written, std::size_t{1} << 20);
  // Two kernel socket buffers on each side hold most of it; the gateway
  // holds at most its watermarks and input limit per side (~0.5 MiB).
  EXPECT_LT(after - before, 8 * 1024) << "gateway RSS grew by " << (after - before) << " KiB for " << written
                                      << " bytes pushed at a reader that does not read";
  // Now the client reads: every byte arrives, in order.
  ::shutdown(upstream, SHUT_WR);
  std::string got;
  EXPECT_TRUE(test::read_to_eof(client, got, 30s));
  ASSERT_EQ(got.size(), written);
  for (std::size_t off = 0; off < got.size(); off += chunk.size()) {
    const std::size_t n = std::min(chunk.size(), got.size() - off);
    if (got.compare(off, n, chunk, 0, n) != 0) {
      ADD_FAILURE() << "bytes differ in the chunk at " << off;
      break;
    }
  }
  ::close(client);
  ::close(upstream);
  ::close(lfd);
}

// ---- http --------------------------------------------------------------------------

TEST(gateway_http, rewrites_hop_by_hop_fields_adds_x_forwarded_for_and_reuses_upstream_connections) {
  auto [lfd, where] = test::listen_loopback(16);
  app gw = gateway({"--upstream=" + where.to_string(), "--health-check=none", "--cores=1"});
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send("GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Secret\r\n"
                     "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.1.2.3\r\nX-Other: kept\r\n\r\n"));
  int upstream = accept_within(lfd);
  ASSERT_GE(upstream, 0);
  const std::string head = read_head(upstream);
  EXPECT_EQ(head.substr(0, 21), "GET /a?b=1 HTTP/1.1\r\n") << head;
  EXPECT_NE(head.find("Host: example.test\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Other: kept\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("X-Secret"), std::string::npos) << "named in Connection: hop-by-hop\n" << head;
  EXPECT_EQ(head.find("Keep-Alive"), std::string::npos) << head;
  EXPECT_EQ(head.find("Connection"), std::string::npos) << head;
  ASSERT_TRUE(test::send_all(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"
                                       "Keep-Alive: timeout=9\r\nX-Up: 1\r\n\r\nok"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(r->field("x-up"), "1");
  EXPECT_EQ(r->field("keep-alive"), "");
  // The next request, even from another client, goes over the same
  // upstream connection: no new connection reaches the upstream.
  http_client c2(gw.at[0]);
  ASSERT_TRUE(c2.send(test::get_request("/second")));
  const std::string head2 = read_head(upstream);
  EXPECT_EQ(head2.substr(0, 12), "GET /second ") << head2;
  EXPECT_EQ(test::wait_for(lfd, POLLIN, 100ms) & POLLIN, 0) << "no second upstream connection";
  ASSERT_TRUE(test::send_all(upstream, "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\ntwo"));
  auto r2 = c2.read_reply();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 201);
  EXPECT_EQ(r2->body, "two");
  ::close(upstream);
  ::close(lfd);
}

TEST(gateway_http, pipelined_requests_are_answered_in_order) {
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=1"});
  http_client c(gw.at[0]);
  std::string pipeline;
  for (int i = 0; i < 100; ++i) {
    const std::string body = "request-" + std::to_string(i);
    pipeline += "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  ASSERT_TRUE(c.send(pipeline));
  for (int i = 0; i < 100; ++i) {
    auto r = c.read_reply();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "request-" + std::to_string(i));
  }
}

TEST(gateway_http, large_and_chunked_bodies_stream_through_byte_exact) {
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1", "--max-body=16m"});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=1"});
  const std::string body = test::random_bytes(5 << 20, 9);
  {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    ASSERT_TRUE(c.send(body));
    auto r = c.read_reply(false, 30s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body == body) << "Content-Length body differs (" << r->body.size() << " bytes back)";
  }
  {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::mt19937_64 rng(5);
    for (std::size_t off = 0; off < body.size();) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 100000, body.size() - off);
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      ASSERT_TRUE(c.send(size) && c.send(std::string_view(body).substr(off, n)) && c.send("\r\n"));
      off += n;
    }
    ASSERT_TRUE(c.send("0\r\n\r\n"));
    auto r = c.read_reply(false, 30s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->body == body) << "chunked body differs (" << r->body.size() << " bytes back)";
  }
}

TEST(gateway_http, a_malformed_request_gets_400_and_others_are_not_affected) {
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=1"});
  http_client good(gw.at[0]);
  ASSERT_TRUE(good.send(test::get_request("/")));
  auto r = good.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\n\r\n" /* no Host */,
                          "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx"}) {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(bad));
    auto e = c.read_reply();
    ASSERT_TRUE(e) << bad;
    EXPECT_EQ(e->status, 400) << bad;
    EXPECT_TRUE(c.closed_by_server()) << "that connection closes";
  }
  ASSERT_TRUE(good.send(test::get_request("/")));
  r = good.read_reply();
  ASSERT_TRUE(r) << "the other connection is untouched";
  EXPECT_EQ(r->body, "Hello, World!");
}

TEST(gateway_http, no_upstream_is_502_and_a_silent_one_is_504) {
  auto [held, closed_port] = test::reserve_closed_port();
  {
    app gw = gateway({"--upstream=127.0.0.1:" + std::to_string(closed_port), "--health-check=none", "--retries=1"});
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/")));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
    ASSERT_TRUE(c.send(test::get_request("/"))) << "the client connection stays usable";
    r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
  }
  ::close(held);
  auto [lfd, where] = test::listen_loopback(16);
  {
    app gw = gateway({"--upstream=" + where.to_string(), "--health-check=none", "--response-timeout=300ms"});
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/")));
    int upstream = accept_within(lfd);
    ASSERT_GE(upstream, 0);
    EXPECT_FALSE(read_head(upstream).empty());
    auto r = c.read_reply(false, 5s);  // the upstream never answers
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504);
    ::close(upstream);
  }
  ::close(lfd);
}

TEST(gateway_http, an_upstream_failing_mid_response_resets_the_client) {
  auto [lfd, where] = test::listen_loopback(16);
  app gw = gateway({"--upstream=" + where.to_string(), "--health-check=none"});
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send(test::get_request("/")));
  int upstream = accept_within(lfd);
  ASSERT_GE(upstream, 0);
  (void)read_head(upstream);
  ASSERT_TRUE(test::send_all(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b"));
  test::close_with_reset(upstream);
  auto r = c.read_reply(false, 5s);
  EXPECT_FALSE(r) << "a truncated body must never look complete";
  EXPECT_TRUE(c.closed_by_server());
  ::close(lfd);
}

// ---- issue 15: the proxy never forwards framing or Host as received ----------------

// A raw upstream the test plays: accepts the gateway's connections and sees
// exactly the bytes it sends.
struct raw_upstream {
  int lfd = -1;
  endpoint where;
  int conn = -1;
  raw_upstream() { std::tie(lfd, where) = test::listen_loopback(16); }
  ~raw_upstream() {
    if (conn >= 0) ::close(conn);
    ::close(lfd);
  }
  // The connection the next request comes on: the current one (a reused
  // keep-alive connection), or a new one after drop().
  bool next_request() {
    if (conn < 0) conn = accept_within(lfd);
    return conn >= 0;
  }
  // The gateway gave up this connection (it aborts an upstream connection
  // whose exchange failed): what it still holds is stale.
  void drop() {
    if (conn >= 0) ::close(conn);
    conn = -1;
  }
};

// One normal exchange through the gateway, served by `up`: the check that a
// session and its loop carry nothing over from whatever went before.
void expect_normal_exchange(const endpoint& gw, raw_upstream& up, const std::string& what) {
  http_client c(gw);
  ASSERT_TRUE(c.send(test::get_request("/normal"))) << what;
  ASSERT_TRUE(up.next_request()) << what;
  const std::string head = read_head(up.conn);
  ASSERT_EQ(head.substr(0, 12), "GET /normal ") << what << "\n" << head;
  ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nnormal"));
  auto r = c.read_reply();
  ASSERT_TRUE(r) << "after " << what;
  EXPECT_EQ(r->status, 200) << "after " << what;
  EXPECT_EQ(r->body, "normal") << "after " << what;
}

// Item 1, the reported repro: Connection may not name the framing away. The
// upstream gets the body as a body (Content-Length written from our parse),
// not as the start of a second request; and the next client is served.
TEST(gateway_http, connection_cannot_name_away_framing_or_host) {
  raw_upstream up;
  app gw = gateway({"--upstream=" + up.where.to_string(), "--health-check=none", "--cores=1"});
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nX-Ignore: ";
  ASSERT_EQ(smuggled.size(), 34u);
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nConnection: Host, X-Two\r\n"
                     "X-Two: 2\r\nContent-Length: 34\r\n\r\n" + smuggled));
  ASSERT_TRUE(up.next_request());
  const std::string head = read_head(up.conn);
  EXPECT_NE(head.find("\r\nContent-Length: 34\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nHost: a\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("X-Two"), std::string::npos) << "named by the second Connection line\n" << head;
  EXPECT_EQ(test::read_n(up.conn, 34), smuggled) << "the body, as a body";
  ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\n"
                                      "Content-Length: 4\r\n\r\nbody"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->field("content-length"), "4") << "the response's framing is written by us too\n" << r->head;
  EXPECT_EQ(r->body, "body");
  expect_normal_exchange(gw.at[0], up, "a smuggling attempt");
}

// The repro against sluice-httpd: the next client gets 200, not the
// smuggled request's 404.
TEST(gateway_http, connection_content_length_is_not_smuggling_against_httpd) {
  app httpd("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(httpd.at), "--cores=1"});
  {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 34\r\n\r\n"
                       "GET /smuggled HTTP/1.1\r\nX-Ignore: "));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
  }
  for (int i = 0; i < 3; ++i) {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/")));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->body, "Hello, World!");
  }
}

// Item 2: however a session ends, the next one on that loop starts clean.
TEST(gateway_http, every_way_a_session_ends_is_followed_by_a_normal_exchange) {
  raw_upstream up;
  app gw = gateway({"--upstream=" + up.where.to_string(), "--health-check=none", "--cores=1",
                    "--response-timeout=300ms", "--max-fails=1000"});
  expect_normal_exchange(gw.at[0], up, "nothing (the first exchange)");
  expect_normal_exchange(gw.at[0], up, "a complete exchange");
  {  // the client leaves in the middle of its request body
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part"));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    EXPECT_EQ(test::read_n(up.conn, 9), "only part");
  }
  up.drop();
  expect_normal_exchange(gw.at[0], up, "a client gone mid-request");
  for (int i = 0; i < 5; ++i) {  // the client leaves in the middle of the response body
    {
      http_client c(gw.at[0]);
      ASSERT_TRUE(c.send(test::get_request("/download")));
      ASSERT_TRUE(up.next_request());
      (void)read_head(up.conn);
      ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x')));
      ASSERT_TRUE(c.read_reply(false, 200ms) == std::nullopt);  // the head and some body arrive; then it leaves
    }
    up.drop();
    expect_normal_exchange(gw.at[0], up, "a client gone mid-response");
  }
  for (const std::string part : {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome",
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nsome"}) {
    // The upstream dies in the middle of the response body.
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/dies")));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    ASSERT_TRUE(test::send_all(up.conn, part));
    test::close_with_reset(up.conn);
    up.conn = -1;
    EXPECT_FALSE(c.read_reply(false, 2s)) << "never a truncated response taken as whole";
    expect_normal_exchange(gw.at[0], up, "an upstream gone mid-response: " + part);
  }
  {  // the upstream dies before its head is complete
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/dies")));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Le"));
    test::close_with_reset(up.conn);
    up.conn = -1;
    // A GET that came on a pooled connection is retried once on a fresh one
    // (the stale keep-alive case); otherwise it is a 502.
    if ((test::wait_for(up.lfd, POLLIN, 1s) & POLLIN) != 0) {
      ASSERT_TRUE(up.next_request());
      EXPECT_EQ(read_head(up.conn).substr(0, 10), "GET /dies ");
      ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry"));
      auto r = c.read_reply();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->body, "retry");
    } else {
      auto r = c.read_reply();
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 502);
    }
    expect_normal_exchange(gw.at[0], up, "an upstream gone before its head was complete");
  }
  {  // the upstream does not answer in time
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/slow")));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    auto r = c.read_reply(false, 5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 504);
    // The late answer must not reach the next exchange.
    (void)test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
  }
  up.drop();
  expect_normal_exchange(gw.at[0], up, "a response timeout");
}

// Item 6: an absolute-form target's host replaces Host, and goes upstream in
// origin form; field names with '_' are dropped unless allowed.
TEST(gateway_http, absolute_form_host_wins_and_underscore_names_are_dropped) {
  for (bool allow : {false, true}) {
    raw_upstream up;
    std::vector<std::string> flags = {"--upstream=" + up.where.to_string(), "--health-check=none", "--cores=1"};
    if (allow) flags.push_back("--allow-underscores");
    app gw = gateway(flags);
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send("GET http://real.example:8080/p?q=1 HTTP/1.1\r\nHost: fake.example\r\n"
                       "X_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"));
    ASSERT_TRUE(up.next_request());
    const std::string head = read_head(up.conn);
    EXPECT_EQ(head.substr(0, 20), "GET /p?q=1 HTTP/1.1\r") << head;
    EXPECT_NE(head.find("\r\nHost: real.example:8080\r\n"), std::string::npos) << head;
    EXPECT_EQ(head.find("fake.example"), std::string::npos) << head;
    EXPECT_NE(head.find("\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"), std::string::npos) << head;
    EXPECT_EQ(head.find("X_Forwarded_For") != std::string::npos, allow) << head;
    ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
}

// Items 5 and 6 through the gateway: refused with 400 (501 for an unknown
// coding) and the connection closed; then a normal request is served.
TEST(gateway_http, lenient_framing_targets_and_hosts_are_refused) {
  app httpd("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(httpd.at), "--cores=1"});
  const std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (auto [bad, want] : std::vector<std::pair<std::string, int>>{
           {chunked + "5;a\nb\r\nhello\r\n0\r\n\r\n", 400},
           {chunked + "5\r\nhelloXY0\r\n\r\n", 400},
           {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
           {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
           {"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /a\fb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
       }) {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(bad));
    auto r = c.read_reply();
    // The head may already have gone upstream when the framing breaks later:
    // then the client is refused or reset, and the upstream never sees a
    // complete request.
    if (r) {
      EXPECT_EQ(r->status, want) << bad;
    }
    EXPECT_TRUE(c.closed_by_server()) << bad;
  }
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send(test::get_request("/")));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
}

// Item 7: a response that is not well-formed is a 502; the forwarded ones
// are written in canonical form.
TEST(gateway_http, malformed_upstream_responses_are_502_and_good_ones_canonical) {
  raw_upstream up;
  app gw = gateway({"--upstream=" + up.where.to_string(), "--health-check=none", "--cores=1", "--max-fails=1000"});
  for (const std::string bad : {"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
                                "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok",
                                "HTTP/1.1 200 OK\r\nX(Y): a\r\nContent-Length: 2\r\n\r\nok",
                                "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok",
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"}) {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/")));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    ASSERT_TRUE(test::send_all(up.conn, bad));
    auto r = c.read_reply();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 502) << bad;
    up.drop();
  }
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send(test::get_request("/")));
  ASSERT_TRUE(up.next_request());
  (void)read_head(up.conn);
  ASSERT_TRUE(test::send_all(up.conn, "HTTP/1.1 200 Fine\r\nX-A:   spaced \t\r\nContent-Length: 0002\r\n\r\nok"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->head, "HTTP/1.1 200 Fine\r\nX-A: spaced\r\nContent-Length: 2");
  EXPECT_EQ(r->body, "ok");
  expect_normal_exchange(gw.at[0], up, "malformed responses");
}

// A chunked response is decoded and re-chunked for an HTTP/1.1 client, and
// sent until close to an HTTP/1.0 one (which cannot take chunked).
TEST(gateway_http, chunked_responses_are_rechunked_or_sent_until_close) {
  raw_upstream up;
  app gw = gateway({"--upstream=" + up.where.to_string(), "--health-check=none", "--cores=1"});
  const std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  {
    http_client c(gw.at[0]);
    ASSERT_TRUE(c.send(test::get_request("/")));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    ASSERT_TRUE(test::send_all(up.conn, response));
    const std::string got = read_head(c.fd());
    EXPECT_NE(got.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << got;
    std::string body;
    while (body.find("0\r\n\r\n") == std::string::npos) {
      std::string more = test::read_n(c.fd(), 1, 2s);
      if (more.empty()) break;
      body += more;
    }
    EXPECT_EQ(body, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") << "extensions and trailers are not forwarded";
  }
  {
    const int fd = test::connect_to(gw.at[0]);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(test::send_all(fd, "GET / HTTP/1.0\r\n\r\n"));
    ASSERT_TRUE(up.next_request());
    (void)read_head(up.conn);
    ASSERT_TRUE(test::send_all(up.conn, response));
    std::string got;
    EXPECT_TRUE(test::read_to_eof(fd, got));
    ::close(fd);
    EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
    EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos) << got;
    EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), "hello world") << got;
  }
}

// Slow clients on the proxy: a partial head gets 408 at the header timeout,
// a client that never asks a quiet close at the same time, and a keep-alive
// client between requests is not the header timeout's.
TEST(gateway_http, slow_clients_get_408_or_a_quiet_close_at_the_header_timeout) {
  app httpd("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(httpd.at), "--cores=1", "--header-timeout=300ms"});
  const int partial = test::connect_to(gw.at[0]);
  const int silent = test::connect_to(gw.at[0]);
  ASSERT_GE(partial, 0);
  ASSERT_GE(silent, 0);
  ASSERT_TRUE(test::send_all(partial, "GET / HTTP/1.1\r\nHost: slow\r\nX-a: "));
  http_client kept(gw.at[0]);
  ASSERT_TRUE(kept.send(test::get_request("/")));
  ASSERT_TRUE(kept.read_reply());
  std::string got;
  EXPECT_TRUE(test::read_to_eof(partial, got, 5s));
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 408") << got;
  got.clear();
  EXPECT_TRUE(test::read_to_eof(silent, got, 5s)) << "a client that never asks is closed too";
  EXPECT_EQ(got, "");
  ::close(partial);
  ::close(silent);
  EXPECT_EQ(test::wait_for(kept.fd(), POLLIN, 300ms), 0) << "a kept-alive client between requests stays";
  ASSERT_TRUE(kept.send(test::get_request("/")));
  auto r = kept.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "Hello, World!");
}

TEST(gateway_http, health_checks_eject_a_dead_upstream_and_bring_it_back) {
  const std::string root_a = temp_dir(), root_b = temp_dir();
  write_file(root_a + "/index.html", "A");
  write_file(root_b + "/index.html", "B");
  app a("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1", "--root=" + root_a});
  auto b = std::make_unique<app>("SLUICE_HTTPD", std::vector<std::string>{"--listen=127.0.0.1:0", "--cores=1", "--root=" + root_b});
  const endpoint b_at = b->at[0];
  app gw = gateway({"--upstream=" + a.at[0].to_string() + "," + b_at.to_string(), "--cores=1", "--health-check=http",
                    "--health-interval=100ms", "--health-timeout=200ms", "--fall=1", "--rise=2"},
                   true);
  const endpoint admin = gw.at[1];
  const std::string healthy_b = "sluice_gateway_upstream_healthy{loop=\"0\",pool=\"default\",upstream=\"" + b_at.to_string() + "\"}";
  auto answers = [&](int n) {
    std::string seen;
    http_client c(gw.at[0]);
    for (int i = 0; i < n; ++i) {
      c.send(test::get_request("/"));
      auto r = c.read_reply();
      if (!r || r->status != 200) return seen + "!";
      seen += r->body;
    }
    return seen;
  };
  EXPECT_EQ(answers(4), "ABAB");
  b->p->signal(SIGKILL);
  EXPECT_EQ(b->p->wait(), 128 + SIGKILL);
  b->p.reset();
  b.reset();
  ASSERT_TRUE(eventually([&] { return metric(admin, healthy_b) == 0.0; })) << "B is taken out";
  EXPECT_EQ(answers(6), "AAAAAA") << "no request goes to the dead one, none fails";
  EXPECT_GE(metric(admin, "sluice_gateway_upstream_health_checks_failed_total{loop=\"0\",pool=\"default\",upstream=\"" +
                              b_at.to_string() + "\"}")
                .value_or(0),
            1.0);
  // B comes back on the same port: after `rise` good checks it takes traffic.
  b = std::make_unique<app>("SLUICE_HTTPD", std::vector<std::string>{"--listen=" + b_at.to_string(), "--cores=1", "--root=" + root_b});
  ASSERT_TRUE(eventually([&] { return metric(admin, healthy_b) == 1.0; })) << "B is back";
  const std::string mixed = answers(4);
  EXPECT_NE(mixed.find('B'), std::string::npos) << mixed;
  EXPECT_EQ(mixed.find('!'), std::string::npos) << mixed;
}

TEST(gateway_http, routes_by_host_and_path_prefix_from_a_config_file) {
  const std::string root_a = temp_dir(), root_b = temp_dir();
  write_file(root_a + "/index.html", "A");
  ::mkdir((root_b + "/b").c_str(), 0755);
  write_file(root_b + "/index.html", "B");
  write_file(root_b + "/b/index.html", "B-path");
  app a("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1", "--root=" + root_a});
  app b("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1", "--root=" + root_b});
  const std::string conf = temp_dir() + "/gw.toml";
  write_file(conf, "admin = \"127.0.0.1:0\"\n"
                   "[[pool]]\nname = \"a\"\nupstreams = [\"" + a.at[0].to_string() + "\"]\n"
                   "[[pool]]\nname = \"b\"\nupstreams = [\"" + b.at[0].to_string() + "\"]\n"
                   "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"http\"\npool = \"a\"\n"
                   "[[listener.route]]\nhost = \"b.test\"\npool = \"b\"\n"
                   "[[listener.route]]\npath_prefix = \"/b/\"\npool = \"b\"\n");
  app gw("SLUICE_GATEWAY", {"--config=" + conf, "--cores=1"}, 2);
  auto get = [&](const std::string& path, const std::string& host) {
    http_client c(gw.at[0]);
    c.send("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    auto r = c.read_reply();
    if (!r) return std::string("(none)");
    return r->status == 200 ? r->body : std::to_string(r->status);
  };
  EXPECT_EQ(get("/", "a.test"), "A");
  EXPECT_EQ(get("/", "B.TEST:8080"), "B") << "host compared without port, case-insensitively";
  EXPECT_EQ(get("/b/", "a.test"), "B-path");
  EXPECT_EQ(get("/bx", "a.test"), "404") << "not under /b/: A, which has no /bx";
  auto m = metric(gw.at[1], "sluice_gateway_requests_total{loop=\"0\"}");
  EXPECT_EQ(m.value_or(-1), 4.0);
}

TEST(gateway_http, a_graceful_stop_finishes_requests_in_flight) {
  const std::string root = temp_dir();
  const std::string big = test::random_bytes(4 << 20, 11);
  write_file(root + "/big.bin", big);
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1", "--root=" + root});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=1"});
  http_client idle(gw.at[0]);
  idle.send(test::get_request("/"));
  ASSERT_TRUE(idle.read_reply());
  http_client c(gw.at[0]);
  ASSERT_TRUE(c.send(test::get_request("/big.bin")));
  // The download is under way (the first bytes are here), then SIGTERM.
  ASSERT_NE(test::wait_for(c.fd(), POLLIN, 5s) & POLLIN, 0);
  gw.p->signal(SIGTERM);
  EXPECT_TRUE(idle.closed_by_server(3s)) << "a connection between requests is closed at once";
  auto r = c.read_reply(false, 20s);
  ASSERT_TRUE(r) << "the request in flight completes";
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == big);
  EXPECT_TRUE(c.closed_by_server()) << "and then its connection closes";
  EXPECT_EQ(gw.p->wait(20s), 0) << gw.p->stderr_text();
  gw.p.reset();
}

// ---- configuration and admin -------------------------------------------------------------

TEST(gateway_config_errors, bad_configurations_exit_2_with_file_line_and_key) {
  const std::string conf = temp_dir() + "/bad.toml";
  write_file(conf, "[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\"]\nbalanse = \"round-robin\"\n"
                   "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"p\"\n");
  {
    test::child c({test::app_path("SLUICE_GATEWAY"), "--config=" + conf});
    EXPECT_EQ(c.wait(), 2);
    EXPECT_NE(c.stderr_text().find(conf + ":4: pool[0].balanse: unknown key"), std::string::npos) << c.stderr_text();
  }
  {
    test::child c({test::app_path("SLUICE_GATEWAY"), "--config=" + conf, "--upstream=127.0.0.1:1"});
    EXPECT_EQ(c.wait(), 2);
    EXPECT_NE(c.stderr_text().find("exclude each other"), std::string::npos) << c.stderr_text();
  }
  {
    test::child c({test::app_path("SLUICE_GATEWAY"), "--mode=tcp"});
    EXPECT_EQ(c.wait(), 2);
    EXPECT_NE(c.stderr_text().find("no upstream"), std::string::npos) << c.stderr_text();
  }
  {
    test::child c({test::app_path("SLUICE_GATEWAY"), "--upstream=127.0.0.1:1", "--lb=random"});
    EXPECT_EQ(c.wait(), 2);
    EXPECT_NE(c.stderr_text().find("--lb"), std::string::npos) << c.stderr_text();
  }
  {
    test::child c({test::app_path("SLUICE_GATEWAY"), "--upstream=127.0.0.1:1,127.0.0.1:2", "--check-config"});
    const std::string out = c.read_all();
    EXPECT_EQ(c.wait(), 0);
    EXPECT_NE(out.find("configuration OK"), std::string::npos) << out;
    EXPECT_NE(out.find("pool default (round-robin, health check tcp): 127.0.0.1:1 127.0.0.1:2"), std::string::npos) << out;
  }
}

TEST(gateway_admin, metrics_and_healthz) {
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=2"}, true);
  for (int i = 0; i < 10; ++i) {
    http_client c(gw.at[0]);
    c.send(test::get_request("/"));
    ASSERT_TRUE(c.read_reply());
  }
  http_client h(gw.at[1]);
  h.send(test::get_request("/healthz"));
  auto r = h.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  h.send(test::get_request("/metrics"));
  r = h.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->field("content-type").substr(0, 25), "text/plain; version=0.0.4");
  for (const char* name : {"sluice_gateway_connections{", "sluice_gateway_requests_total{", "sluice_gateway_responses_total{",
                           "sluice_gateway_upstream_healthy{", "sluice_gateway_upstream_failures_total{",
                           "sluice_gateway_request_duration_seconds_bucket{", "sluice_loop_busy_ratio{",
                           "sluice_loop_bytes_read_total{"}) {
    EXPECT_NE(r->body.find(name), std::string::npos) << name;
  }
  // Ten requests, counted across both loops; the histogram saw each.
  double requests = 0, latencies = 0;
  for (const char* loop : {"0", "1"}) {
    requests += metric(gw.at[1], std::string("sluice_gateway_requests_total{loop=\"") + loop + "\"}").value_or(0);
    latencies += metric(gw.at[1], std::string("sluice_gateway_request_duration_seconds_count{loop=\"") + loop + "\"}").value_or(0);
  }
  EXPECT_EQ(requests, 10.0);
  EXPECT_EQ(latencies, 10.0);
}

// Issue 15, item 8: the admin endpoint had no header timeout and answered
// any method. Now it takes GET and HEAD only (405 with Allow), small
// requests, and a request must arrive within the header timeout (408 and
// close; a quiet close for a connection that asks nothing).
TEST(gateway_admin, regression_slow_clients_get_408_and_only_get_and_head_are_answered) {
  app up("SLUICE_HTTPD", {"--listen=127.0.0.1:0", "--cores=1"});
  app gw = gateway({"--upstream=" + list(up.at), "--cores=1", "--header-timeout=300ms", "--health-check=none"}, true);
  const endpoint admin = gw.at[1];
  const auto begin = std::chrono::steady_clock::now();
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(test::connect_to(admin));
    ASSERT_GE(slow.back(), 0);
    ASSERT_TRUE(test::send_all(slow.back(), "GET /metrics HTTP/1.1\r\nHost: a\r\n"));
  }
  int silent = test::connect_to(admin);
  ASSERT_GE(silent, 0);
  for (int fd : slow) {
    std::string got;
    EXPECT_TRUE(test::read_to_eof(fd, got, 5s)) << "closed by the server";
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 408") << got;
    ::close(fd);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 250ms) << "not before the timeout";
  std::string none;
  EXPECT_TRUE(test::read_to_eof(silent, none, 5s));
  EXPECT_EQ(none, "");
  ::close(silent);

  http_client c(admin);
  c.send("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->field("allow"), "GET, HEAD");
  c.send("DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  c.send("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  r = c.read_reply(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->field("content-length"), "3");
  EXPECT_EQ(r->body, "");
  c.send(test::get_request("/healthz"));
  r = c.read_reply();
  ASSERT_TRUE(r) << "the connection lives on after the 405s and the HEAD";
  EXPECT_EQ(r->body, "ok\n");

  // Small requests only: a body is 413, a long head 431; each closes.
  http_client b(admin);
  b.send("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  r = b.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(b.closed_by_server());
  http_client h(admin);
  h.send(test::get_request("/metrics", "X-Big: " + std::string(9000, 'x') + "\r\n"));
  r = h.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(h.closed_by_server());
}

// Issue 15, item 3 from a file: limits.max_headers = 4294967296 passed
// --check-config, then aborted the process at the first connection.
TEST(gateway_config_errors, regression_a_huge_limit_in_the_file_is_refused_by_check_config) {
  const std::string conf = temp_dir() + "/big.toml";
  write_file(conf, "[limits]\nmax_headers = 4294967296\n[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\"]\n"
                   "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"p\"\n");
  for (bool check : {true, false}) {
    std::vector<std::string> argv = {test::app_path("SLUICE_GATEWAY"), "--config=" + conf};
    if (check) argv.push_back("--check-config");
    test::child c(argv);
    EXPECT_EQ(c.wait(), 2);
    const std::string err = c.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(conf + ":2: limits.max_headers: 4294967296 is out of range (1 to 1000)"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace sluice
