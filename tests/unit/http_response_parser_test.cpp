// http::response_parser over buffer chains: the head's fields, bodies handed
// on as content (Content-Length, chunked decoded, until close)
// at every split point, responses without a body (HEAD, 1xx, 204, 304),
// keep-alive rules, the next response left in the input, limits and errors.

#include "sluice/core/http/response_parser.hpp"

#include <gtest/gtest.h>

#include "chains.hpp"

namespace sluice::http {
namespace {

using status = response_parser::status;
using test::chain_of;
using test::contents;
using test::splits;

segment_pool::options pool_options() { return test::small_pool(4096, 4096); }

// One response as the parser reported it.
struct seen {
  int code = 0;
  std::string reason, headers, body;
  bool keep_alive = false;
  friend bool operator==(const seen&, const seen&) = default;
};

std::ostream& operator<<(std::ostream& os, const seen& s) {
  return os << s.code << " " << s.reason << " [" << s.headers << "] body=" << s.body << " ka=" << s.keep_alive;
}

// Parses what `in` holds into `done`; `cur` carries a response across calls.
status parse_some(response_parser& p, buffer_chain& in, seen& cur, std::vector<seen>& done) {
  buffer_chain out(in.pool());
  for (;;) {
    status st = p.parse(in, out);
    switch (st) {
      case status::head:
        cur = {};
        cur.code = p.status_code();
        cur.reason = p.reason();
        for (std::size_t i = 0; i < p.header_count(); ++i) {
          cur.headers += std::string(p.header(i).name) + "=" + std::string(p.header(i).value) + ";";
        }
        break;
      case status::body:
        EXPECT_FALSE(out.empty()) << "status::body brings bytes";
        cur.body += contents(out);
        out.clear();
        break;
      case status::complete:
        cur.body += contents(out);
        out.clear();
        cur.keep_alive = p.keep_alive();
        done.push_back(cur);
        break;
      default:
        return st;
    }
  }
}

void expect_every_split(const std::string& stream, const std::vector<seen>& want, verb method = verb::get) {
  segment_pool pool(pool_options());
  for (const auto& pieces : splits(stream)) {
    response_parser p;
    p.expect(method);
    buffer_chain in(&pool);
    seen cur;
    std::vector<seen> got;
    for (const auto& piece : pieces) {
      test::append_piece(pool, in, piece);
      ASSERT_EQ(parse_some(p, in, cur, got), status::need_more) << p.error_reason();
    }
    ASSERT_EQ(got, want) << "first piece " << pieces[0].size() << " bytes";
    EXPECT_TRUE(in.empty());
    in.clear();
    pool.reset_scratch();
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(http_response_parser, content_length_body_at_every_split_point) {
  expect_every_split("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
                     {{200, "OK", "Content-Type=text/plain;Content-Length=13;", "Hello, World!", true}});
}

TEST(http_response_parser, chunked_body_is_handed_on_decoded_at_every_split_point) {
  const std::string body = "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: t\r\n\r\n";
  expect_every_split("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                     {{201, "Created", "Transfer-Encoding=chunked;", "hello world", true}});
}

TEST(http_response_parser, responses_without_a_body) {
  // A response to HEAD announces a length it does not send; 204 and 304 have
  // none; a 1xx is followed by the real response to the same request.
  expect_every_split("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", {{200, "OK", "Content-Length=99;", "", true}},
                     verb::head);
  expect_every_split("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
                     {{204, "No Content", "", "", true}, {304, "Not Modified", "ETag=x;", "", true}});
  expect_every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                     {{100, "Continue", "", "", true}, {200, "OK", "Content-Length=2;", "ok", true}});
}

TEST(http_response_parser, keep_alive_rules) {
  expect_every_split("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                     {{200, "OK", "Connection=close;Content-Length=1;", "x", false}});
  expect_every_split("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", {{200, "OK", "Content-Length=1;", "x", false}});
  expect_every_split("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
                     {{200, "OK", "Connection=keep-alive;Content-Length=1;", "x", true}});
}

TEST(http_response_parser, the_next_response_stays_in_the_input) {
  segment_pool pool(pool_options());
  response_parser p;
  p.expect(verb::get);
  buffer_chain in = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"});
  buffer_chain out(&pool);
  ASSERT_EQ(p.parse(in, out), status::head);
  ASSERT_EQ(p.parse(in, out), status::complete);
  EXPECT_EQ(contents(out), "a");
  EXPECT_EQ(contents(in).substr(0, 12), "HTTP/1.1 404") << "not consumed: it answers the next request";
  p.expect(verb::get);
  ASSERT_EQ(p.parse(in, out), status::head);
  EXPECT_EQ(p.status_code(), 404);
  EXPECT_TRUE(p.bodiless());
  EXPECT_EQ(p.parse(in, out), status::complete);
  EXPECT_TRUE(in.empty());
}

TEST(http_response_parser, body_until_close_completes_at_the_end_of_the_stream) {
  segment_pool pool(pool_options());
  response_parser p;
  p.expect(verb::get);
  buffer_chain in = chain_of(pool, {"HTTP/1.1 200 OK\r\n\r\nfirst "});
  buffer_chain out(&pool);
  ASSERT_EQ(p.parse(in, out), status::head);
  EXPECT_TRUE(p.until_close());
  ASSERT_EQ(p.parse(in, out), status::body);
  test::append_piece(pool, in, "second");
  ASSERT_EQ(p.parse(in, out), status::body);
  EXPECT_EQ(p.parse(in, out), status::need_more);
  EXPECT_EQ(p.finish(out), status::complete);
  EXPECT_EQ(contents(out), "first second");
  EXPECT_FALSE(p.keep_alive());
}

TEST(http_response_parser, a_response_cut_short_is_an_error) {
  segment_pool pool(pool_options());
  for (std::string cut : {"", "HTTP/1.1 200 OK\r\nContent-Len", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}) {
    response_parser p;
    p.expect(verb::get);
    buffer_chain in = cut.empty() ? buffer_chain(&pool) : chain_of(pool, {cut});
    buffer_chain out(&pool);
    while (true) {
      status st = p.parse(in, out);
      if (st == status::need_more || st == status::error) break;
    }
    EXPECT_EQ(p.finish(out), status::error) << cut;
    EXPECT_FALSE(p.error_reason().empty());
  }
}

TEST(http_response_parser, malformed_and_oversized_heads_are_errors) {
  segment_pool pool(pool_options());
  auto fails = [&](const std::string& text, const limits& l = {}) {
    response_parser p(l);
    p.expect(verb::get);
    buffer_chain in = chain_of(pool, {text});
    buffer_chain out(&pool);
    status st = p.parse(in, out);
    while (st == status::head || st == status::body) st = p.parse(in, out);
    return st == status::error;
  };
  EXPECT_TRUE(fails("garbage\r\n\r\n"));
  EXPECT_TRUE(fails("HTTP/1.1 abc OK\r\n\r\n"));
  EXPECT_TRUE(fails("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"));
  EXPECT_TRUE(fails("HTTP/2.0 200 OK\r\n\r\n"));
  EXPECT_TRUE(fails("HTTP/1.1 000 OK\r\n\r\n")) << "regression (fuzzer): status outside 100-599";
  EXPECT_TRUE(fails("HTTP/1.1 600 Odd\r\n\r\n"));
  EXPECT_TRUE(fails("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"));
  limits small;
  small.max_header_bytes = 64;
  EXPECT_TRUE(fails("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n", small));
  EXPECT_TRUE(fails("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'), small)) << "refused before the head ends";
  limits tiny;
  tiny.max_header_bytes = 16;
  EXPECT_TRUE(fails("HTTP/1.1 200 OK\r\n\r\nbody", tiny)) << "regression (fuzzer): a 19-byte head whole, not only in pieces";
  limits few;
  few.max_headers = 2;
  EXPECT_TRUE(fails("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", few));
  EXPECT_FALSE(fails("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n", limits{}));
}

TEST(http_response_parser, bodies_share_the_input_segments) {
  segment_pool pool(pool_options());
  response_parser p;
  p.expect(verb::get);
  buffer_chain in = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "body"});
  const void* body_bytes = in.segments().back().data();
  buffer_chain out(&pool);
  ASSERT_EQ(p.parse(in, out), status::head);
  ASSERT_EQ(p.parse(in, out), status::complete);
  ASSERT_EQ(out.segments().size(), 1u);
  EXPECT_EQ(static_cast<const void*>(out.segments().front().data()), body_bytes) << "moved, not copied";
}

TEST(http_response_parser, expect_restarts_after_an_error_or_a_closing_response) {
  segment_pool pool(pool_options());
  response_parser p;
  buffer_chain out(&pool);
  p.expect(verb::get);
  buffer_chain bad = chain_of(pool, {"nonsense\r\n\r\n"});
  EXPECT_EQ(p.parse(bad, out), status::error);
  p.expect(verb::get);
  buffer_chain good = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"});
  EXPECT_EQ(p.parse(good, out), status::head);
  EXPECT_EQ(p.parse(good, out), status::complete);
  EXPECT_FALSE(p.keep_alive());
  p.expect(verb::get);
  buffer_chain again = chain_of(pool, {"HTTP/1.1 204 No Content\r\n\r\n"});
  EXPECT_EQ(p.parse(again, out), status::head);
  EXPECT_EQ(p.parse(again, out), status::complete);
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

// The reason a response fails with when it arrives split at every point,
// or "" when it parses whole every time.
std::string failure_at_every_split(const std::string& stream, verb method = verb::get) {
  segment_pool pool(pool_options());
  std::string first = "unset";
  for (const auto& pieces : splits(stream)) {
    response_parser p;
    p.expect(method);
    buffer_chain in(&pool);
    seen cur;
    std::vector<seen> got;
    status st = status::need_more;
    for (const auto& piece : pieces) {
      test::append_piece(pool, in, piece);
      st = parse_some(p, in, cur, got);
      if (st == status::error) break;
    }
    std::string why = st == status::error ? std::string(p.error_reason()) : (got.empty() ? "incomplete" : "");
    in.clear();
    pool.reset_scratch();
    if (first == "unset") first = why;
    if ((first.empty()) != (why.empty())) return "differs by split point: " + first + " / " + why;
  }
  return first;
}

// Issue 15 item 7: upstream responses that are not well-formed are errors
// (the gateway answers 502), at every split point.
TEST(http_response_parser, lenient_heads_and_framing_are_errors) {
  EXPECT_EQ(failure_at_every_split("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), "");
  EXPECT_EQ(failure_at_every_split("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"), "") << "no reason phrase";
  for (const std::string bad : {
           "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",             // space before the colon
           "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",  // obs-fold
           "HTTP/1.1 200 OK\r\nX@Y: a\r\nContent-Length: 2\r\n\r\nok",     // not a token
           "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok",             // bare CR in the status line
           "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok",    // bare CR in a value
           "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok",              // two spaces
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",         // a coding we cannot frame
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nb\r\nok\r\n0\r\n\r\n",  // bare LF in an ext
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY0\r\n\r\n",          // no CRLF after data
       }) {
    const std::string why = failure_at_every_split(bad);
    EXPECT_FALSE(why.empty()) << bad;
    EXPECT_NE(why, "incomplete") << bad;
  }
}

TEST(http_response_parser, framing_is_reported_for_the_proxy_to_write) {
  segment_pool pool(pool_options());
  response_parser p;
  buffer_chain out(&pool);
  p.expect(verb::get);
  buffer_chain a = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"});
  ASSERT_EQ(p.parse(a, out), status::head);
  EXPECT_EQ(p.framing(), response_parser::framing_kind::length);
  EXPECT_EQ(p.content_length(), 3u);
  ASSERT_EQ(p.parse(a, out), status::complete);
  p.expect(verb::head);
  buffer_chain b = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"});
  ASSERT_EQ(p.parse(b, out), status::head);
  EXPECT_EQ(p.framing(), response_parser::framing_kind::none);
  EXPECT_EQ(p.declared_length(), 99u) << "what a response to HEAD announces";
  ASSERT_EQ(p.parse(b, out), status::complete);
  p.expect(verb::get);
  buffer_chain c = chain_of(pool, {"HTTP/1.1 200 OK\r\n\r\n"});
  ASSERT_EQ(p.parse(c, out), status::head);
  EXPECT_EQ(p.framing(), response_parser::framing_kind::close);
  EXPECT_FALSE(p.declared_length());
}

// Issue 15 item 2 at the parser's level: a parser left in the middle of a
// body (its connection ended) reads the next connection's response whole.
TEST(http_response_parser, reset_forgets_a_response_cut_short) {
  segment_pool pool(pool_options());
  for (const std::string cut : {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\nabc",
                                "HTTP/1.1 200 OK\r\nContent-Len"}) {
    response_parser p;
    buffer_chain out(&pool);
    p.expect(verb::get);
    buffer_chain old = chain_of(pool, {cut});
    while (p.parse(old, out) != status::need_more) {
    }
    out.clear();
    p.expect(verb::get);  // the next request, on another connection
    buffer_chain next = chain_of(pool, {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"});
    ASSERT_EQ(p.parse(next, out), status::head) << cut;
    EXPECT_EQ(p.status_code(), 200);
    ASSERT_EQ(p.parse(next, out), status::complete);
    EXPECT_EQ(contents(out), "ok");
    out.clear();
    p.reset();
    buffer_chain again = chain_of(pool, {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"});
    ASSERT_EQ(p.parse(again, out), status::head);
    EXPECT_EQ(p.status_code(), 404);
  }
}

}  // namespace
}  // namespace sluice::http
