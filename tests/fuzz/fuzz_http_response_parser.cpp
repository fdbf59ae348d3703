// libFuzzer target: http::response_parser with fuzzed limits, a fuzzed
// request method (HEAD or not) and a stream of responses. The stream is
// parsed with all of it buffered and arriving in pieces: the responses
// (status, fields, body bytes as handed on) and whether it ends in an error
// must be the same; a body handed on must be exactly the bytes between its
// head and the next response; nothing may leak.
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "sluice/core/http/response_parser.hpp"

namespace {

using namespace sluice;

struct run {
  std::vector<std::string> responses;
  std::string current;
  bool failed = false;
  bool ended = false;  // a response ended its connection: nothing after it is parsed
};

void parse_some(http::response_parser& p, buffer_chain& in, buffer_chain& out, run& r, http::verb method,
                const http::limits& l) {
  while (!r.ended) {
    const auto st = p.parse(in, out);
    switch (st) {
      case http::response_parser::status::head:
        SLUICE_FUZZ_CHECK(p.head_size() <= l.max_header_bytes);
        SLUICE_FUZZ_CHECK(p.header_count() <= l.max_headers);
        SLUICE_FUZZ_CHECK(p.status_code() >= 100 && p.status_code() <= 599);
        r.current = std::to_string(p.status_code()) + " " + std::string(p.reason());
        for (std::size_t i = 0; i < p.header_count(); ++i) {
          r.current += "|" + std::string(p.header(i).name) + ":" + std::string(p.header(i).value);
        }
        r.current += "|body=";
        continue;
      case http::response_parser::status::body:
      case http::response_parser::status::complete:
        if (method == http::verb::head) SLUICE_FUZZ_CHECK(out.empty());
        out.for_each_piece([&](std::string_view piece) {
          r.current += piece;
          return true;
        });
        out.clear();
        if (st == http::response_parser::status::complete) {
          r.responses.push_back(r.current + (p.keep_alive() ? " ka" : " close"));
          if (!p.keep_alive()) {
            r.ended = true;  // nothing may follow on this connection
            return;
          }
          if (!p.informational()) p.expect(method);
        }
        continue;
      case http::response_parser::status::error:
        r.failed = true;
        return;
      case http::response_parser::status::need_more:
        return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  http::limits l;
  l.max_header_bytes = 16 + in.number(2) % 4096;
  l.max_headers = 1 + in.byte() % 32;
  const http::verb method = in.byte() % 4 == 0 ? http::verb::head : http::verb::get;
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  const std::string_view stream = in.rest();

  segment_pool pool(fuzz::pool_options());
  run whole;
  {
    http::response_parser p(l);
    p.expect(method);
    buffer_chain chain(&pool), out(&pool);
    for (std::string_view piece : fuzz::cut(stream, seed)) fuzz::append(pool, chain, piece);
    parse_some(p, chain, out, whole, method, l);
  }
  run trickle;
  {
    http::response_parser p(l);
    p.expect(method);
    buffer_chain chain(&pool), out(&pool);
    for (std::string_view piece : fuzz::cut(stream, seed * 2654435761u)) {
      fuzz::append(pool, chain, piece);
      parse_some(p, chain, out, trickle, method, l);
      chain.release();
      pool.reset_scratch();
      if (trickle.failed || trickle.ended) break;
    }
  }
  SLUICE_FUZZ_CHECK(whole.responses == trickle.responses);
  SLUICE_FUZZ_CHECK(whole.failed == trickle.failed);
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
  return 0;
}
