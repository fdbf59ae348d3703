// libFuzzer target: http::request_parser with fuzzed limits. The same stream
// is parsed with all of it buffered and arriving in pieces: the requests
// handed out (method, target, fields, body, keep-alive) must be the same, and
// so must whether it ends in an error. (The error status itself may differ:
// a limit can be noticed before a later syntax error when bytes trickle in.)
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

std::string flatten(const http::request& r) {
  std::string s(r.method_name());
  s += ' ';
  s += r.target();
  s += r.keep_alive() ? " ka" : " close";
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    s += '|';
    s += r.header(i).name;
    s += ':';
    s += r.header(i).value;
  }
  s += "|body=";
  r.body().for_each_piece([&](std::string_view p) {
    s += p;
    return true;
  });
  return s;
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
      SLUICE_FUZZ_CHECK(code == 400 || code == 413 || code == 414 || code == 431 || code == 503 || code == 505);
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
  SLUICE_FUZZ_CHECK(whole.requests == trickle.requests);
  SLUICE_FUZZ_CHECK(whole.failed == trickle.failed);
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
  return 0;
}
