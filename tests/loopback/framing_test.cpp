// Codecs and the HTTP parser inside real servers, over loopback: frames cut
// at random points by the network arrive whole; input that cannot be framed
// closes that connection with a counted reason, before it is buffered.

#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "local_server.hpp"
#include "net.hpp"
#include "sluice/core/codec/length_field_prepender.hpp"
#include "sluice/core/codec/line_decoder.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/http/status.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// The reasons of connections the test servers closed, in order, so a test
// waits for the close event (and the loop's counters, updated before
// on_close) instead of racing it.
class close_log {
 public:
  void add(close_reason r) {
    std::lock_guard lock(mu_);
    reasons_.push_back(r);
    cv_.notify_all();
  }
  // The first n reasons, once there are n (empty on timeout).
  std::vector<close_reason> wait_for(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return reasons_.size() >= n; })) return {};
    return {reasons_.begin(), reasons_.begin() + static_cast<std::ptrdiff_t>(n)};
  }
  void clear() {
    std::lock_guard lock(mu_);
    reasons_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<close_reason> reasons_;
};
close_log closes;

// Answers each line with its length and the line, upper-cased.
class line_server final : public handler {
 public:
  void on_close(connection&, close_reason r) noexcept override { closes.add(r); }
  void on_data(connection& c) noexcept override {
    std::string_view line;
    for (;;) {
      const auto st = lines_.decode(c.input(), line);
      if (st == codec::frame_status::need_more) return;
      if (codec::is_error(st)) {
        codec::reject(c, st);
        return;
      }
      std::string out = std::to_string(line.size()) + ":";
      for (char ch : line) out += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
      (void)c.write(out + "\n");
    }
  }
  void on_open(connection&) noexcept override { lines_.reset(); }

 private:
  codec::line_decoder lines_{{.max_length = 64}};
};

// Answers each request with 204, refuses what the parser refuses.
class tiny_http final : public handler {
 public:
  void on_close(connection&, close_reason r) noexcept override { closes.add(r); }
  void on_data(connection& c) noexcept override {
    for (;;) {
      switch (parser_.parse(c.input())) {
        case http::request_parser::status::request:
          (void)c.write("HTTP/1.1 204 No Content\r\n\r\n");
          continue;
        case http::request_parser::status::expect_continue:
          continue;
        case http::request_parser::status::need_more:
          return;
        case http::request_parser::status::error:
          http::reject(c, parser_.error_status());
          return;
        case http::request_parser::status::head:
        case http::request_parser::status::body:
          return;  // streaming mode only
      }
    }
  }

 private:
  http::request_parser parser_;  // one connection at a time in these tests
};

TEST(framing, lines_cut_by_the_network_arrive_whole) {
  closes.clear();
  test::local_server s([](loop_base&) { return std::make_unique<line_server>(); });
  int fd = test::connect_to(s.at());
  ASSERT_GE(fd, 0);
  std::string sent;
  std::string want;
  for (int i = 0; i < 300; ++i) {
    const std::string line = "line number " + std::to_string(i) + (i % 2 ? "\r\n" : "\n");
    sent += line;
    const std::size_t n = line.size() - (i % 2 ? 2 : 1);
    std::string upper = line.substr(0, n);
    for (char& ch : upper) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    want += std::to_string(n) + ":" + upper + "\n";
  }
  // Odd-sized writes put frame boundaries everywhere.
  for (std::size_t at = 0, k = 1; at < sent.size(); at += k, k = k % 13 + 1) {
    ASSERT_TRUE(test::send_all(fd, sent.substr(at, k)));
  }
  EXPECT_EQ(test::read_n(fd, want.size()), want);
  ::close(fd);
}

TEST(framing, an_overlong_line_closes_only_its_connection_and_is_counted) {
  closes.clear();
  test::local_server s([](loop_base&) { return std::make_unique<line_server>(); });
  int good = test::connect_to(s.at());
  int bad = test::connect_to(s.at());
  ASSERT_TRUE(test::send_all(bad, std::string(65, 'x')));  // 65 bytes, no LF: over max_length 64 already
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(bad, rest, 5s)) << "the server closed it without waiting for the line to end";
  EXPECT_EQ(rest, "");
  ::close(bad);  // the server lingers for our FIN after its own
  EXPECT_EQ(closes.wait_for(1), std::vector<close_reason>{close_reason::protocol_error});
  ASSERT_TRUE(test::send_all(good, "still here\n"));
  EXPECT_EQ(test::read_n(good, 14), "10:STILL HERE\n");
  ::close(good);
  const loop_stats& st = s.stop();
  EXPECT_EQ(st.frames_rejected.get(), 1u);
  EXPECT_EQ(st.closed_by_reason[static_cast<int>(close_reason::protocol_error)].get(), 1u);
}

TEST(framing, http_reject_answers_counts_and_closes) {
  closes.clear();
  test::local_server s([](loop_base&) { return std::make_unique<tiny_http>(); });
  {
    test::http_client c(s.at());
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\nBROKEN\r\n\r\n"));
    auto ok = c.read_reply(true);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 204);
    auto refused = c.read_reply();
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400);
    EXPECT_TRUE(c.closed_by_server());
  }
  EXPECT_EQ(closes.wait_for(1), std::vector<close_reason>{close_reason::protocol_error});
  const loop_stats& st = s.stop();
  EXPECT_EQ(st.requests_rejected.get(), 1u);
  EXPECT_EQ(st.closed_by_reason[static_cast<int>(close_reason::protocol_error)].get(), 1u);
}

std::string frame(const std::string& payload) {
  std::string f(4, '\0');
  const auto n = static_cast<std::uint32_t>(payload.size());
  f[0] = static_cast<char>(n >> 24);
  f[1] = static_cast<char>(n >> 16);
  f[2] = static_cast<char>(n >> 8);
  f[3] = static_cast<char>(n);
  return f + payload;
}

TEST(framing, echo_frames_app_decodes_and_reencodes) {
  test::child p({test::app_path("SLUICE_ECHO"), "--frames", "--max-frame=1000", "--listen=127.0.0.1:0"});
  const std::string line = p.read_line();
  const endpoint at = test::parse_announced(line);
  ASSERT_FALSE(at.empty()) << line;
  EXPECT_NE(line.find("frame echo"), std::string::npos) << line;
  int fd = test::connect_to(at);
  std::string stream;
  for (int i = 0; i < 50; ++i) stream += frame(test::random_bytes(static_cast<std::size_t>(i * 19 % 1000), i));
  for (std::size_t at2 = 0, k = 1; at2 < stream.size(); at2 += k, k = k * 7 % 101 + 1) {
    ASSERT_TRUE(test::send_all(fd, stream.substr(at2, k)));
  }
  EXPECT_TRUE(test::read_n(fd, stream.size()) == stream) << "frames come back as they were sent";
  // A header announcing more than --max-frame: closed at once, nothing buffered.
  ASSERT_TRUE(test::send_all(fd, std::string("\x00\x00\x03\xe9", 4)));  // 1001
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(fd, rest, 5s));
  EXPECT_EQ(rest, "");
  ::close(fd);
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 0);
}

}  // namespace
}  // namespace sluice
