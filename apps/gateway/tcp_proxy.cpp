#include "tcp_proxy.hpp"

#include "shard.hpp"

namespace sluice::gateway {

// ---- the client's side -----------------------------------------------------------

void tcp_proxy::client::on_open(connection& d) noexcept {
  shard& sh = ctx->proxy->shard_;
  sh.stats().sessions.add();
  sh.stats().sessions_total.add();
  if (!ctx->proxy->connect_next(*this, d)) d.close();
}

void tcp_proxy::client::on_close(connection& d, close_reason why) noexcept {
  ctx->proxy->shard_.stats().sessions.sub();
  link.on_close(d, why);  // the upstream ends to match
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
  if (client* c = owner(u)) return c->link.on_open(u);
  u.close();
}

void tcp_proxy::upstream::on_data(connection& u) noexcept {
  if (client* c = owner(u)) c->link.on_data(u);
}

void tcp_proxy::upstream::on_writable(connection& u) noexcept {
  if (client* c = owner(u)) c->link.on_writable(u);
}

void tcp_proxy::upstream::on_peer_shutdown(connection& u) noexcept {
  if (client* c = owner(u)) return c->link.on_peer_shutdown(u);
  u.close();
}

void tcp_proxy::upstream::on_close(connection& u, close_reason why) noexcept {
  shard& sh = proxy->shard_;
  upstream_pool& p = sh.pool(pool);
  client* c = owner(u);
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
  if (relay::abortive(why) && why != close_reason::shutdown) p.at(member).stats->failures.add();
  if (c != nullptr) (void)c->link.on_close(u, why);  // the client ends to match
}

// ---- the proxy ---------------------------------------------------------------------

tcp_proxy::tcp_proxy(shard& s) : shard_(s), back_(this) {}

tcp_proxy::~tcp_proxy() = default;

std::unique_ptr<handler> tcp_proxy::make_front(std::size_t pool) {
  auto h = std::make_unique<front_handler>(front_context{this, pool, nullptr});
  h->context().front = h.get();
  return h;
}

bool tcp_proxy::connect_next(client& c, connection& d) noexcept {
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(c.ctx->pool);
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
      s->pool = c.ctx->pool;
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
