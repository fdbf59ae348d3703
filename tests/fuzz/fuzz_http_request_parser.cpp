// libFuzzer target: http::request_parser with fuzzed limits. The same stream
// is parsed with all of it buffered and arriving in pieces: the requests
// handed out (method, target, fields, body, keep-alive) must be the same, and
// so must whether it ends in an error. (The error status itself may differ:
// a limit can be noticed before a later syntax error when bytes trickle in.)
// Streaming mode must hand out the same requests, its bodies in pieces.
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "sluice/core/http/request_parser.hpp"

namespace {

using namespace sluice;

struct run {
  std::vector<std::string> requests;
  bool failed = false;
};

// A request as text: its head, then its body, then whether it keeps the
// connection (known only at its end).
std::string head_text(const http::request& r) {
  std::string s(r.method_name());
  s += ' ';
  s += r.target();
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    s += '|';
    s += r.header(i).name;
    s += ':';
    s += r.header(i).value;
  }
  return s + "|body=";
}

void add_body(std::string& s, const http::request& r) {
  r.body().for_each_piece([&](std::string_view p) {
    s += p;
    return true;
  });
}

std::string flatten(const http::request& r) {
  std::string s = head_text(r);
  add_body(s, r);
  return s + (r.keep_alive() ? " ka" : " close");
}

// Streaming mode: the head, then the body in pieces, must add up to the
// same request as whole mode gives.
void stream_some(http::request_parser& p, buffer_chain& in, run& out, std::string& cur, bool& in_body) {
  for (;;) {
    const auto st = p.parse(in);
    http::request& r = p.current();
    switch (st) {
      case http::request_parser::status::head:
        SLUICE_FUZZ_CHECK(!in_body);
        cur = head_text(r);
        in_body = true;
        continue;
      case http::request_parser::status::body:
        SLUICE_FUZZ_CHECK(in_body && !r.body().empty());
        add_body(cur, r);
        r.body().clear();
        continue;
      case http::request_parser::status::request:
        if (!in_body) cur = head_text(r);
        add_body(cur, r);
        r.body().clear();
        out.requests.push_back(cur + (r.keep_alive() ? " ka" : " close"));
        in_body = false;
        continue;
      case http::request_parser::status::expect_continue:
        continue;
      case http::request_parser::status::error:
        out.failed = true;
        return;
      case http::request_parser::status::need_more:
        return;
    }
  }
}

void parse_some(http::request_parser& p, buffer_chain& in, run& out, const http::limits& l) {
  for (;;) {
    const auto st = p.parse(in);
    if (st == http::request_parser::status::request) {
      const http::request& r = p.current();
      SLUICE_FUZZ_CHECK(r.head_size() <= l.max_header_bytes);
      SLUICE_FUZZ_CHECK(r.header_count() <= l.max_headers);
      SLUICE_FUZZ_CHECK(r.body().size() <= l.max_body);
      out.requests.push_back(flatten(r));
      continue;
    }
    if (st == http::request_parser::status::expect_continue) continue;
    if (st == http::request_parser::status::error) {
      out.failed = true;
      const int code = p.error_status();
      SLUICE_FUZZ_CHECK(code == 400 || code == 413 || code == 414 || code == 431 || code == 501 || code == 503 || code == 505);
    }
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  http::limits l;
  l.max_request_line = 8 + in.byte() * 4;
  l.max_header_bytes = 16 + in.number(2) % 4096;
  l.max_headers = 1 + in.byte() % 32;
  l.max_body = in.number(2) % 4096;
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  const std::string_view stream = in.rest();

  segment_pool pool(fuzz::pool_options());
  run whole;
  {
    http::request_parser p(l);
    buffer_chain chain(&pool);
    for (std::string_view piece : fuzz::cut(stream, seed)) fuzz::append(pool, chain, piece);
    parse_some(p, chain, whole, l);
  }
  run trickle;
  {
    http::request_parser p(l);
    buffer_chain chain(&pool);
    for (std::string_view piece : fuzz::cut(stream, seed * 2654435761u)) {
      fuzz::append(pool, chain, piece);
      parse_some(p, chain, trickle, l);
      chain.release();
      pool.reset_scratch();
      if (trickle.failed) break;
    }
  }
  run streamed;
  {
    http::request_parser p(l, http::request_parser::body_mode::stream);
    buffer_chain chain(&pool);
    std::string cur;
    bool in_body = false;
    for (std::string_view piece : fuzz::cut(stream, seed * 40503u + 1)) {
      fuzz::append(pool, chain, piece);
      stream_some(p, chain, streamed, cur, in_body);
      chain.release();
      pool.reset_scratch();
      if (streamed.failed) break;
    }
  }
  SLUICE_FUZZ_CHECK(whole.requests == trickle.requests);
  SLUICE_FUZZ_CHECK(whole.failed == trickle.failed);
  SLUICE_FUZZ_CHECK(whole.requests == streamed.requests);
  SLUICE_FUZZ_CHECK(whole.failed == streamed.failed);
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
  return 0;
}
