// libFuzzer target: sluice-gateway's HTTP path without sockets. A stream of
// requests (or of responses) is parsed as the proxy parses it (streaming),
// each message is written out as the proxy writes it (http_rewrite: head,
// framing, re-chunked body), and what would go to the next hop is parsed
// again by a fresh parser. Whatever the input, the next hop must read
// exactly the message the proxy read: one message, the same method or
// status, the same body bytes, the Host the proxy routed by, no framing
// field of the input's, nothing left over. This is where a forwarded
// message could be framed differently on each side (request smuggling,
// response splitting).
#include <string>

#include "fuzz_input.hpp"
#include "http_rewrite.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/http/response_parser.hpp"

namespace {

using namespace sluice;

http::limits next_hop_limits() {
  http::limits l;
  l.max_request_line = 1 << 16;
  l.max_header_bytes = 1 << 16;
  l.max_headers = 1000;
  l.max_body = ~std::uint64_t{0};
  return l;
}

std::string text(const buffer_chain& c) {
  std::string s;
  c.for_each_piece([&](std::string_view p) {
    s += p;
    return true;
  });
  return s;
}

void append_piece(std::string& wire, std::string_view piece, bool chunked, bool last) {
  if (!chunked) {
    wire += piece;
    return;
  }
  const gateway::chunk_frame f = gateway::frame_chunk(piece.size(), last);
  wire.append(f.head()).append(piece).append(f.tail);
}

// The next hop reads `wire`: exactly one request, equal to what we read.
void check_request(segment_pool& pool, const std::string& wire, const std::string& method, const std::string& host,
                   const std::string& body, bool allow_underscores) {
  http::request_parser p(next_hop_limits());
  buffer_chain in(&pool);
  fuzz::append(pool, in, wire);
  const auto st = p.parse(in);
  SLUICE_FUZZ_CHECK(st == http::request_parser::status::request);
  const http::request& r = p.current();
  SLUICE_FUZZ_CHECK(r.method_name() == method);
  SLUICE_FUZZ_CHECK(text(r.body()) == body);
  SLUICE_FUZZ_CHECK(std::string(r.find("host").value_or("")) == host);
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    SLUICE_FUZZ_CHECK(allow_underscores || r.header(i).name.find('_') == std::string_view::npos);
  }
  SLUICE_FUZZ_CHECK(in.empty());  // nothing the next hop would read as another request
  in.clear();
  pool.reset_scratch();
}

// One message on its way through the proxy.
struct exchange {
  bool started = false;
  std::string wire;  // what the next hop gets
  std::string method, host, body;
  int status = 0;
  bool chunked = false;
  gateway::response_framing framing;
};

// The proxy's request side over `in`, as http_proxy does it.
void drive_requests(segment_pool& pool, http::request_parser& p, buffer_chain& in, exchange& x, bool allow_underscores) {
  const auto start = [&](http::request& r) {
    x = {};
    x.started = true;
    gateway::write_request_head(x.wire, r, {.allow_underscores = allow_underscores, .client_address = "192.0.2.1"});
    x.method = r.method_name();
    x.host = gateway::request_authority(r);
    x.chunked = r.chunked();
  };
  for (;;) {
    switch (p.parse(in)) {
      case http::request_parser::status::head:
        start(p.current());
        continue;
      case http::request_parser::status::body: {
        const std::string piece = text(p.current().body());
        p.current().body().clear();
        x.body += piece;
        append_piece(x.wire, piece, x.chunked, false);
        continue;
      }
      case http::request_parser::status::request: {
        if (!x.started) start(p.current());
        const std::string piece = text(p.current().body());
        p.current().body().clear();
        x.body += piece;
        if (x.chunked || !piece.empty()) append_piece(x.wire, piece, x.chunked, true);
        check_request(pool, x.wire, x.method, x.host, x.body, allow_underscores);
        x = {};
        continue;
      }
      case http::request_parser::status::expect_continue:
        continue;
      case http::request_parser::status::need_more:
      case http::request_parser::status::error:
        return;
    }
  }
}

// The client reads `wire`: exactly the response the proxy read.
void check_response(segment_pool& pool, const exchange& x, http::verb method) {
  http::response_parser p(next_hop_limits());
  p.expect(method);
  buffer_chain in(&pool), out(&pool);
  fuzz::append(pool, in, x.wire);
  SLUICE_FUZZ_CHECK(p.parse(in, out) == http::response_parser::status::head);
  SLUICE_FUZZ_CHECK(p.status_code() == x.status);
  SLUICE_FUZZ_CHECK(p.find("transfer-encoding").has_value() == x.framing.chunked);
  auto st = p.parse(in, out);
  while (st == http::response_parser::status::body) st = p.parse(in, out);
  if (st == http::response_parser::status::need_more && x.framing.close) st = p.finish(out);
  SLUICE_FUZZ_CHECK(st == http::response_parser::status::complete);
  SLUICE_FUZZ_CHECK(text(out) == x.body);
  SLUICE_FUZZ_CHECK(in.empty());  // nothing the client would read as another response
  SLUICE_FUZZ_CHECK(!p.keep_alive() == x.framing.close);
  in.clear();
  out.clear();
  pool.reset_scratch();
}

// The proxy's response side over `in`, as http_proxy does it; `ended` when
// the stream (the upstream connection) has ended.
bool drive_responses(segment_pool& pool, http::response_parser& p, buffer_chain& in, exchange& x, http::verb method,
                     bool client_http10, bool ended) {
  buffer_chain out(&pool);
  for (;;) {
    auto st = p.parse(in, out);
    if (st == http::response_parser::status::need_more && ended) st = p.finish(out);
    switch (st) {
      case http::response_parser::status::head:
        if (p.informational()) continue;  // its head goes on alone; the final response follows
        x = {};
        x.started = true;
        x.status = p.status_code();
        x.framing = gateway::frame_response(p, client_http10, false);
        gateway::write_response_head(x.wire, p, x.framing, client_http10);
        continue;
      case http::response_parser::status::body:
      case http::response_parser::status::complete: {
        const bool last = st == http::response_parser::status::complete;
        if (last && p.informational()) continue;
        const std::string piece = text(out);
        out.clear();
        x.body += piece;
        if (x.framing.chunked && (last || !piece.empty())) {
          append_piece(x.wire, piece, true, last);
        } else {
          x.wire += piece;
        }
        if (!last) continue;
        check_response(pool, x, method);
        x = {};
        if (!p.keep_alive()) return false;
        p.expect(method);
        continue;
      }
      case http::response_parser::status::need_more:
        return true;
      case http::response_parser::status::error:
        return false;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t options = in.byte();
  http::limits l;
  l.max_header_bytes = 64 + in.number(2) % 4096;
  l.max_headers = 1 + in.byte() % 32;
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  const std::string_view stream = in.rest();

  segment_pool pool(fuzz::pool_options());
  {
    buffer_chain chain(&pool);
    exchange x;
    if ((options & 1) == 0) {
      http::request_parser p(l, http::request_parser::body_mode::stream);
      for (std::string_view piece : fuzz::cut(stream, seed)) {
        fuzz::append(pool, chain, piece);
        drive_requests(pool, p, chain, x, (options & 2) != 0);
      }
    } else {
      const http::verb method = (options & 4) != 0 ? http::verb::head : http::verb::get;
      http::response_parser p(l);
      p.expect(method);
      bool going = true;
      for (std::string_view piece : fuzz::cut(stream, seed)) {
        fuzz::append(pool, chain, piece);
        going = drive_responses(pool, p, chain, x, method, (options & 8) != 0, false);
        if (!going) break;
      }
      if (going) (void)drive_responses(pool, p, chain, x, method, (options & 8) != 0, true);
    }
    chain.release();
  }
  pool.reset_scratch();
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
  return 0;
}
