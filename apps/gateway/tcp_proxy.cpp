#include "tcp_proxy.hpp"

#include <optional>

#include "shard.hpp"
#include "sluice/core/http/request.hpp"

namespace sluice::gateway {

// ---- the client's side -----------------------------------------------------------

template <class F>
void tcp_proxy::client::plaintext(F&& f) noexcept {
  connection* d = link.a();
  connection* u = link.b();
  upstream* us = u != nullptr ? ctx->proxy->back_.find(*u) : nullptr;
  {
    std::optional<tls_link::scope> down_scope;
    std::optional<tls_link::scope> up_scope;
    if (d != nullptr) down_scope.emplace(tls, *d);
    if (us != nullptr) up_scope.emplace(us->tls, *u);
    f();
  }
  if (d == nullptr || u == nullptr || !d->is_open() || !u->is_open()) return;
  // The relay saw the plaintext; the records are what fills an output.
  if (tls.active() && !d->writable() && !u->reading_paused()) {
    u->pause_reading();  // on_writable(d) resumes it
    up_held = true;
  }
  if (us != nullptr && us->tls.active() && !u->writable() && !d->reading_paused()) {
    d->pause_reading();  // on_writable(u) resumes it
    down_held = true;
  }
}

void tcp_proxy::client::on_open(connection& d) noexcept {
  shard& sh = ctx->proxy->shard_;
  sh.stats().sessions.add();
  sh.stats().sessions_total.add();
  pool = ctx->listener->pool_index;
  if (ctx->tls != nullptr) {
    // The upstream is connected once the handshake is done (on_data).
    (void)tls.start_server(*ctx->tls, d, sh.stats().tls_client, sh.cfg().timeouts.handshake);
    return;
  }
  if (!ctx->proxy->connect_next(*this, d)) d.close();
}

void tcp_proxy::client::on_data(connection& d) noexcept {
  if (tls.active()) {
    const bool done = tls.pump(d);
    if (!d.is_open() || tls.handshaking()) return;
    if (done) {
      pool = pool_for(*ctx->listener, tls.server_name());
      if (!ctx->proxy->connect_next(*this, d)) d.close();
      return;  // what came with the handshake goes once the upstream opens
    }
  }
  plaintext([&] { link.on_data(d); });
  if (tls.peer_done() && d.is_open()) plaintext([&] { link.on_peer_shutdown(d); });
}

void tcp_proxy::client::on_writable(connection& d) noexcept {
  up_held = false;
  plaintext([&] { link.on_writable(d); });
}

void tcp_proxy::client::on_peer_shutdown(connection& d) noexcept {
  tls.transport_closed(d);
  if (tls.active() && link.a() == nullptr) return d.close(close_reason::peer_closed);  // during the handshake
  plaintext([&] { link.on_peer_shutdown(d); });
}

void tcp_proxy::client::on_close(connection& d, close_reason why) noexcept {
  ctx->proxy->shard_.stats().sessions.sub();
  tls.on_close(why);
  // Held back by the upstream's records: bytes it had not passed on are
  // lost with it, so the upstream is reset (as the relay does).
  link.on_close(d, down_held ? close_reason::aborted : why);  // the upstream ends to match
}

// ---- the upstream's side ---------------------------------------------------------

tcp_proxy::client* tcp_proxy::upstream::owner(connection& u) const noexcept {
  connection* d = u.loop().get(down);
  return d != nullptr ? front->find(*d) : nullptr;
}

void tcp_proxy::upstream::on_open(connection& u) noexcept {
  shard& sh = proxy->shard_;
  upstream_pool& p = sh.pool(pool);
  opened = true;
  sh.upstream_connected(pool, member, connect_started);
  p.acquire(member);
  p.at(member).stats->requests.add();
  client* c = owner(u);
  if (c == nullptr) return u.close();
  if (tls::context* t = sh.client_tls(pool)) {
    const pool_config& pc = p.config();
    // The relay sees u open once the handshake is done (on_data): until
    // then the client is not read, and its FIN is not passed on (a FIN in
    // the middle of the handshake would cut it off).
    (void)tls.start_client(*t, u, sh.stats().tls_upstream, sh.cfg().timeouts.handshake, pc.tls_names[member],
                           pc.verify, sh.upstream_session(pool, member));
    return;  // on failure u is closed: on_close ends the pair
  }
  relay_open(u, *c);
}

void tcp_proxy::upstream::relay_open(connection& u, client& c) noexcept {
  c.plaintext([&] { c.link.on_open(u); });
  // The relay's on_open passes on a FIN that came meanwhile; a close_notify
  // (the TCP connection left open) that came with the end of the client's
  // handshake is passed on here, or u never hears the end.
  if (connection* d = c.link.a(); d != nullptr && d->is_open() && u.is_open() && c.tls.peer_done()) {
    c.plaintext([&] { c.link.on_peer_shutdown(*d); });
  }
}

void tcp_proxy::upstream::on_data(connection& u) noexcept {
  bool done = false;
  if (tls.active()) {
    done = tls.pump(u);
    if (!u.is_open() || tls.handshaking()) return;
  }
  client* c = owner(u);
  if (c == nullptr) return;
  if (done) {
    relay_open(u, *c);
    if (!u.is_open()) return;
  }
  c->plaintext([&] { c->link.on_data(u); });
  if (tls.peer_done() && u.is_open()) c->plaintext([&] { c->link.on_peer_shutdown(u); });
}

void tcp_proxy::upstream::on_writable(connection& u) noexcept {
  if (tls.handshaking()) return;  // not open for the relay yet
  if (client* c = owner(u)) {
    c->down_held = false;
    c->plaintext([&] { c->link.on_writable(u); });
  }
}

void tcp_proxy::upstream::on_peer_shutdown(connection& u) noexcept {
  tls.transport_closed(u);
  if (tls.handshaking()) return u.close(close_reason::peer_closed);
  if (client* c = owner(u)) return c->plaintext([&] { c->link.on_peer_shutdown(u); });
  u.close();
}

void tcp_proxy::upstream::on_close(connection& u, close_reason why) noexcept {
  shard& sh = proxy->shard_;
  upstream_pool& p = sh.pool(pool);
  client* c = owner(u);
  const bool handshake_failed = tls.handshaking() || why == close_reason::protocol_error;
  tls.on_close(why);
  if (!opened) {
    // The connect failed (we abort it only when the client left).
    if (why != close_reason::aborted) {
      p.at(member).stats->connect_failures.add();
      p.failed(member, sh.loop().now());
    }
    if (c == nullptr || c->link.on_close(u, why)) return;
    connection* d = u.loop().get(down);
    if (d->is_open() && !proxy->connect_next(*c, *d)) d->close();
    return;
  }
  p.release(member);
  if ((relay::abortive(why) && why != close_reason::shutdown) || handshake_failed) p.at(member).stats->failures.add();
  if (handshake_failed) why = close_reason::aborted;  // the client must not take it for a clean end
  if (c == nullptr) return;
  // The client ends to match; the relay leaves it alone when u never became
  // open for it (its TLS handshake failed): reset, nothing was relayed.
  if (!c->link.on_close(u, c->up_held ? close_reason::aborted : why)) {
    if (connection* d = c->link.a()) d->abort();
  }
}

// ---- the proxy ---------------------------------------------------------------------

tcp_proxy::tcp_proxy(shard& s) : shard_(s), back_(this) {}

tcp_proxy::~tcp_proxy() = default;

std::unique_ptr<handler> tcp_proxy::make_front(const listener_config& l, tls::context* tls) {
  auto h = std::make_unique<front_handler>(front_context{this, &l, tls, nullptr});
  h->context().front = h.get();
  return h;
}

std::size_t tcp_proxy::pool_for(const listener_config& l, std::string_view sni) noexcept {
  for (const route_config& r : l.routes) {
    if (http::iequals(r.sni, sni)) return r.pool_index;
  }
  return l.pool_index;
}

bool tcp_proxy::connect_next(client& c, connection& d) noexcept {
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(c.pool);
  const std::uint64_t key = d.peer().address_hash();
  while (c.attempts <= pool.config().retries) {
    auto pick = pool.pick(key, c.tried, loop.now());
    if (!pick) return false;
    c.tried |= std::uint64_t{1} << *pick;
    ++c.attempts;
    const time_point started = loop.now();
    auto r = back_.connect(loop, pool.at(*pick).address);
    connection* u = r ? loop.get(*r) : nullptr;
    if (upstream* s = u != nullptr ? back_.find(*u) : nullptr) {
      s->front = c.ctx->front;
      s->down = d.handle();
      s->pool = c.pool;
      s->member = *pick;
      s->connect_started = started;
      if (c.link.a() == nullptr) {
        c.link.start(d, *r);  // d is not read until the upstream opens
      } else {
        c.link.connect_b(*r);
      }
      return true;
    }
    // Could not even start (out of descriptors, connection limit, no memory
    // for its session): counts as a failed connect, and the next upstream is
    // tried.
    pool.at(*pick).stats->connect_failures.add();
    pool.failed(*pick, loop.now());
  }
  return false;
}

}  // namespace sluice::gateway
