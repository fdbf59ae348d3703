#include "http_proxy.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "http_rewrite.hpp"
#include "shard.hpp"
#include "sluice/core/http/status.hpp"

namespace sluice::gateway {

using http::iequals;

// The parts of a session whose constructors allocate, lent for a client
// connection's life and reset when given back.
struct http_proxy::exchange_buffers {
  explicit exchange_buffers(const http::limits& l)
      : parser(l, http::request_parser::body_mode::stream), response(l) {
    head.reserve(1024);
    out_head.reserve(1024);
  }
  http::request_parser parser;
  http::response_parser response;
  std::string head;      // the request head as sent upstream (kept for a retry)
  std::string out_head;  // the response head as sent to the client
  exchange_buffers* next_free = nullptr;
};

struct http_proxy::session {
  enum class phase : std::uint8_t { idle, connecting, exchanging };

  session(front_context& f, connection&) noexcept
      : proxy(f.proxy), listener(f.listener), tls_ctx(f.tls), buffers(f.proxy->lend_buffers()) {
    header_timer.bind<&session::header_expired>(this);
    response_timer.bind<&session::response_expired>(this);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  http_proxy* proxy;
  const listener_config* listener;
  tls::context* tls_ctx;      // the listener's TLS context on this loop (null: plaintext)
  tls_link tls;               // TLS terminated on the client connection
  exchange_buffers* buffers;  // nullptr: none could be made (the connection closes)
  connection_handle down;
  connection_handle up;
  buffer_chain pending;      // request bytes waiting for the upstream connection
  buffer_chain body;         // response body bytes on their way to the client
  timer header_timer;        // the request head must be complete in time
  timer response_timer;      // the upstream must start answering in time
  phase state = phase::idle;
  std::size_t pool = 0;
  unsigned member = 0;
  std::uint64_t tried = 0;
  unsigned attempts = 0;
  std::uint64_t key = 0;     // the hash for hashing policies
  std::size_t live_index = SIZE_MAX;
  http::verb method = http::verb::get;
  time_point started{};
  time_point connect_started{};
  bool down_live = false;
  bool up_live = false;           // a connection is attached (connecting or open)
  bool up_open = false;
  bool up_reused = false;         // it came from the keep-alive pool
  bool fresh_only = false;        // a stale pooled connection failed: connect anew
  bool request_streaming = false; // the request has a body that is still arriving
  bool request_done = true;       // every request byte went (or is queued) upstream
  bool request_chunked = false;
  bool response_started = false;  // the client got the response head
  bool close_after = false;       // close the client connection after this response
  bool client_http10 = false;
  bool client_fin = false;        // the client will send nothing more
  response_framing out_framing;   // how the response goes to the client

  [[nodiscard]] http::request_parser& parser() noexcept { return buffers->parser; }
  [[nodiscard]] http::response_parser& response() noexcept { return buffers->response; }
  [[nodiscard]] std::string& head() noexcept { return buffers->head; }
  [[nodiscard]] std::string& out_head() noexcept { return buffers->out_head; }

  void header_expired() noexcept;
  void response_expired() noexcept;

  // The client connection's callbacks. A session starts from nothing (its
  // constructor) for every connection, and ends with it (on_close, through
  // http_proxy::end_session), whatever ended it.
  void on_open(connection& d) noexcept;
  void on_data(connection& d) noexcept;
  void on_writable(connection& d) noexcept;
  void on_peer_shutdown(connection& d) noexcept;
  void on_close(connection& d, close_reason why) noexcept;
  // on_data and on_peer_shutdown on plaintext.
  void data(connection& d) noexcept;
  void peer_shutdown(connection& d) noexcept;
};

// An upstream connection's session: attached to the client session it
// serves (`owner`), parked in the keep-alive pool (`parked_in`), or released
// (neither: closing, anything it says ends it).
struct http_proxy::upstream {
  upstream(http_proxy*& p, connection&) noexcept : proxy(p) {}
  http_proxy* proxy;
  session* owner = nullptr;  // the session detaches it before it ends
  keepalive_pool::upstream_id parked_in = keepalive_pool::none;
  tls_link tls;  // TLS originated on this connection (pool tls = true), for all its life

  void on_open(connection& u) noexcept;
  void on_data(connection& u) noexcept;
  void on_writable(connection& u) noexcept;
  void on_peer_shutdown(connection& u) noexcept;
  void on_close(connection& u, close_reason why) noexcept;
  // The upstream will send nothing more (FIN, or TLS close_notify).
  void ended(connection& u) noexcept;
  // Not attached: it has nothing to say that anyone would read.
  void leave(connection& u) noexcept {
    if (parked_in != keepalive_pool::none) (void)proxy->keepalive_.forget(parked_in, u);
    parked_in = keepalive_pool::none;
    tls_link::scope plain(tls, u);
    (void)u.input().skip(u.input().size());
    u.close();
  }
};

// ---- client connections --------------------------------------------------------

void http_proxy::session::on_open(connection& d) noexcept {
  shard& sh = proxy->shard_;
  down = d.handle();
  down_live = true;
  sh.stats().sessions.add();
  sh.stats().sessions_total.add();
  try {
    proxy->live_.push_back(this);
    live_index = proxy->live_.size() - 1;
  } catch (...) {
    return d.close(close_reason::resource_limit);
  }
  if (buffers == nullptr) return d.close(close_reason::resource_limit);
  if (sh.loop().stopping()) return d.close();
  // The first request must come within the header timeout, as every later
  // one must once its first byte came (serve()).
  sh.loop().timers().arm_after(header_timer, sh.cfg().timeouts.header);
  if (tls_ctx != nullptr) (void)tls.start_server(*tls_ctx, d, sh.stats().tls_client, sh.cfg().timeouts.handshake);
}

void http_proxy::session::on_data(connection& d) noexcept {
  if (tls.active()) {
    (void)tls.pump(d);
    if (!d.is_open() || tls.handshaking()) return;
  }
  {
    tls_link::scope plain(tls, d);
    data(d);
  }
  if (tls.peer_done() && d.is_open()) {
    tls_link::scope plain(tls, d);
    peer_shutdown(d);
  }
  proxy->hold_back(*this);
}

void http_proxy::session::data(connection& d) noexcept {
  if (state == phase::idle) {
    proxy->serve(*this, d);
  } else if (request_streaming && !request_done) {
    proxy->pump_request_body(*this, d);
  }
  // Otherwise: pipelined bytes wait for the current response.
}

void http_proxy::session::on_writable(connection&) noexcept {
  resume_held_back(proxy->shard_.paired(up_open, up));
}

void http_proxy::session::on_peer_shutdown(connection& d) noexcept {
  tls.transport_closed(d);
  if (tls.handshaking()) return d.close(close_reason::peer_closed);
  {
    tls_link::scope plain(tls, d);
    peer_shutdown(d);
  }
  proxy->hold_back(*this);
}

void http_proxy::session::peer_shutdown(connection& d) noexcept {
  client_fin = true;
  if (state == phase::idle) {
    proxy->serve(*this, d);  // requests still buffered are answered, then it closes
  } else if (request_streaming && !request_done) {
    proxy->pump_request_body(*this, d);
  } else {
    close_after = true;  // the response in progress still goes out
  }
}

void http_proxy::session::on_close(connection&, close_reason why) noexcept {
  tls.on_close(why);
  down_live = false;
  proxy->shard_.stats().sessions.sub();
  proxy->end_session(*this);
}

// ---- upstream connections ---------------------------------------------------------

void http_proxy::upstream::on_open(connection& u) noexcept {
  if (owner == nullptr) return leave(u);
  session& s = *owner;
  shard& sh = proxy->shard_;
  sh.upstream_connected(s.pool, s.member, s.connect_started);
  if (tls::context* t = sh.client_tls(s.pool)) {
    // The request is sealed once the handshake is done; a failure closes
    // u, and on_close answers 502.
    const pool_config& pc = sh.pool(s.pool).config();
    if (!tls.start_client(*t, u, sh.stats().tls_upstream, sh.cfg().timeouts.handshake, pc.tls_names[s.member],
                          pc.verify, sh.upstream_session(s.pool, s.member))) {
      return;
    }
  }
  connection* d = u.loop().get(s.down);
  std::optional<tls_link::scope> plain;
  if (d != nullptr) plain.emplace(s.tls, *d);
  proxy->attach(s, u, false);
  proxy->send_request(s, u);
}

void http_proxy::upstream::on_data(connection& u) noexcept {
  if (tls.active()) {
    (void)tls.pump(u);
    if (!u.is_open() || tls.handshaking()) return;
    // Records with no plaintext (a session ticket) while parked are no news.
    if (owner == nullptr && !tls.has_plaintext() && !tls.peer_done()) return;
  }
  if (owner == nullptr) return leave(u);  // an idle upstream has nothing to say
  session& s = *owner;
  {
    connection* d = u.loop().get(s.down);
    std::optional<tls_link::scope> plain;
    if (d != nullptr) plain.emplace(s.tls, *d);
    tls_link::scope plain_up(tls, u);
    proxy->relay_response(s, u);
  }
  if (tls.peer_done() && u.is_open()) ended(u);
  proxy->hold_back(s);
}

void http_proxy::upstream::on_writable(connection& u) noexcept {
  if (owner == nullptr) return;
  session& s = *owner;
  connection* d = u.loop().get(s.down);
  if (d != nullptr && d->reading_paused()) {
    d->resume_reading();
    (void)s.tls.pump(*d);  // records held while the plaintext was at its limit
    if (!d->is_open()) return;
    {
      tls_link::scope plain(s.tls, *d);
      proxy->pump_request_body(s, *d);
    }
    proxy->hold_back(s);
  }
}

void http_proxy::upstream::on_peer_shutdown(connection& u) noexcept {
  tls.transport_closed(u);
  if (tls.handshaking()) return u.close(close_reason::peer_closed);  // on_close answers 502
  ended(u);
}

void http_proxy::upstream::ended(connection& u) noexcept {
  if (owner == nullptr) return leave(u);
  session& s = *owner;
  http_proxy& p = *proxy;
  connection* d = u.loop().get(s.down);
  if (d == nullptr) return u.close();
  tls_link::scope plain(s.tls, *d);
  if (s.response_started && s.response().until_close()) {
    // The end of the stream is the end of this response.
    if (s.response().finish(s.body) == http::response_parser::status::complete) {
      return p.finish_exchange(s, u, *d);
    }
  }
  if (!s.response_started && p.retry_stale(s, *d)) return p.resume(s, *d);
  p.shard_.pool(s.pool).failed(s.member, p.shard_.loop().now());
  p.shard_.pool(s.pool).at(s.member).stats->failures.add();
  p.fail_exchange(s, *d, 502, "the upstream closed the connection before its response was complete");
  p.resume(s, *d);
}

void http_proxy::upstream::on_close(connection& u, close_reason why) noexcept {
  // A handshake that never finished (cut off, timed out) is an upstream
  // failure before any response, whatever the reason it closed with; the
  // link counts it by that reason (a reset is a truncation) first.
  const bool handshake_cut = tls.handshaking() && why != close_reason::aborted;
  tls.on_close(why);
  if (handshake_cut) why = close_reason::protocol_error;
  if (owner != nullptr) {
    session& s = *owner;
    connection* d = u.loop().get(s.down);
    std::optional<tls_link::scope> plain;
    if (d != nullptr && d->is_open()) plain.emplace(s.tls, *d);
    return proxy->upstream_ended(s, why);
  }
  if (parked_in != keepalive_pool::none) (void)proxy->keepalive_.forget(parked_in, u);
}

// ---- timers ---------------------------------------------------------------------

void http_proxy::session::header_expired() noexcept {
  connection* d = proxy->shard_.loop().get(down);
  if (d == nullptr || state != phase::idle) return;
  tls_link::scope plain(tls, *d);
  close_after = true;
  // A client that never asked gets no answer, only the close.
  if (d->input().empty()) return d->close(close_reason::idle_timeout);
  proxy->respond(*this, *d, 408, "the request head did not arrive in time\n");
}

void http_proxy::session::response_expired() noexcept {
  connection* d = proxy->shard_.loop().get(down);
  if (d == nullptr || state != phase::exchanging || response_started) return;
  tls_link::scope plain(tls, *d);
  upstream_pool& p = proxy->shard_.pool(pool);
  p.at(member).stats->timeouts.add();
  p.failed(member, proxy->shard_.loop().now());
  proxy->fail_exchange(*this, *d, 504, "the upstream did not answer in time");
  proxy->resume(*this, *d);
}

// ---- the proxy --------------------------------------------------------------------

http_proxy::http_proxy(shard& s) : shard_(s), back_(this), keepalive_(s.loop(), s.cfg().timeouts.idle) {
  // The keep-alive connections of every pool member (control plane: the pool
  // makes room for `keepalive` handles each now, so that parking never allocates).
  for (upstream_pool& pool : shard_.pools()) {
    for (unsigned i = 0; i < pool.size(); ++i) {
      upstream_pool::member& m = pool.at(i);
      m.keepalive = keepalive_.add_upstream(m.address, pool.config().keepalive, &m.stats->idle);
    }
  }
}

// Every connection and session is gone (the loop closed them all first).
http_proxy::~http_proxy() = default;

std::unique_ptr<handler> http_proxy::make_front(const listener_config& l, tls::context* tls) {
  return std::make_unique<sessions<session, front_context>>(front_context{this, &l, tls});
}

tls_link* http_proxy::link_of(connection& u) noexcept {
  upstream* us = back_.find(u);
  return us != nullptr ? &us->tls : nullptr;
}

void http_proxy::hold_back(session& s) noexcept {
  connection* d = shard_.loop().get(s.down);
  connection* u = shard_.paired(s.up_open, s.up);
  if (d == nullptr || u == nullptr || !d->is_open() || !u->is_open()) return;
  if (s.tls.active() && !d->writable()) u->pause_reading();  // session::on_writable resumes it
  if (tls_link* l = link_of(*u); l != nullptr && l->active() && !u->writable()) {
    d->pause_reading();  // upstream::on_writable resumes it
  }
}

http_proxy::exchange_buffers* http_proxy::lend_buffers() noexcept {
  if (exchange_buffers* x = free_buffers_) {
    free_buffers_ = x->next_free;
    x->next_free = nullptr;
    return x;
  }
  try {
    buffers_.push_back(std::make_unique<exchange_buffers>(shard_.cfg().http));
    return buffers_.back().get();
  } catch (...) {
    return nullptr;  // the session closes its connection (resource_limit)
  }
}

void http_proxy::return_buffers(exchange_buffers* x) noexcept {
  if (x == nullptr) return;
  x->parser.reset();
  x->response.reset();
  x->head.clear();
  x->out_head.clear();
  x->next_free = free_buffers_;
  free_buffers_ = x;
}

std::size_t http_proxy::route(const listener_config& l, std::string_view sni, std::string_view host,
                              std::string_view path) const noexcept {
  for (const route_config& r : l.routes) {
    if (!r.sni.empty() && !iequals(r.sni, sni)) continue;
    if (!r.host.empty() && !iequals(r.host, host)) continue;
    if (path.substr(0, r.path_prefix.size()) != r.path_prefix) continue;
    return r.pool_index;
  }
  return l.pool_index;
}

void http_proxy::serve(session& s, connection& d) noexcept {
  using st = http::request_parser::status;
  for (;;) {
    const st result = s.parser().parse(d.input());
    switch (result) {
      case st::need_more:
        // Nothing more can complete: the client sent FIN, or close_notify
        // (which leaves the TCP connection open: pipelined requests before
        // it are answered first, then it ends here, not at the idle timeout).
        if (s.client_fin || s.tls.peer_closed()) return d.close();
        if (!d.input().empty() && !s.header_timer.armed()) {
          shard_.loop().timers().arm_after(s.header_timer, shard_.cfg().timeouts.header);
        }
        return;
      case st::error:
        s.header_timer.cancel();
        shard_.stats().responses_by_class[4].add();
        http::reject(d, s.parser().error_status());
        return;
      case st::expect_continue:
        continue;  // not before a head in streaming mode; the upstream answers 100 itself
      case st::head:
      case st::request:
        begin(s, d, result == st::head);
        break;
      case st::body:
        return;  // not in the idle phase
    }
    // Answered at once (no route, no upstream): go on with the next
    // pipelined request here, in a loop rather than by recursion.
    if (s.state != session::phase::idle || s.close_after || !d.is_open()) return;
  }
}

void http_proxy::resume(session& s, connection& d) noexcept {
  if (s.state != session::phase::idle || s.close_after || !d.is_open()) return;
  if (d.reading_paused()) d.resume_reading();
  // Records held back while the plaintext was at the input limit.
  (void)s.tls.pump(d);
  if (!d.is_open()) return;
  serve(s, d);
}

void http_proxy::begin(session& s, connection& d, bool body_follows) noexcept {
  s.header_timer.cancel();
  shard_.stats().requests.add();
  http::request& req = s.parser().current();
  loop_base& loop = shard_.loop();
  s.started = loop.now();
  s.method = req.method();
  s.client_http10 = req.version_minor() == 0;
  s.close_after = !req.keep_alive() || loop.stopping() || s.client_fin;
  s.request_streaming = body_follows;
  s.request_done = !body_follows;
  s.request_chunked = body_follows && req.chunked();
  s.response_started = false;
  s.tried = 0;
  s.attempts = 0;
  s.fresh_only = false;
  s.pending.clear();
  s.pending.set_pool(&loop.pool());
  s.body.set_pool(&loop.pool());

  // Routed by the host the head is written with: the absolute-form
  // target's authority, else Host (RFC 9112 3.2.2).
  const std::string_view host = host_only(request_authority(req));
  const std::string_view path = req.path();
  const std::size_t pool = route(*s.listener, s.tls.server_name(), host, path);
  if (pool == SIZE_MAX) {
    shard_.stats().no_route.add();
    if (body_follows) s.close_after = true;  // its body is not read
    respond(s, d, 404, "no route for this host and path\n");
    return;
  }
  s.pool = pool;
  const pool_config& pc = shard_.pool(pool).config();
  switch (pc.key) {
    case hash_key::source: s.key = d.peer().address_hash(); break;
    case hash_key::host: s.key = upstream_pool::hash(host); break;
    case hash_key::path: s.key = upstream_pool::hash(path); break;
  }
  char addr[endpoint::address_text_capacity];
  write_request_head(s.head(), req, {.allow_underscores = shard_.cfg().allow_underscores,
                                   .client_address = d.peer().address_text(addr)});

  acquire_upstream(s, d);
  if (body_follows && s.state != session::phase::idle) pump_request_body(s, d);
}

void http_proxy::acquire_upstream(session& s, connection& d) noexcept {
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(s.pool);
  while (s.attempts <= pool.config().retries) {
    auto pick = pool.pick(s.key, s.tried, loop.now());
    if (!pick) break;
    s.tried |= std::uint64_t{1} << *pick;
    ++s.attempts;
    s.member = *pick;
    upstream_pool::member& m = pool.at(*pick);
    // A pooled connection first (the pool hands out the newest, the least
    // likely to have been closed by the upstream meanwhile).
    while (!s.fresh_only) {
      connection* u = keepalive_.take(m.keepalive);
      if (u == nullptr) break;
      upstream* us = back_.find(*u);
      if (us == nullptr) {
        u->close();  // not one of ours: cannot happen
        continue;
      }
      us->parked_in = keepalive_pool::none;
      attach(s, *u, true);
      send_request(s, *u);
      return;
    }
    s.connect_started = loop.now();
    auto r = back_.connect(loop, m.address);
    connection* u = r ? loop.get(*r) : nullptr;
    if (upstream* us = u != nullptr ? back_.find(*u) : nullptr) {
      us->owner = &s;
      s.up = *r;
      s.up_live = true;
      s.up_open = false;
      s.state = session::phase::connecting;
      return;
    }
    m.stats->connect_failures.add();
    pool.failed(*pick, loop.now());
  }
  fail_exchange(s, d, 502, "no upstream could be reached");
}

void http_proxy::attach(session& s, connection& u, bool reused) noexcept {
  if (upstream* us = back_.find(u)) us->owner = &s;
  s.up = u.handle();
  s.up_live = true;
  s.up_open = true;
  s.up_reused = reused;
  s.state = session::phase::exchanging;
  shard_.pool(s.pool).acquire(s.member);
}

void http_proxy::send_request(session& s, connection& u) noexcept {
  std::optional<tls_link::scope> plain_up;
  if (tls_link* l = link_of(u)) plain_up.emplace(*l, u);
  upstream_pool::member& m = shard_.pool(s.pool).at(s.member);
  m.stats->requests.add();
  s.response().expect(s.method);
  if (!u.write(s.head()) || (!s.pending.empty() && !u.send(std::move(s.pending)))) {
    connection* d = shard_.loop().get(s.down);
    if (d != nullptr) fail_exchange(s, *d, 502, "the request could not be buffered");
    return;
  }
  u.flush();
  shard_.loop().timers().arm_after(s.response_timer, shard_.cfg().timeouts.response);
  // Request bytes held back while connecting may flow now.
  if (connection* d = shard_.loop().get(s.down); d != nullptr && d->reading_paused() && u.writable()) {
    d->resume_reading();
  }
}

void http_proxy::pump_request_body(session& s, connection& d) noexcept {
  using st = http::request_parser::status;
  while (s.request_streaming && !s.request_done && s.state != session::phase::idle) {
    switch (s.parser().parse(d.input())) {
      case st::body:
        forward_body(s, s.parser().current().body(), false);
        continue;
      case st::request:
        s.request_done = true;
        forward_body(s, s.parser().current().body(), true);
        return;
      case st::expect_continue:
        continue;
      case st::need_more:
        if (s.client_fin) {
          // The body can never be complete: the upstream must not take a
          // truncated request as whole.
          s.close_after = true;
          fail_exchange(s, d, 400, "the client ended its request before its body was complete");
        }
        return;
      case st::error:
      case st::head:
        s.close_after = true;
        fail_exchange(s, d, s.parser().error_status() != 0 ? s.parser().error_status() : 400,
                      "the request body is malformed or too large");
        return;
    }
  }
}

void http_proxy::forward_body(session& s, buffer_chain& piece, bool last) noexcept {
  if (piece.empty() && !(last && s.request_chunked)) return;
  connection* u = shard_.paired(s.up_open, s.up);
  // Chunked bodies arrive decoded: each piece goes out as one chunk.
  chunk_frame frame;
  if (s.request_chunked) frame = frame_chunk(piece.size(), last);
  bool ok = true;
  std::optional<tls_link::scope> plain_up;
  if (tls_link* l = u != nullptr ? link_of(*u) : nullptr) plain_up.emplace(*l, *u);
  if (u != nullptr) {
    // Through the connection's writers, which mark it above high water.
    ok = (frame.head().empty() || u->write(frame.head())) && (piece.empty() || u->send(std::move(piece))) &&
         (frame.tail.empty() || u->write(frame.tail));
  } else {
    ok = frame.head().empty() || s.pending.write(frame.head());
    s.pending.append(std::move(piece));
    ok = ok && (frame.tail.empty() || s.pending.write(frame.tail));
  }
  connection* d = shard_.loop().get(s.down);
  if (!ok) {
    if (d != nullptr) fail_exchange(s, *d, 503, "out of buffer memory");
    return;
  }
  if (u != nullptr) {
    u->flush();
    if (!u->writable() && d != nullptr) d->pause_reading();  // on_writable(u) resumes it
  } else if (s.pending.size() >= shard_.cfg().high_water && d != nullptr) {
    d->pause_reading();  // send_request resumes it once connected
  }
}

void http_proxy::relay_response(session& s, connection& u) noexcept {
  using st = http::response_parser::status;
  connection* d = shard_.loop().get(s.down);
  if (d == nullptr || s.state != session::phase::exchanging) return;
  for (;;) {
    switch (s.response().parse(u.input(), s.body)) {
      case st::head: {
        const http::response_parser& r = s.response();
        if (r.informational()) {
          // 1xx goes on to HTTP/1.1 clients (100 Continue for their Expect);
          // the real response follows.
          if (s.client_http10) continue;
        } else {
          s.response_timer.cancel();
          s.response_started = true;
          s.out_framing = frame_response(r, s.client_http10, s.close_after);
          s.close_after = s.out_framing.close;
        }
        write_response_head(s.out_head(), r, s.out_framing, s.client_http10);
        if (!d->write(s.out_head())) return fail_exchange(s, *d, 503, "out of buffer memory");
        d->flush();
        continue;
      }
      case st::body:
        if (!send_response_body(s, *d, false)) return fail_exchange(s, *d, 503, "out of buffer memory");
        if (!d->writable()) u.pause_reading();  // on_writable(d) resumes it
        continue;
      case st::complete:
        if (s.response().informational()) continue;
        if (!send_response_body(s, *d, true)) return fail_exchange(s, *d, 503, "out of buffer memory");
        return finish_exchange(s, u, *d);
      case st::need_more:
        return;
      case st::error:
        shard_.pool(s.pool).at(s.member).stats->failures.add();
        shard_.pool(s.pool).failed(s.member, shard_.loop().now());
        fail_exchange(s, *d, 502, s.response().error_reason());
        return resume(s, *d);
    }
  }
}

void http_proxy::finish_exchange(session& s, connection& u, connection& d) noexcept {
  shard_stats& st = shard_.stats();
  st.request_latency.record(shard_.loop().now() - s.started);
  st.responses_by_class[std::min(s.response().status_code() / 100, 5)].add();
  s.response_timer.cancel();
  upstream_pool& pool = shard_.pool(s.pool);
  pool.succeeded(s.member);
  upstream_pool::member& m = pool.at(s.member);
  // Kept for the next request if the response allows and the pool has room
  // (it refuses a stopping loop, unread bytes, a FIN from the upstream).
  upstream* us = back_.find(u);
  if (s.response().keep_alive() && s.request_done && us != nullptr && keepalive_.park(m.keepalive, u)) {
    pool.release(s.member);
    us->owner = nullptr;
    us->parked_in = m.keepalive;
    s.up_live = s.up_open = false;
  } else {
    detach_upstream(s, false);
  }
  s.state = session::phase::idle;
  s.request_streaming = false;
  // A client that is still sending a body nobody reads must go.
  if (!s.request_done || s.close_after) return d.close();
  resume(s, d);  // the next pipelined request, if it is here already
}

void http_proxy::detach_upstream(session& s, bool abort) noexcept {
  if (!s.up_live) return;
  if (connection* u = shard_.loop().get(s.up)) {
    upstream* us = back_.find(*u);
    if (us != nullptr) us->owner = nullptr;  // anything it says now ends it
    if (abort) {
      u->abort();
    } else {
      std::optional<tls_link::scope> plain_up;  // close_notify goes first
      if (us != nullptr) plain_up.emplace(us->tls, *u);
      u->close();
    }
  }
  if (s.up_open) shard_.pool(s.pool).release(s.member);
  s.up_live = s.up_open = false;
}

void http_proxy::fail_exchange(session& s, connection& d, int status, std::string_view why) noexcept {
  s.response_timer.cancel();
  detach_upstream(s, true);
  s.pending.clear();
  s.state = session::phase::idle;
  if (s.response_started) {
    // Part of the response is out: the client must not take it as whole.
    shard_.stats().responses_cut.add();
    d.abort();
    return;
  }
  if (status == 502) shard_.stats().bad_gateway.add();
  if (status == 504) shard_.stats().gateway_timeout.add();
  if (!s.request_done) s.close_after = true;  // the rest of its body is not read
  std::string body(why);
  body.push_back('\n');
  respond(s, d, status, body);
}

void http_proxy::respond(session& s, connection& d, int status, std::string_view body) noexcept {
  shard_.stats().responses_by_class[std::clamp(status / 100, 0, 5)].add();
  std::string& h = s.out_head();
  h.assign("HTTP/1.1 ");
  append_decimal(h, static_cast<std::uint64_t>(status));
  h.append(" ").append(http::reason_phrase(status)).append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append_decimal(h, body.size());
  h.append(s.close_after ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n").append(body);
  s.state = session::phase::idle;
  s.request_streaming = false;
  if (!d.write(h) || s.close_after) return d.close();
  d.flush();
}

bool http_proxy::send_response_body(session& s, connection& d, bool last) noexcept {
  // A decoded body: re-chunked for a chunked response, else as it is (its
  // length was written in the head, or the connection's end delimits it).
  if (!s.out_framing.chunked) return s.body.empty() || d.send(std::move(s.body));
  const chunk_frame frame = frame_chunk(s.body.size(), last);
  return (frame.head().empty() || d.write(frame.head())) && (s.body.empty() || d.send(std::move(s.body))) &&
         (frame.tail.empty() || d.write(frame.tail));
}

bool http_proxy::retry_stale(session& s, connection& d) noexcept {
  // Only a pooled connection that failed before any response byte, and only
  // a request that can be sent again whole (no streamed body).
  if (!s.up_reused || s.fresh_only || s.request_streaming || s.response_started) return false;
  detach_upstream(s, true);
  s.tried &= ~(std::uint64_t{1} << s.member);
  --s.attempts;
  s.fresh_only = true;
  s.response_timer.cancel();
  acquire_upstream(s, d);
  return true;
}

void http_proxy::upstream_ended(session& s, close_reason why) noexcept {
  // Only connections still attached get here (detach_upstream clears their
  // session's owner first): a failed connect, or a failure during an exchange.
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(s.pool);
  const bool was_open = s.up_open;
  if (was_open) pool.release(s.member);
  s.up_live = s.up_open = false;
  // The client is still there (its on_close detaches the upstream first),
  // unless it was closed in the same iteration (reset, loop shutdown) and
  // only waits for its on_close: then nobody waits for an answer, and that
  // is no upstream failure.
  connection* d = loop.get(s.down);
  if (d == nullptr || d->current_state() == connection::state::closed) return;
  if (!was_open) {
    pool.at(s.member).stats->connect_failures.add();
    pool.failed(s.member, loop.now());
    acquire_upstream(s, *d);  // the next upstream, or 502
    return resume(s, *d);
  }
  if (!s.response_started && (why == close_reason::peer_reset || why == close_reason::io_error) &&
      retry_stale(s, *d)) {
    return resume(s, *d);
  }
  pool.at(s.member).stats->failures.add();
  pool.failed(s.member, loop.now());
  fail_exchange(s, *d, 502, "the upstream failed before its response was complete");
  resume(s, *d);
}

void http_proxy::end_session(session& s) noexcept {
  // The client is gone: nobody waits for an upstream answer any more.
  detach_upstream(s, true);
  s.header_timer.cancel();
  s.response_timer.cancel();
  return_buffers(std::exchange(s.buffers, nullptr));
  // Out of the live list (swap with the last).
  if (s.live_index != SIZE_MAX) {
    session* last = live_.back();
    live_[s.live_index] = last;
    last->live_index = s.live_index;
    live_.pop_back();
    s.live_index = SIZE_MAX;
  }
}

void http_proxy::stop() noexcept {
  loop_base& loop = shard_.loop();
  for (session* s : std::vector<session*>(live_)) {
    connection* d = loop.get(s->down);
    if (d == nullptr) continue;
    tls_link::scope plain(s->tls, *d);
    if (s->state == session::phase::idle && d->input().empty()) {
      d->close();
    } else {
      s->close_after = true;  // after the response in progress
    }
  }
  keepalive_.close_all();
}

}  // namespace sluice::gateway
