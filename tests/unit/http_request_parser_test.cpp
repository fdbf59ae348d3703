// http::request_parser over buffer chains: fields and views, every split
// point of heads and bodies (pieces present at once, and arriving one by
// one), pipelining, Content-Length and chunked bodies without copying,
// keep-alive rules, Expect: 100-continue, every error status and limit.

#include "sluice/core/http/request_parser.hpp"

#include <gtest/gtest.h>

#include "chains.hpp"
#include "sluice/core/http/status.hpp"

namespace sluice::http {
namespace {

using status = request_parser::status;
using test::chain_of;
using test::contents;
using test::splits;

segment_pool::options pool_options() { return test::small_pool(4096, 4096); }

// What the tests compare: a request flattened to text.
struct seen {
  std::string method, target, path, query, headers, body;
  unsigned major = 0, minor = 0;
  bool keep_alive = false;
  friend bool operator==(const seen&, const seen&) = default;
};

std::ostream& operator<<(std::ostream& os, const seen& s) {
  return os << s.method << " " << s.target << " [" << s.headers << "] body=" << s.body << " ka=" << s.keep_alive;
}

seen flatten(const request& r) {
  seen s;
  s.method = r.method_name();
  s.target = r.target();
  s.path = r.path();
  s.query = r.query();
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    s.headers += std::string(r.header(i).name) + "=" + std::string(r.header(i).value) + ";";
  }
  s.body = contents(r.body());
  s.major = r.version_major();
  s.minor = r.version_minor();
  s.keep_alive = r.keep_alive();
  return s;
}

// Parses everything in `in`; stops at need_more or error.
struct outcome {
  std::vector<seen> requests;
  status last = status::need_more;
  int error = 0;
};

outcome parse_all(request_parser& p, buffer_chain& in) {
  outcome o;
  for (;;) {
    o.last = p.parse(in);
    if (o.last == status::request) {
      o.requests.push_back(flatten(p.current()));
    } else if (o.last != status::expect_continue) {
      break;
    }
  }
  o.error = p.error_status();
  return o;
}

// The same stream two ways at every split point: all pieces buffered before
// parsing, and pieces arriving one by one with a parse after each.
void expect_every_split(const std::string& stream, const std::vector<seen>& want, const limits& l = {}) {
  segment_pool pool(pool_options());
  for (const auto& pieces : splits(stream)) {
    {
      request_parser p(l);
      buffer_chain in = chain_of(pool, pieces);
      outcome o = parse_all(p, in);
      ASSERT_EQ(o.requests, want) << "all at once, first piece " << pieces[0].size() << " bytes";
      EXPECT_EQ(o.last, status::need_more);
      EXPECT_TRUE(in.empty());
    }
    {
      request_parser p(l);
      buffer_chain in(&pool);
      std::vector<seen> got;
      for (const auto& piece : pieces) {
        test::append_piece(pool, in, piece);
        outcome o = parse_all(p, in);
        ASSERT_EQ(o.last, status::need_more) << o.error;
        got.insert(got.end(), o.requests.begin(), o.requests.end());
      }
      ASSERT_EQ(got, want) << "arriving piece by piece, first piece " << pieces[0].size() << " bytes";
    }
    pool.reset_scratch();
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

seen get(std::string target, std::string headers) {
  seen s{"GET", target, "", "", headers, "", 1, 1, true};
  const auto q = target.find('?');
  s.path = target.substr(0, q);
  s.query = q == std::string::npos ? "" : target.substr(q + 1);
  return s;
}

TEST(http_request_parser, simple_get_fields) {
  segment_pool pool(pool_options());
  buffer_chain in = chain_of(pool, {"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example\r\nX-Long:   spaced value \t\r\n\r\n"});
  request_parser p;
  ASSERT_EQ(p.parse(in), status::request);
  const request& r = p.current();
  EXPECT_EQ(r.method(), verb::get);
  EXPECT_EQ(r.method_name(), "GET");
  EXPECT_EQ(r.target(), "/a/b?x=1&y=2");
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.query(), "x=1&y=2");
  EXPECT_EQ(r.version_major(), 1u);
  EXPECT_EQ(r.version_minor(), 1u);
  EXPECT_TRUE(r.keep_alive());
  ASSERT_EQ(r.header_count(), 2u);
  EXPECT_EQ(r.header(1).value, "spaced value") << "surrounding spaces and tabs are not part of the value";
  EXPECT_EQ(r.find("HOST"), "example") << "names compare case-insensitively";
  EXPECT_EQ(r.find("x-long"), "spaced value");
  EXPECT_FALSE(r.find("missing").has_value());
  EXPECT_FALSE(r.has_body());
  EXPECT_EQ(r.head_size(), in.consumed());
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(p.parse(in), status::need_more);
  EXPECT_EQ(p.requests(), 1u);
}

TEST(http_request_parser, absolute_form_target) {
  segment_pool pool(pool_options());
  buffer_chain in = chain_of(pool, {"GET http://h:8080/p/q?z#f HTTP/1.1\r\nHost: h\r\n\r\n"});
  request_parser p;
  ASSERT_EQ(p.parse(in), status::request);
  EXPECT_EQ(p.current().path(), "/p/q");
  EXPECT_EQ(p.current().query(), "z");
}

TEST(http_request_parser, every_split_point_of_pipelined_gets) {
  const std::string stream =
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /x?q HTTP/1.1\r\nHost: b\r\nAccept: */*\r\n\r\n"
      "HEAD /y HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
  seen head = get("/y", "Host=c;Connection=close;");
  head.method = "HEAD";
  head.keep_alive = false;
  expect_every_split(stream, {get("/", "Host=a;"), get("/x?q", "Host=b;Accept=*/*;"), head});
}

TEST(http_request_parser, content_length_body_at_every_split_point) {
  const std::string stream =
      "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  seen post = get("/up", "Host=h;Content-Length=11;");
  post.method = "POST";
  post.body = "hello world";
  expect_every_split(stream, {post, get("/next", "Host=h;")});
}

TEST(http_request_parser, chunked_body_with_extensions_and_trailers_at_every_split_point) {
  const std::string stream =
      "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer-Field: t\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  seen put = get("/c", "Host=h;Transfer-Encoding=chunked;");
  put.method = "PUT";
  put.body = "Wikipedia";
  expect_every_split(stream, {put, get("/", "Host=h;")});
}

TEST(http_request_parser, chunked_without_data) {
  seen post = get("/", "Host=h;Transfer-Encoding=chunked;");
  post.method = "POST";
  expect_every_split("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {post});
}

TEST(http_request_parser, bodies_share_the_input_segments) {
  segment_pool pool(pool_options());
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
  buffer_chain in = chain_of(pool, {head + "abcde"});
  const std::byte* bytes = in.segments().front().data();
  request_parser p;
  ASSERT_EQ(p.parse(in), status::request);
  const buffer_chain& body = p.current().body();
  EXPECT_EQ(contents(body), "abcde");
  EXPECT_EQ(body.segments().front().data(), bytes + head.size()) << "the body points into the input segment";
  EXPECT_EQ(pool.segments_in_use(), 1u);

  const std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n";
  buffer_chain in2 = chain_of(pool, {chunked});
  const std::byte* bytes2 = in2.segments().front().data();
  ASSERT_EQ(p.parse(in2), status::request);
  EXPECT_EQ(contents(p.current().body()), "xyz");
  EXPECT_EQ(p.current().body().segments().front().data(), bytes2 + chunked.find("xyz"));
}

TEST(http_request_parser, body_arrives_later_and_leaves_the_input_empty) {
  segment_pool pool(pool_options());
  request_parser p;
  buffer_chain in = chain_of(pool, {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab"});
  EXPECT_EQ(p.parse(in), status::need_more);
  EXPECT_TRUE(in.empty()) << "head and body bytes so far left the input: they do not count against its limit";
  test::append_piece(pool, in, "cdef");
  ASSERT_EQ(p.parse(in), status::request);
  EXPECT_EQ(contents(p.current().body()), "abcdef");
  EXPECT_EQ(p.current().find("host"), "h") << "the head outlived the first parse call";
}

TEST(http_request_parser, keep_alive_rules) {
  segment_pool pool(pool_options());
  const std::vector<std::pair<std::string, bool>> cases = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
  };
  for (const auto& [text, keep] : cases) {
    request_parser p;
    buffer_chain in = chain_of(pool, {text});
    ASSERT_EQ(p.parse(in), status::request) << text;
    EXPECT_EQ(p.current().keep_alive(), keep) << text;
  }
}

TEST(http_request_parser, expect_continue_before_the_body) {
  segment_pool pool(pool_options());
  for (std::string framing : {"Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n"}) {
    request_parser p;
    buffer_chain in = chain_of(pool, {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n" + framing + "\r\n"});
    EXPECT_EQ(p.parse(in), status::expect_continue) << framing;
    EXPECT_EQ(p.parse(in), status::need_more);
    test::append_piece(pool, in, framing[0] == 'C' ? "abc" : "3\r\nabc\r\n0\r\n\r\n");
    ASSERT_EQ(p.parse(in), status::request);
    EXPECT_EQ(contents(p.current().body()), "abc");
  }
  // Without a body there is nothing to continue to.
  request_parser p;
  buffer_chain in = chain_of(pool, {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"});
  EXPECT_EQ(p.parse(in), status::request);
}

TEST(http_request_parser, trailers_are_not_headers) {
  segment_pool pool(pool_options());
  request_parser p;
  buffer_chain in = chain_of(
      pool, {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nHost: evil\r\n\r\n"});
  ASSERT_EQ(p.parse(in), status::request);
  EXPECT_EQ(p.current().header_count(), 2u);
  EXPECT_EQ(p.current().find("host"), "h");
}

// Parses `text` at once and returns the error status (0 if none).
int error_of(const std::string& text, const limits& l = {}) {
  segment_pool pool(pool_options());
  request_parser p(l);
  buffer_chain in(&pool);
  for (std::size_t at = 0; at < text.size(); at += 4000) test::append_piece(pool, in, text.substr(at, 4000));
  outcome o = parse_all(p, in);
  if (o.last != status::error) return 0;
  EXPECT_EQ(p.parse(in), status::error) << "a failed parser stays failed";
  EXPECT_FALSE(p.error_reason().empty());
  return o.error;
}

TEST(http_request_parser, malformed_requests_are_400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0) << "the well-formed base case";
  EXPECT_EQ(error_of("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTX/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nBad Name: v\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400)
      << "space before the colon: RFC 9112 5.1 requires a 400 (libhttp-parser's lenient build reads it as chunked)";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\r\n"), 400) << "HTTP/1.1 without Host";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400)
      << "both framings: a request smuggling vector";
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
}

TEST(http_request_parser, request_line_limit_is_414_even_before_it_ends) {
  limits l;
  l.max_request_line = 100;
  EXPECT_EQ(error_of("GET /" + std::string(80, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", l), 0);
  EXPECT_EQ(error_of("GET /" + std::string(120, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", l), 414);
  EXPECT_EQ(error_of("GET /" + std::string(120, 'a'), l), 414) << "no CRLF yet: refused without waiting";
}

TEST(http_request_parser, head_limits_are_431_even_before_the_head_ends) {
  limits l;
  l.max_header_bytes = 200;
  l.max_headers = 3;
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", l), 0);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l), 431) << "four fields";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(300, 'v') + "\r\n\r\n", l), 431);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(300, 'v'), l), 431) << "unfinished head";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(170, 'v') + "\r\n\r\n", l), 431)
      << "each field fits, the head does not";
  // libhttp-parser's own cap (80 KiB) also gives 431 when ours is set higher.
  l.max_header_bytes = 200 * 1024;
  l.max_headers = 10000;
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  while (many.size() < 90 * 1024) many += "X-Filler: " + std::string(100, 'f') + "\r\n";
  EXPECT_EQ(error_of(many + "\r\n", l), 431);
}

TEST(http_request_parser, body_limits_are_413_before_the_body_arrives) {
  limits l;
  l.max_body = 10;
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", l), 0);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", l), 413);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999\r\n\r\n", l), 413);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", l), 0);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n", l), 413)
      << "the chunk size line alone is enough to refuse";
}

TEST(http_request_parser, endless_chunk_framing_does_not_fill_the_input) {
  segment_pool pool(pool_options());
  request_parser p;
  buffer_chain in = chain_of(pool, {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;"});
  EXPECT_EQ(p.parse(in), status::need_more);
  for (int i = 0; i < 100; ++i) {
    test::append_piece(pool, in, std::string(1000, 'e'));
    if (p.parse(in) != status::need_more) break;
    EXPECT_TRUE(in.empty()) << "parsed framing was dropped from the input";
  }
}

TEST(http_request_parser, valid_requests_before_a_malformed_one_are_answered) {
  segment_pool pool(pool_options());
  request_parser p;
  buffer_chain in = chain_of(pool, {"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nBAD\r\n\r\n"});
  outcome o = parse_all(p, in);
  EXPECT_EQ(o.requests.size(), 2u);
  EXPECT_EQ(o.last, status::error);
  EXPECT_EQ(o.error, 400);
}

TEST(http_request_parser, reset_starts_over) {
  segment_pool pool(pool_options());
  request_parser p;
  buffer_chain bad = chain_of(pool, {"NOPE\r\n\r\n"});
  EXPECT_EQ(p.parse(bad), status::error);
  p.reset();
  buffer_chain good = chain_of(pool, {"GET / HTTP/1.1\r\nHost: h\r\n\r\n"});
  EXPECT_EQ(p.parse(good), status::request);
  EXPECT_EQ(p.error_status(), 0);
}

// ---- streaming (body_mode::stream) ----------------------------------------------

// What a streaming parse of a whole stream hands out, as text: "H:<target>"
// for a head, the body bytes in order, "R:<target>" at the end of a request.
struct streamed {
  std::vector<std::string> events;
  std::string body;             // every body byte of every request, in order
  std::size_t body_events = 0;  // status::body results
  status last = status::need_more;
  int error = 0;
};

void stream_parse(request_parser& p, buffer_chain& in, streamed& out) {
  for (;;) {
    out.last = p.parse(in);
    request& r = p.current();
    switch (out.last) {
      case status::head:
        out.events.push_back("H:" + std::string(r.target()) + (r.chunked() ? ":chunked" : ""));
        break;
      case status::body:
        ++out.body_events;
        EXPECT_FALSE(r.body().empty()) << "status::body brings bytes";
        out.body += contents(r.body());
        r.body().clear();
        break;
      case status::request:
        out.body += contents(r.body());
        r.body().clear();
        out.events.push_back("R:" + std::string(r.target()));
        break;
      case status::expect_continue:
        out.events.push_back("100");
        break;
      default:
        out.error = p.error_status();
        return;
    }
  }
}

void expect_streamed_at_every_split(const std::string& stream, const std::vector<std::string>& events,
                                    const std::string& body) {
  segment_pool pool(pool_options());
  for (const auto& pieces : splits(stream)) {
    request_parser p({}, request_parser::body_mode::stream);
    buffer_chain in(&pool);
    streamed got;
    for (const auto& piece : pieces) {
      test::append_piece(pool, in, piece);
      stream_parse(p, in, got);
      ASSERT_EQ(got.last, status::need_more) << got.error;
    }
    EXPECT_EQ(got.events, events) << "first piece " << pieces[0].size() << " bytes";
    EXPECT_EQ(got.body, body) << "first piece " << pieces[0].size() << " bytes";
    EXPECT_TRUE(in.empty());
    in.clear();
    pool.reset_scratch();
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(http_request_parser, streaming_hands_out_head_then_content_length_body_at_every_split_point) {
  expect_streamed_at_every_split(
      "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello worldGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
      {"H:/up", "R:/up", "R:/next"}, "hello world");
}

TEST(http_request_parser, streaming_hands_out_chunked_bodies_decoded_at_every_split_point) {
  expect_streamed_at_every_split(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
      "GET /after HTTP/1.1\r\nHost: h\r\n\r\n",
      {"H:/c:chunked", "R:/c", "R:/after"}, "hello world");
}

TEST(http_request_parser, streaming_gives_body_pieces_as_they_arrive_and_buffers_nothing) {
  segment_pool pool(pool_options());
  request_parser p({}, request_parser::body_mode::stream);
  buffer_chain in = chain_of(pool, {"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n"});
  ASSERT_EQ(p.parse(in), status::head);
  EXPECT_EQ(p.current().target(), "/big");
  EXPECT_EQ(p.parse(in), status::need_more);
  std::string sent;
  for (int i = 0; i < 3; ++i) {
    std::string piece(1000, static_cast<char>('a' + i));
    sent += piece;
    test::append_piece(pool, in, piece);
    ASSERT_EQ(p.parse(in), i < 2 ? status::body : status::request) << i;
    EXPECT_EQ(contents(p.current().body()), piece) << "each piece as it came";
    EXPECT_TRUE(in.empty()) << "nothing waits in the input";
    p.current().body().clear();
  }
  EXPECT_EQ(p.parse(in), status::need_more);
}

TEST(http_request_parser, streaming_reports_the_head_before_expect_continue) {
  segment_pool pool(pool_options());
  request_parser p({}, request_parser::body_mode::stream);
  buffer_chain in = chain_of(pool, {"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"});
  streamed got;
  stream_parse(p, in, got);
  EXPECT_EQ(got.events, (std::vector<std::string>{"H:/e", "100"}));
  test::append_piece(pool, in, "ok");
  stream_parse(p, in, got);
  EXPECT_EQ(got.events.back(), "R:/e");
  EXPECT_EQ(got.body, "ok");
}

TEST(http_request_parser, streaming_still_enforces_the_body_limit) {
  segment_pool pool(pool_options());
  limits l;
  l.max_body = 8;
  {
    request_parser p(l, request_parser::body_mode::stream);
    buffer_chain in = chain_of(pool, {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n"});
    EXPECT_EQ(p.parse(in), status::error);
    EXPECT_EQ(p.error_status(), 413);
  }
  {
    request_parser p(l, request_parser::body_mode::stream);
    buffer_chain in = chain_of(pool, {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nabcde\r\n",
                                      "5\r\nfghij\r\n"});
    streamed got;
    stream_parse(p, in, got);
    EXPECT_EQ(got.last, status::error);
    EXPECT_EQ(got.error, 413);
    EXPECT_EQ(got.body, "abcde") << "pieces within the limit went out before the one over it";
  }
}

TEST(http_request_parser, closing_responses_are_complete) {
  for (int code : {400, 413, 414, 431, 503, 505}) {
    std::string_view r = closing_response(code);
    EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 " + std::to_string(code)) << code;
    EXPECT_NE(r.find("Connection: close\r\n"), std::string_view::npos);
    EXPECT_NE(r.find(reason_phrase(code)), std::string_view::npos);
  }
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

// The status a stream ends with when it arrives split at every point (one
// piece after another, a parse after each): the same for every split, or -1.
int error_at_every_split(const std::string& stream) {
  segment_pool pool(pool_options());
  int seen_status = -2;
  for (const auto& pieces : splits(stream)) {
    request_parser p({}, request_parser::body_mode::stream);
    buffer_chain in(&pool);
    int got = 0;
    for (const auto& piece : pieces) {
      test::append_piece(pool, in, piece);
      for (;;) {
        const status st = p.parse(in);
        if (st == status::body) p.current().body().clear();
        if (st == status::need_more || st == status::error) break;
      }
      if (p.error_status() != 0) break;
    }
    got = p.error_status();
    in.clear();
    pool.reset_scratch();
    if (seen_status == -2) seen_status = got;
    if (seen_status != got) return -1;
  }
  return seen_status;
}

// Issue 15 item 5: RFC 9112 7.1 and 6.1 framing that libhttp-parser's
// lenient build accepts. Each is refused at every split point, in both modes.
TEST(http_request_parser, lenient_chunk_framing_is_400) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(error_at_every_split(head + "5;a=b\r\nhello\r\n0\r\n\r\n"), 0) << "the well-formed base case";
  EXPECT_EQ(error_at_every_split(head + "5 ;a=\"q\"\r\nhello\r\n0\r\nT: v\r\n\r\n"), 0) << "BWS, quoted ext, trailer";
  EXPECT_EQ(error_at_every_split(head + "5;a\nb\r\nhello\r\n0\r\n\r\n"), 400) << "bare LF in a chunk extension";
  EXPECT_EQ(error_at_every_split(head + "5\r\nhelloXY0\r\n\r\n"), 400) << "two bytes where CRLF must follow the data";
  EXPECT_EQ(error_at_every_split(head + "5\r\nhello\rX0\r\n\r\n"), 400);
  EXPECT_EQ(error_at_every_split(head + "5\nhello\r\n0\r\n\r\n"), 400) << "bare LF ending the size line";
  EXPECT_EQ(error_at_every_split(head + "5\r\nhello\r\n0\r\n\n"), 400) << "bare LF as the final line";
  EXPECT_EQ(error_at_every_split(head + "0\r\nT\x01: v\r\n\r\n"), 400) << "a control byte in a trailer";
  EXPECT_EQ(error_at_every_split("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 400)
      << "Transfer-Encoding in HTTP/1.0";
  EXPECT_EQ(error_at_every_split("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501)
      << "a coding we would not re-frame";
  EXPECT_EQ(error_at_every_split("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            501);
}

// Issue 15 item 6: targets and Host values a proxy must not forward.
TEST(http_request_parser, bad_targets_and_hosts_are_400) {
  EXPECT_EQ(error_of("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "HTAB in the target";
  EXPECT_EQ(error_of("GET /a\fb HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "FF in the target";
  EXPECT_EQ(error_of("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "bytes above 0x7F in the target";
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost:\r\n\r\n"), 400) << "empty Host";
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: a:80x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: :80\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /a HTTP/1.1\r\nHost: a@b\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET http://a b/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "absolute-form without a host";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400) << "bare CR in a value";
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"), 400) << "DEL in a value";
  for (const char* ok : {"h", "a.example:8080", "[::1]:80", "[::1]", "127.0.0.1", "xn--n3h.example", "a-b_c~d"}) {
    EXPECT_EQ(error_of(std::string("GET /p?q=1 HTTP/1.1\r\nHost: ") + ok + "\r\n\r\n"), 0) << ok;
  }
  EXPECT_EQ(error_of("GET http://a.example:81/p HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
}

}  // namespace
}  // namespace sluice::http
