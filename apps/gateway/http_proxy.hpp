#pragma once
// L7 proxying (mode http) on one loop: HTTP/1.1 requests are parsed with the
// same parser and limits as sluice-httpd (streaming mode), routed by Host and
// path prefix to a pool, and sent to an upstream over a keep-alive
// connection from this loop's pool (or a new one). Heads and framing go out
// as http_rewrite.hpp writes them from our own parse, never as received.
//
// One exchange at a time per client connection: pipelined requests wait in
// the input (bounded by the input limit) and are answered in order. Bodies
// stream both ways through bounded buffers, decoded and re-chunked when
// chunked, with the same watermark backpressure as the tcp proxy.
//
// Errors: no upstream reachable (after retries) or one failing before its
// response: 502; no response head within the response timeout: 504; an
// upstream failing in the middle of a response: the client is reset (it
// never gets a wrong or silently truncated body); a stale keep-alive
// connection closed by the upstream before answering is retried once on a
// fresh connection when the request can be replayed (no body). Malformed
// requests: 400 (or 413/414/431) and that client connection closes.
//
// Sessions (sluice::sessions): every client connection has a `session`, every
// upstream connection an `upstream` session, which serves one client session
// at a time (attached), waits in the keep-alive pool (parked, see
// sluice::keepalive_pool), or is on its way out (released). An upstream
// connection keeps its handler and session all its life; only what it is
// attached to changes. The parsers and head buffers, whose constructors
// allocate, are lent to a session for its connection's life from a per-loop
// free list (`exchange_buffers`), so that steady traffic allocates nothing.
//
// TLS (tls_link.hpp): a listener with certificates terminates TLS on its
// client connections, a pool with tls = true gets TLS on its upstream
// connections (kept alive as TLS connections). The code above runs on
// plaintext: every path that reads or writes a client or upstream
// connection does so inside a tls_link scope of that connection; when a
// side's records pass its high-water mark after a scope, the other side is
// held back (hold_back) as it is for plaintext. Routes may match the SNI
// name the client sent (route sni). An upstream whose handshake or
// certificate check fails ends its exchange with 502, as any upstream
// failure before a response does.
//
// Owner core only.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/http/response_parser.hpp"
#include "sluice/core/keepalive_pool.hpp"
#include "sluice/core/session.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "tls_link.hpp"

namespace sluice::gateway {

class shard;

class http_proxy {
 public:
  explicit http_proxy(shard& s);
  ~http_proxy();
  http_proxy(const http_proxy&) = delete;
  http_proxy& operator=(const http_proxy&) = delete;

  // The handler for downstream connections of listener `l` (TLS with the
  // loop's context `tls` when not null).
  [[nodiscard]] std::unique_ptr<handler> make_front(const listener_config& l, tls::context* tls);
  // The loop stops: clients between requests are closed now, the others
  // after their current response; pooled upstream connections are closed.
  void stop() noexcept;

  struct session;   // a client connection's
  struct upstream;  // an upstream connection's
  // What the sessions of one listener share.
  struct front_context {
    http_proxy* proxy = nullptr;
    const listener_config* listener = nullptr;
    tls::context* tls = nullptr;  // this loop's server context; null: plaintext
  };

 private:
  struct exchange_buffers;

  // The exchange's steps, in order.
  void serve(session& s, connection& d) noexcept;
  // serve() again after an exchange ended outside of serve() (timers, upstream events).
  void resume(session& s, connection& d) noexcept;
  void begin(session& s, connection& d, bool body_follows) noexcept;
  void acquire_upstream(session& s, connection& d) noexcept;
  void attach(session& s, connection& u, bool reused) noexcept;
  void send_request(session& s, connection& u) noexcept;
  void pump_request_body(session& s, connection& d) noexcept;
  // A piece of request body to the upstream (or queued while connecting);
  // `last` ends a chunked body.
  void forward_body(session& s, buffer_chain& piece, bool last) noexcept;
  void relay_response(session& s, connection& u) noexcept;
  void finish_exchange(session& s, connection& u, connection& d) noexcept;
  // An exchange that cannot produce its response: `status` (502, 504) to the
  // client if nothing was sent yet, else a reset.
  void fail_exchange(session& s, connection& d, int status, std::string_view why) noexcept;
  // The response body bytes in s.body to the client, in the response's
  // framing; `last` ends it.
  [[nodiscard]] bool send_response_body(session& s, connection& d, bool last) noexcept;
  // Answers the current request with an error of our own.
  void respond(session& s, connection& d, int status, std::string_view body) noexcept;
  // Lets go of the session's upstream connection: pooled, or closed/aborted.
  void detach_upstream(session& s, bool abort) noexcept;
  // The stale keep-alive case: retries once on a fresh connection.
  [[nodiscard]] bool retry_stale(session& s, connection& d) noexcept;
  void upstream_ended(session& s, close_reason why) noexcept;
  // The client connection closed: its upstream is let go, its buffers go
  // back to the free list.
  void end_session(session& s) noexcept;
  // Parsers and head buffers for a new session (nullptr: out of memory), and
  // back (reset) when its connection closed.
  [[nodiscard]] exchange_buffers* lend_buffers() noexcept;
  void return_buffers(exchange_buffers* x) noexcept;
  [[nodiscard]] std::size_t route(const listener_config& l, std::string_view sni, std::string_view host,
                                  std::string_view path) const noexcept;
  // After a scope: a side whose records are above high water holds the
  // other side back (its on_writable lets it go).
  void hold_back(session& s) noexcept;
  // The TLS link of upstream connection u (null if not ours).
  [[nodiscard]] tls_link* link_of(connection& u) noexcept;

  shard& shard_;
  sessions<upstream, http_proxy*> back_;  // every upstream connection, all its life
  keepalive_pool keepalive_;              // an upstream id per pool member (member::keepalive)
  std::vector<std::unique_ptr<exchange_buffers>> buffers_;  // all made so far
  exchange_buffers* free_buffers_ = nullptr;                // those not lent
  std::vector<session*> live_;  // sessions with a client connection (for stop)
};

}  // namespace sluice::gateway
