// sluice-httpd as a process, driven by real clients: curl and wrk, and raw
// sockets (tests/support/http_client) for what curl will not send: malformed
// requests, pipelines, bodies cut anywhere, requests over the limits, paths
// that try to leave --root.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <memory>

#include "http_client.hpp"
#include "net.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::http_client;
using test::http_reply;

const std::string hello = "Hello, World!";

// sluice-httpd on an ephemeral port.
struct httpd {
  std::unique_ptr<test::child> p;
  endpoint at;
  explicit httpd(std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {test::app_path("SLUICE_HTTPD"), "--listen=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    p = std::make_unique<test::child>(argv);
    std::string line = p->read_line();
    at = test::parse_announced(line);
    EXPECT_FALSE(at.empty()) << "announce line: '" << line << "' stderr: " << p->stderr_text();
    EXPECT_NE(line.find("sluice-httpd: HTTP on"), std::string::npos) << line;
  }
  ~httpd() {
    p->signal(SIGINT);
    EXPECT_EQ(p->wait(), 0) << p->stderr_text();
  }
  std::string url(const std::string& path) const { return "http://" + at.to_string() + path; }
};

// Runs a tool (curl, wrk) and returns its stdout.
std::string run(std::vector<std::string> argv, int* exit_code = nullptr) {
  test::child c(std::move(argv));
  std::string out = c.read_all(30s);
  int rc = c.wait(30s);
  if (exit_code != nullptr) *exit_code = rc;
  return out;
}

bool have(const char* tool) { return ::access(tool, X_OK) == 0; }

void expect_hello(const std::optional<http_reply>& r) {
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, hello);
  EXPECT_EQ(r->field("content-type"), "text/plain");
}

TEST(httpd, curl_gets_hello_world) {
  if (!have("/usr/bin/curl")) GTEST_SKIP() << "curl is not installed (build/install-deps.sh installs it)";
  httpd s;
  int rc = -1;
  std::string out = run({"/usr/bin/curl", "-s", "-i", s.url("/")}, &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Length: 13\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Content-Type: text/plain\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - hello.size()), hello);
}

TEST(httpd, keep_alive_and_deep_pipelining) {
  httpd s;
  http_client c(s.at);
  std::string many;
  for (int i = 0; i < 200; ++i) many += test::get_request("/");
  ASSERT_TRUE(c.send(many)) << "200 requests in one write";
  for (int i = 0; i < 200; ++i) {
    SCOPED_TRACE(i);
    expect_hello(c.read_reply());
  }
  ASSERT_TRUE(c.send(test::get_request("/")));
  expect_hello(c.read_reply());
  EXPECT_FALSE(c.closed_by_server(200ms)) << "keep-alive: the connection stays open";
}

TEST(httpd, pipelined_requests_sent_byte_by_byte) {
  httpd s;
  http_client c(s.at);
  const std::string three = test::get_request("/") + test::get_request("/missing") + test::get_request("/");
  for (char ch : three) ASSERT_TRUE(c.send(std::string(1, ch)));
  expect_hello(c.read_reply());
  auto missing = c.read_reply();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  expect_hello(c.read_reply());
}

TEST(httpd, head_has_headers_and_no_body) {
  httpd s;
  http_client c(s.at);
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + test::get_request("/")));
  auto head = c.read_reply(/*head_only=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->field("content-length"), "13");
  {
    SCOPED_TRACE("no body bytes came between the two responses");
    expect_hello(c.read_reply());
  }
}

TEST(httpd, content_length_body_larger_than_the_input_limit_is_echoed) {
  httpd s({"--max-body=2m"});
  http_client c(s.at);
  const std::string body = test::random_bytes(600 * 1024, 7);  // more than --max-input (256k)
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  ASSERT_TRUE(c.send(body));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == body) << "echoed body differs (" << r->body.size() << " bytes)";
}

TEST(httpd, chunked_body_cut_into_many_writes_is_echoed) {
  httpd s;
  http_client c(s.at);
  const std::string body = test::random_bytes(5000, 9);
  std::string req = "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (std::size_t at = 0, n = 1; at < body.size(); at += n, n = n * 2 % 997 + 1) {
    const std::string piece = body.substr(at, n);
    char size[16];
    std::snprintf(size, sizeof size, "%zx", piece.size());
    req += std::string(size) + (n % 3 == 0 ? ";ext=1" : "") + "\r\n" + piece + "\r\n";
  }
  req += "0\r\nX-Trailer: yes\r\n\r\n";
  for (std::size_t at = 0; at < req.size(); at += 333) ASSERT_TRUE(c.send(req.substr(at, 333)));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body == body);
  ASSERT_TRUE(c.send(test::get_request("/")));
  {
    SCOPED_TRACE("the connection goes on after a chunked request");
    expect_hello(c.read_reply());
  }
}

TEST(httpd, curl_posts_chunked_and_content_length_bodies) {
  if (!have("/usr/bin/curl")) GTEST_SKIP() << "curl is not installed";
  httpd s;
  char dir[] = "/tmp/sluice-httpd-post-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/body.bin";
  const std::string body = test::random_bytes(100000, 3);
  std::ofstream(file, std::ios::binary) << body;
  for (bool chunked : {false, true}) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--data-binary", "@" + file, s.url("/echo")};
    if (chunked) argv.insert(argv.begin() + 1, {"-H", "Transfer-Encoding: chunked"});
    int rc = -1;
    std::string out = run(argv, &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_TRUE(out == body) << (chunked ? "chunked" : "Content-Length") << ": " << out.size() << " bytes back";
  }
  std::remove(file.c_str());
  ::rmdir(dir);
}

TEST(httpd, expect_100_continue) {
  httpd s;
  http_client c(s.at);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.read_reply();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100) << "the server asks for the body";
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

TEST(httpd, http10_and_connection_close) {
  httpd s;
  {
    http_client c(s.at);
    ASSERT_TRUE(c.send("GET / HTTP/1.0\r\n\r\n"));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, hello);
    EXPECT_EQ(r->field("connection"), "close");
    EXPECT_TRUE(c.closed_by_server()) << "HTTP/1.0 without keep-alive: closed after the response";
  }
  {
    http_client c(s.at);
    ASSERT_TRUE(c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"));
    auto first = c.read_reply();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->field("connection"), "keep-alive");
    auto second = c.read_reply();
    ASSERT_TRUE(second);
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    http_client c(s.at);
    ASSERT_TRUE(c.send(test::get_request("/", "Connection: close\r\n") + test::get_request("/")));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->field("connection"), "close");
    EXPECT_TRUE(c.closed_by_server()) << "the request after Connection: close is not answered";
  }
}

// Sends `request` on a fresh connection and expects `status`, then the close.
void expect_refused(const endpoint& at, const std::string& request, int status) {
  http_client c(at);
  ASSERT_TRUE(c.send(request));
  auto r = c.read_reply();
  ASSERT_TRUE(r) << "no response to: " << request.substr(0, 80);
  EXPECT_EQ(r->status, status) << request.substr(0, 80);
  EXPECT_EQ(r->field("connection"), "close");
  EXPECT_TRUE(c.closed_by_server()) << "a refused request closes its connection";
}

TEST(httpd, malformed_requests_get_400_and_close_only_their_connection) {
  httpd s;
  http_client bystander(s.at);
  ASSERT_TRUE(bystander.send(test::get_request("/")));
  expect_hello(bystander.read_reply());
  expect_refused(s.at, "NOT HTTP AT ALL\r\n\r\n", 400);
  expect_refused(s.at, "GET / HTTP/1.1\r\n\r\n", 400);  // no Host
  expect_refused(s.at, "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 400);
  expect_refused(s.at, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
  expect_refused(s.at, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400);
  {
    // Valid requests before the malformed one in the same write are answered.
    http_client c(s.at);
    ASSERT_TRUE(c.send(test::get_request("/") + "GARBAGE\r\n\r\n"));
    expect_hello(c.read_reply());
    auto bad = c.read_reply();
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_TRUE(c.closed_by_server());
  }
  ASSERT_TRUE(bystander.send(test::get_request("/")));
  {
    SCOPED_TRACE("other connections are untouched");
    expect_hello(bystander.read_reply());
  }
}

TEST(httpd, limits_answer_414_431_413_and_close) {
  httpd s({"--max-request-line=100", "--max-header-bytes=1000", "--max-headers=10", "--max-body=1000"});
  expect_refused(s.at, test::get_request("/" + std::string(200, 'a')), 414);
  expect_refused(s.at, "GET /" + std::string(5000, 'a'), 414);  // refused before the line even ends
  expect_refused(s.at, test::get_request("/", "X-Big: " + std::string(2000, 'b') + "\r\n"), 431);
  std::string eleven;
  for (int i = 0; i < 11; ++i) eleven += "X-" + std::to_string(i) + ": v\r\n";
  expect_refused(s.at, test::get_request("/", eleven), 431);
  expect_refused(s.at, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n", 413);  // before the body
  expect_refused(s.at, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" +
                           std::string(1000, 'x') + "\r\n1\r\n",
                 413);
  // Right at the limits, all is well.
  http_client c(s.at);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'y')));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), 1000u);
}

TEST(httpd, methods_and_paths) {
  httpd s;
  http_client c(s.at);
  ASSERT_TRUE(c.send(test::get_request("/nope") + "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n" +
                     test::get_request("/echo") + test::get_request("/?query=1")));
  auto missing = c.read_reply();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto del = c.read_reply();
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  EXPECT_EQ(del->field("allow"), "GET, HEAD");
  auto get_echo = c.read_reply();
  ASSERT_TRUE(get_echo);
  EXPECT_EQ(get_echo->status, 405);
  EXPECT_EQ(get_echo->field("allow"), "POST, PUT");
  expect_hello(c.read_reply());
}

// A --root tree: files, a subfolder without index, a large file, a symlink
// inside and one leading out, and a file outside the root.
struct root_tree {
  std::string top;  // holds root/ and outside.txt
  std::string root;
  std::string big;
  root_tree() {
    char dir[] = "/tmp/sluice-httpd-root-XXXXXX";
    EXPECT_NE(::mkdtemp(dir), nullptr);
    top = dir;
    root = top + "/root";
    ::mkdir(root.c_str(), 0755);
    ::mkdir((root + "/sub").c_str(), 0755);
    std::ofstream(root + "/index.html") << "<p>index</p>\n";
    std::ofstream(root + "/sub/a.txt") << "file a\n";
    std::ofstream(top + "/outside.txt") << "secret\n";
    big = test::random_bytes(3 * 1024 * 1024 + 17, 11);
    std::ofstream(root + "/big.bin", std::ios::binary) << big;
    EXPECT_EQ(::symlink((top + "/outside.txt").c_str(), (root + "/escape").c_str()), 0);
    EXPECT_EQ(::symlink("sub/a.txt", (root + "/inside").c_str()), 0);
    EXPECT_EQ(::symlink("../../outside.txt", (root + "/sub/up").c_str()), 0);
  }
  ~root_tree() { (void)std::system(("rm -rf '" + top + "'").c_str()); }
};

TEST(httpd, root_serves_files_and_never_leaves_the_root) {
  root_tree t;
  httpd s({"--root=" + t.root});
  http_client c(s.at);
  auto get = [&](const std::string& path) {
    EXPECT_TRUE(c.send(test::get_request(path)));
    auto r = c.read_reply();
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(http_reply{});
  };
  EXPECT_EQ(get("/").body, "<p>index</p>\n");
  EXPECT_EQ(get("/").field("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(get("/sub/a.txt").body, "file a\n");
  EXPECT_EQ(get("/sub/./../sub/a.txt?x=1").body, "file a\n") << "dot segments inside the root are fine";
  EXPECT_EQ(get("/inside").body, "file a\n") << "a symlink that stays inside is followed";
  EXPECT_EQ(get("/sub%2Fa.txt").body, "file a\n") << "percent-decoded";
  EXPECT_EQ(get("/missing").status, 404);
  EXPECT_EQ(get("/sub/").status, 404) << "no index.html, no listing";
  for (const char* escape : {"/../outside.txt", "/sub/../../outside.txt", "/%2e%2e/outside.txt", "/..%2foutside.txt",
                             "/escape", "/sub/up"}) {
    auto r = get(escape);
    EXPECT_EQ(r.status, 403) << escape;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << escape;
  }
  auto big = get("/big.bin");
  EXPECT_EQ(big.status, 200);
  EXPECT_TRUE(big.body == t.big) << "3 MiB file, " << big.body.size() << " bytes received";
  ASSERT_TRUE(c.send("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = c.read_reply(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->field("content-length"), std::to_string(t.big.size()));
  expect_refused(s.at, test::get_request("/bad%zzpath"), 400);
}

TEST(httpd, a_large_file_streams_before_the_next_pipelined_answer) {
  root_tree t;
  httpd s({"--root=" + t.root});
  http_client c(s.at);
  ASSERT_TRUE(c.send(test::get_request("/big.bin") + test::get_request("/sub/a.txt") + test::get_request("/big.bin")));
  auto first = c.read_reply();
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->body == t.big);
  auto second = c.read_reply();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "file a\n");
  auto third = c.read_reply();
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->body == t.big);
}

TEST(httpd, a_slow_file_response_keeps_its_file_when_the_cache_closes_its_entry) {
  // One cache slot, descriptors only: a response still sending huge.bin
  // must own its descriptor, since /sub/a.txt takes the slot and closes
  // the cache's (reading through it would be EBADF and a cut response).
  // The file is larger than the kernel's socket buffers can absorb, so
  // the response stalls halfway until the client reads.
  root_tree t;
  std::string huge = test::random_bytes(1024 * 1024, 5);
  for (int i = 0; i < 5; ++i) huge += huge;  // 32 MiB
  std::ofstream(t.root + "/huge.bin", std::ios::binary) << huge;
  httpd s({"--root=" + t.root, "--cores=1", "--open-file-cache=1", "--open-file-cache-content=0"});  // one loop, one cache
  http_client slow(s.at);
  ASSERT_TRUE(slow.send(test::get_request("/huge.bin")));
  pollfd p{slow.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);  // its answer has begun: the file is open and stalled
  http_client other(s.at);
  ASSERT_TRUE(other.send(test::get_request("/sub/a.txt") + test::get_request("/index.html")));
  auto a = other.read_reply();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "file a\n");
  auto index = other.read_reply();
  ASSERT_TRUE(index);
  EXPECT_EQ(index->body, "<p>index</p>\n");
  auto big = slow.read_reply();
  ASSERT_TRUE(big);
  EXPECT_EQ(big->body.size(), huge.size());
  EXPECT_TRUE(big->body == huge);
}

TEST(httpd, root_without_index_still_says_hello) {
  root_tree t;
  std::remove((t.root + "/index.html").c_str());
  httpd s({"--root=" + t.root});
  http_client c(s.at);
  ASSERT_TRUE(c.send(test::get_request("/")));
  expect_hello(c.read_reply());
}

TEST(httpd, wrk_runs_without_errors) {
  if (!have("/usr/bin/wrk")) GTEST_SKIP() << "wrk is not installed (build/install-deps.sh installs it)";
  httpd s;
  int rc = -1;
  std::string out = run({"/usr/bin/wrk", "-t1", "-c8", "-d1s", s.url("/")}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Requests/sec"), std::string::npos) << out;
  EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  EXPECT_EQ(out.find("Socket errors"), std::string::npos) << out;
}

// What one slow client saw: the bytes the server sent, whether it closed, and
// how long after the client began.
struct slow_client {
  int fd = -1;
  std::string got;
  bool closed = false;
  std::chrono::steady_clock::duration took{};
};

// Issue 15, item 8: sluice-httpd had no header timeout, so 300 slowloris
// connections (a partial head, then nothing or a byte now and then) were all
// still open after 60 s. Now a request must arrive whole within
// --header-timeout: 408 and close if part of one came, a quiet close if
// nothing did. Each client reads until the server closes (no sleeping).
TEST(httpd, regression_slowloris_connections_get_408_and_close_after_the_header_timeout) {
  httpd s({"--header-timeout=300ms"});
  const auto begin = std::chrono::steady_clock::now();
  std::vector<slow_client> partial(40);
  for (auto& c : partial) {
    c.fd = test::connect_to(s.at);
    ASSERT_GE(c.fd, 0);
    ASSERT_TRUE(test::send_all(c.fd, "GET / HTTP/1.1\r\nHost: slow\r\nX-a: "));
  }
  slow_client silent;
  silent.fd = test::connect_to(s.at);
  ASSERT_GE(silent.fd, 0);
  // A trickle: one byte whenever 50 ms pass without the server saying
  // anything, until it closes; never a whole head.
  slow_client trickle;
  trickle.fd = test::connect_to(s.at);
  ASSERT_GE(trickle.fd, 0);
  ASSERT_TRUE(test::send_all(trickle.fd, "GET / HTTP/1.1\r\n"));
  for (int i = 0; i < 200 && !trickle.closed; ++i) {
    if ((test::wait_for(trickle.fd, POLLIN, 50ms) & (POLLIN | POLLHUP)) != 0) {
      trickle.closed = test::read_to_eof(trickle.fd, trickle.got, 5s);
      trickle.took = std::chrono::steady_clock::now() - begin;
      break;
    }
    (void)test::send_all(trickle.fd, "x");
  }
  EXPECT_TRUE(trickle.closed) << "trickling bytes do not hold the connection open";
  EXPECT_EQ(trickle.got.substr(0, 12), "HTTP/1.1 408") << trickle.got;
  EXPECT_GE(trickle.took, 250ms) << "not before the timeout";
  EXPECT_LT(trickle.took, 5s);
  for (auto& c : partial) {
    c.closed = test::read_to_eof(c.fd, c.got, 5s);
    EXPECT_TRUE(c.closed);
    EXPECT_EQ(c.got.substr(0, 12), "HTTP/1.1 408") << c.got;
    EXPECT_NE(c.got.find("Connection: close"), std::string::npos) << c.got;
    ::close(c.fd);
  }
  silent.closed = test::read_to_eof(silent.fd, silent.got, 5s);
  EXPECT_TRUE(silent.closed) << "a connection that never asks is closed too";
  EXPECT_EQ(silent.got, "") << "quietly: there was no request to answer";
  ::close(silent.fd);
  ::close(trickle.fd);
}

// Between requests a keep-alive connection is the idle timeout's, not the
// header timeout's: an upstream pool (the gateway's) keeps such connections
// on purpose, and a request sent on one just as the header timeout closed it
// would fail.
TEST(httpd, an_idle_keep_alive_connection_outlives_the_header_timeout) {
  httpd s({"--header-timeout=100ms", "--idle-timeout=1s"});
  http_client c(s.at);
  c.send(test::get_request("/"));
  expect_hello(c.read_reply());
  EXPECT_EQ(test::wait_for(c.fd(), POLLIN, 500ms), 0) << "open after 5 header timeouts without a request";
  c.send(test::get_request("/"));
  expect_hello(c.read_reply());
  const auto idle_from = std::chrono::steady_clock::now();
  std::string after;
  EXPECT_TRUE(test::read_to_eof(c.fd(), after, 5s)) << "the idle timeout ends it";
  EXPECT_EQ(after, "");
  EXPECT_GE(std::chrono::steady_clock::now() - idle_from, 900ms);
}

TEST(httpd, the_header_timeout_defaults_to_10s) {
  test::child p({test::app_path("SLUICE_HTTPD"), "--help"});
  const std::string out = p.read_all();
  EXPECT_EQ(p.wait(), 0);
  const auto at = out.find("--header-timeout=DURATION");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string help = out.substr(at, out.find("\n  --", at + 1) - at);
  EXPECT_NE(help.find("(default 10s)"), std::string::npos) << help;
  EXPECT_NE(help.find("range 1ms to 24h"), std::string::npos) << help;
}

TEST(httpd, flags_and_bad_settings) {
  {
    test::child p({test::app_path("SLUICE_HTTPD"), "--help"});
    std::string out = p.read_all();
    EXPECT_EQ(p.wait(), 0);
    for (const char* flag : {"--root", "--max-request-line", "--max-header-bytes", "--max-headers", "--max-body",
                             "--transport", "--listen", "--cores", "--open-file-cache",
                             "--open-file-cache-valid", "--open-file-cache-content", "--open-file-cache-inactive"}) {
      EXPECT_NE(out.find(flag), std::string::npos) << flag;
    }
  }
  for (std::vector<std::string> argv : {std::vector<std::string>{test::app_path("SLUICE_HTTPD"), "--root=/nonexistent/dir"},
                                        {test::app_path("SLUICE_HTTPD"), "--max-header-bytes=300k"},
                                        {test::app_path("SLUICE_HTTPD"), "--max-body=lots"},
                                        {test::app_path("SLUICE_HTTPD"), "--listen=nowhere"},
                                        {test::app_path("SLUICE_HTTPD"), "--open-file-cache=100000"},
                                        {test::app_path("SLUICE_HTTPD"), "--open-file-cache-valid=0s"},
                                        {test::app_path("SLUICE_HTTPD"), "--open-file-cache-content=1m",
                                         "--max-output=512k"}}) {
    test::child p(argv);
    EXPECT_EQ(p.wait(), 2) << argv[1];
    const std::string err = p.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find("error"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace sluice
