// sluice-bench's http and frames modes as a process: they pass against
// correct servers and catch wrong ones (corrupted bodies and frames, wrong
// statuses, bytes that are not HTTP, wrong lengths); --messages, the open
// loop's schedule, --plot, and flag errors.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "local_server.hpp"
#include "net.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// An app server on an ephemeral port, stopped with SIGINT.
struct app {
  std::unique_ptr<test::child> p;
  endpoint at;
  explicit app(std::vector<std::string> argv) {
    argv.push_back("--listen=127.0.0.1:0");
    p = std::make_unique<test::child>(argv);
    const std::string line = p->read_line();
    at = test::parse_announced(line);
    EXPECT_FALSE(at.empty()) << line << p->stderr_text();
  }
  ~app() {
    p->signal(SIGINT);
    EXPECT_EQ(p->wait(), 0);
  }
};

struct bench_run {
  int rc = -1;
  std::string json;
  std::string err;
};

bench_run bench(std::vector<std::string> args) {
  std::vector<std::string> argv = {test::app_path("SLUICE_BENCH")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--json");
  test::child b(argv);
  bench_run r;
  r.json = b.read_line(60s);
  r.rc = b.wait(60s);
  r.err = b.stderr_text();
  return r;
}

std::uint64_t json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return UINT64_MAX;
  return std::strtoull(json.c_str() + at + key.size() + 3, nullptr, 10);
}

// Answers GET with "Hello, World!", one flipped byte in every 100th body.
class corrupting_http final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    for (;;) {
      auto end = c.input().find("\r\n\r\n");
      if (!end) return;
      (void)c.input().skip(*end + 4);
      std::string body = "Hello, World!";
      if (++count_ % 100 == 0) body[3] ^= 1;
      (void)c.write("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + body);
    }
  }

 private:
  unsigned count_ = 0;
};

// Answers anything with bytes that are not HTTP.
class not_http final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    (void)c.input().skip(c.input().size());
    (void)c.write("SSH-2.0-OpenSSH\r\n\r\n");
  }
};

// Echoes length-prefixed frames, but every 500th frame comes back with one
// byte flipped, and every 700th one byte short (its header says so).
class corrupting_frames final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    for (;;) {
      auto head = c.input().peek(4);
      if (!head) return;
      const auto* h = reinterpret_cast<const unsigned char*>(head->data());
      const std::size_t n = (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) | (std::size_t{h[2]} << 8) | h[3];
      if (c.input().size() < 4 + n) return;
      std::string frame(*c.input().next(4 + n));
      ++count_;
      if (count_ % 500 == 0) frame[4 + n / 2] ^= 1;
      if (count_ % 700 == 0 && n > 0) {
        frame.pop_back();
        frame[3] = static_cast<char>(frame[3] - 1);  // payloads here are < 256 bytes
      }
      (void)c.write(frame);
    }
  }

 private:
  unsigned count_ = 0;
};

TEST(bench, http_against_sluice_httpd_checks_every_response) {
  app httpd({test::app_path("SLUICE_HTTPD")});
  auto r = bench({"http", "--target=" + httpd.at.to_string(), "--connections=4", "--pipeline=8", "--duration=1s",
                  "--warmup=0s", "--expect-body=Hello, World!"});
  EXPECT_EQ(r.rc, 0) << r.json << r.err;
  EXPECT_NE(r.json.find("\"mode\":\"http\""), std::string::npos) << r.json;
  EXPECT_EQ(json_number(r.json, "mismatches"), 0u) << r.json;
  EXPECT_EQ(json_number(r.json, "protocol_errors"), 0u) << r.json;
  EXPECT_GT(json_number(r.json, "messages"), 0u) << r.json;
}

TEST(bench, http_messages_counts_exactly) {
  app httpd({test::app_path("SLUICE_HTTPD")});
  auto r = bench({"http", "--target=" + httpd.at.to_string(), "--connections=3", "--pipeline=4", "--messages=1000"});
  EXPECT_EQ(r.rc, 0) << r.json << r.err;
  EXPECT_EQ(json_number(r.json, "messages"), 1000u) << r.json;
  EXPECT_EQ(json_number(r.json, "samples"), 1000u) << r.json;
}

TEST(bench, http_wrong_expectations_are_mismatches) {
  app httpd({test::app_path("SLUICE_HTTPD")});
  auto body = bench({"http", "--target=" + httpd.at.to_string(), "--connections=2", "--messages=50",
                     "--expect-body=Goodbye, World!"});
  EXPECT_EQ(body.rc, 1) << body.json;
  EXPECT_EQ(json_number(body.json, "mismatches"), 50u) << body.json;
  EXPECT_NE(body.err.find("Content-Length differs"), std::string::npos) << body.err;
  auto status = bench({"http", "--target=" + httpd.at.to_string(), "--path=/missing", "--connections=2",
                       "--messages=50"});
  EXPECT_EQ(status.rc, 1) << status.json;
  EXPECT_EQ(json_number(status.json, "mismatches"), 50u) << status.json;
  EXPECT_NE(status.err.find("status"), std::string::npos) << status.err;
}

TEST(bench, http_catches_a_corrupted_body) {
  test::local_server s([](loop_base&) { return std::make_unique<corrupting_http>(); });
  auto r = bench({"http", "--target=" + s.target(), "--connections=2", "--messages=1000", "--expect-body=Hello, World!"});
  EXPECT_EQ(r.rc, 1) << r.json;
  EXPECT_EQ(json_number(r.json, "mismatches"), 10u) << "one in a hundred: " << r.json;
  EXPECT_NE(r.err.find("body differs"), std::string::npos) << r.err;
}

TEST(bench, http_closes_on_bytes_that_are_not_http) {
  test::local_server s([](loop_base&) { return std::make_unique<not_http>(); });
  auto r = bench({"http", "--target=" + s.target(), "--connections=3", "--duration=1s", "--warmup=0s"});
  EXPECT_EQ(r.rc, 1) << r.json;
  EXPECT_EQ(json_number(r.json, "protocol_errors"), 3u) << "each connection, once: " << r.json;
  EXPECT_NE(r.err.find("cannot be parsed"), std::string::npos) << r.err;
}

TEST(bench, frames_against_frame_and_byte_echo_servers) {
  app frames({test::app_path("SLUICE_ECHO"), "--frames"});
  auto r = bench({"frames", "--target=" + frames.at.to_string(), "--connections=4", "--size=300", "--pipeline=3",
                  "--duration=1s", "--warmup=0s"});
  EXPECT_EQ(r.rc, 0) << r.json << r.err;
  EXPECT_EQ(json_number(r.json, "mismatches"), 0u) << r.json;
  EXPECT_GT(json_number(r.json, "messages"), 0u) << r.json;
  app bytes({test::app_path("SLUICE_ECHO")});
  auto big = bench({"frames", "--target=" + bytes.at.to_string(), "--connections=2", "--size=100k", "--messages=200"});
  EXPECT_EQ(big.rc, 0) << big.json << big.err;
  EXPECT_EQ(json_number(big.json, "messages"), 200u) << big.json;
}

TEST(bench, frames_catch_flipped_bytes_and_wrong_lengths) {
  test::local_server s([](loop_base&) { return std::make_unique<corrupting_frames>(); });
  auto r = bench({"frames", "--target=" + s.target(), "--connections=2", "--size=100", "--messages=3500"});
  EXPECT_EQ(r.rc, 1) << r.json;
  // 3500 frames: 7 flipped (every 500th), 5 short (every 700th), one of
  // which (the 3500th) is both.
  EXPECT_EQ(json_number(r.json, "mismatches"), 11u) << r.json;
  EXPECT_EQ(json_number(r.json, "protocol_errors"), 0u) << r.json;
}

TEST(bench, open_loop_never_sends_ahead_of_its_schedule) {
  app httpd({test::app_path("SLUICE_HTTPD")});
  auto r = bench({"http", "--target=" + httpd.at.to_string(), "--connections=4", "--rate=2000", "--duration=1s",
                  "--warmup=0s"});
  EXPECT_EQ(r.rc, 0) << r.json << r.err;
  EXPECT_NE(r.json.find("\"rate\":2000"), std::string::npos) << r.json;
  const std::uint64_t n = json_number(r.json, "messages");
  EXPECT_GT(n, 0u);
  EXPECT_LE(n, 2000u * 11 / 10 + 4) << "more replies than the schedule allowed: " << r.json;
}

TEST(bench, plot_draws_a_png_with_its_data) {
  if (::access("/usr/bin/gnuplot", X_OK) != 0) GTEST_SKIP() << "gnuplot is not installed (gnuplot-nox, build/install-deps.sh)";
  app httpd({test::app_path("SLUICE_HTTPD")});
  char dir[] = "/tmp/sluice-bench-plot-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string png = std::string(dir) + "/latency.png";
  auto r = bench({"http", "--target=" + httpd.at.to_string(), "--connections=2", "--duration=1s", "--warmup=0s",
                  "--plot=" + png, "--plot-interval=100ms"});
  EXPECT_EQ(r.rc, 0) << r.json << r.err;
  std::ifstream img(png, std::ios::binary);
  char magic[4] = {};
  img.read(magic, 4);
  EXPECT_EQ(std::string(magic, 4), "\x89PNG") << "a PNG image was written";
  std::ifstream tl(std::string(dir) + "/latency.timeline.tsv");
  int lines = 0;
  for (std::string l; std::getline(tl, l);) ++lines;
  EXPECT_GE(lines, 10) << "one line per 100 ms of a 1 s run, plus the header";
  (void)std::system(("rm -rf '" + std::string(dir) + "'").c_str());
}

TEST(bench, bad_flags_give_one_line_and_exit_2) {
  const std::vector<std::vector<std::string>> cases = {
      {"http", "--target=127.0.0.1:1", "--path=nope"},
      {"http", "--target=127.0.0.1:1", "--path=/a b"},
      {"frames", "--target=127.0.0.1:1", "--size=0"},
      {"gopher", "--target=127.0.0.1:1"},
      {"http", "--target=127.0.0.1:1", "--plot=/tmp/x.png", "--plot-interval=0s"},
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {test::app_path("SLUICE_BENCH")};
    argv.insert(argv.end(), args.begin(), args.end());
    test::child p(argv);
    EXPECT_EQ(p.wait(), 2) << args[0] << " " << args.back();
    const std::string err = p.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  // --plot without gnuplot is refused before the run, not after it.
  test::child p({"/usr/bin/env", "PATH=/nonexistent", test::app_path("SLUICE_BENCH"), "http", "--target=127.0.0.1:1",
                 "--plot=/tmp/x.png"});
  EXPECT_EQ(p.wait(), 2);
  EXPECT_NE(p.stderr_text().find("gnuplot"), std::string::npos);
}

}  // namespace
}  // namespace sluice
