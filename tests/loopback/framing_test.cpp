// Codecs and the HTTP parser inside real servers, over loopback: frames cut
// at random points by the network arrive whole, on one connection and on many
// interleaved; input that cannot be framed closes that connection with a
// counted reason, before it is buffered. The servers keep their decoders and
// parsers in sessions (core/session.hpp), one per connection.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
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
#include "sluice/core/session.hpp"

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

// How many bytes the test servers have received, over all connections, so a
// test can wait until the server has seen what it sent (and has answered
// every line that is complete) before it sends more.
class arrival_log {
 public:
  void add(std::size_t n) {
    std::lock_guard lock(mu_);
    bytes_ += n;
    cv_.notify_all();
  }
  bool wait_for(std::size_t total, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return bytes_ >= total; });
  }
  void clear() {
    std::lock_guard lock(mu_);
    bytes_ = 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t bytes_ = 0;
};
arrival_log arrivals;

// Answers each line with its length and the line, upper-cased. Its decoder
// remembers how far it scanned: one per connection.
struct line_session {
  explicit line_session(connection&) noexcept {}
  void on_close(connection&, close_reason r) noexcept { closes.add(r); }
  void on_data(connection& c) noexcept {
    // Nothing else consumes this input: what is there beyond what was left
    // last time has just arrived.
    arrivals.add(c.input().size() - pending);
    std::string_view line;
    for (;;) {
      const auto st = lines.decode(c.input(), line);
      if (st == codec::frame_status::need_more) break;
      if (codec::is_error(st)) {
        codec::reject(c, st);
        return;
      }
      std::string out = std::to_string(line.size()) + ":";
      for (char ch : line) out += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
      (void)c.write(out + "\n");
    }
    pending = c.input().size();
  }
  codec::line_decoder lines{{.max_length = 64}};
  std::size_t pending = 0;  // input bytes left unconsumed by the last on_data
};

// Answers each request with 204, refuses what the parser refuses. A parser
// allocates its field table when made: the session is recycled (reopen), so
// a loop makes one per slot, not one per connection.
struct tiny_http_session {
  explicit tiny_http_session(connection&) {}
  void reopen(connection&) noexcept { parser.reset(); }
  // A recycled session outlives its connection: what the parser holds of the
  // loop's buffers goes back now, not at the next reopen.
  void on_close(connection&, close_reason r) noexcept {
    parser.reset();
    closes.add(r);
  }
  void on_data(connection& c) noexcept {
    for (;;) {
      switch (parser.parse(c.input())) {
        case http::request_parser::status::request:
          (void)c.write("HTTP/1.1 204 No Content\r\n\r\n");
          continue;
        case http::request_parser::status::expect_continue:
          continue;
        case http::request_parser::status::need_more:
          return;
        case http::request_parser::status::error:
          http::reject(c, parser.error_status());
          return;
        case http::request_parser::status::head:
        case http::request_parser::status::body:
          return;  // streaming mode only
      }
    }
  }
  http::request_parser parser;
};

TEST(framing, lines_cut_by_the_network_arrive_whole) {
  closes.clear();
  test::local_server s(session_factory<line_session>());
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

std::string upper(std::string_view line) {
  std::string out(line);
  for (char& ch : out) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  return out;
}

// Issue 16: the README's codec example, and this file's servers, kept one
// line decoder per loop (in the handler). A decoder remembers how far it
// scanned its input, so after A sent "abcdefghij" without a newline, B's
// complete "hi\n" was scanned from offset 10 and went unanswered until B sent
// more. With a decoder per session, B is answered at once.
TEST(framing, regression_a_partial_line_on_one_connection_does_not_hold_back_another) {
  closes.clear();
  arrivals.clear();
  test::local_server s(session_factory<line_session>());
  int a = test::connect_to(s.at());
  int b = test::connect_to(s.at());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_TRUE(test::send_all(a, "abcdefghij"));
  ASSERT_TRUE(arrivals.wait_for(10)) << "the server has scanned A's partial line";
  ASSERT_TRUE(test::send_all(b, "hi\n"));
  EXPECT_EQ(test::read_n(b, 5, 5s), "2:HI\n") << "B's complete line is answered without B sending more";
  ASSERT_TRUE(arrivals.wait_for(13));
  ASSERT_TRUE(test::send_all(a, "\n"));
  EXPECT_EQ(test::read_n(a, 14, 5s), "10:ABCDEFGHIJ\n") << "A's line, once it ends";
  ::close(a);
  ::close(b);
}

// Many connections of one loop, each with lines cut at random points, sent
// in rounds: every connection sends its next piece (in a random order), and
// the next round starts only once the server has received the whole round,
// so each piece is decoded on its own while most connections hold a partial
// line. Every connection gets exactly its own answers.
TEST(framing, interleaved_partial_lines_on_many_connections_are_each_answered_byte_exact) {
  closes.clear();
  arrivals.clear();
  test::local_server s(session_factory<line_session>());
  constexpr int connections = 50;
  std::mt19937_64 rng(16);
  std::vector<int> fds;
  std::vector<std::string> streams(connections), wants(connections);
  for (int i = 0; i < connections; ++i) {
    fds.push_back(test::connect_to(s.at()));
    ASSERT_GE(fds.back(), 0);
    // Each piece leaves at once (no Nagle wait for the previous one's ACK).
    const int one = 1;
    ASSERT_EQ(::setsockopt(fds.back(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    for (int k = 0; k < 30; ++k) {
      std::string line;
      const std::size_t n = rng() % 41;  // empty lines too
      for (std::size_t j = 0; j < n; ++j) line += "abcdefghijklmnopqrstuvwxyz0123456789 -"[rng() % 38];
      streams[static_cast<std::size_t>(i)] += line + (rng() % 2 ? "\r\n" : "\n");
      wants[static_cast<std::size_t>(i)] += std::to_string(n) + ":" + upper(line) + "\n";
    }
  }
  std::vector<std::size_t> sent(connections, 0);
  std::vector<int> order(connections);
  for (int i = 0; i < connections; ++i) order[static_cast<std::size_t>(i)] = i;
  std::size_t total = 0;
  for (int round = 0;; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    bool any = false;
    for (int i : order) {
      const auto u = static_cast<std::size_t>(i);
      if (sent[u] == streams[u].size()) continue;
      const std::size_t k = std::min<std::size_t>(1 + rng() % 12, streams[u].size() - sent[u]);
      ASSERT_TRUE(test::send_all(fds[u], std::string_view(streams[u]).substr(sent[u], k)));
      sent[u] += k;
      total += k;
      any = true;
    }
    if (!any) break;
    ASSERT_TRUE(arrivals.wait_for(total)) << "round " << round;
  }
  for (int i = 0; i < connections; ++i) {
    const auto u = static_cast<std::size_t>(i);
    EXPECT_EQ(test::read_n(fds[u], wants[u].size(), 5s), wants[u]) << "connection " << i;
  }
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(closes.wait_for(connections).size(), static_cast<std::size_t>(connections));
}

TEST(framing, an_overlong_line_closes_only_its_connection_and_is_counted) {
  closes.clear();
  test::local_server s(session_factory<line_session>());
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
  test::local_server s(session_factory<tiny_http_session>());
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
