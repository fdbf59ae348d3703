#include "tcp_proxy.hpp"

#include "shard.hpp"

namespace sluice::gateway {

namespace {

// Endings that the other side must see as a reset rather than a clean close:
// a clean FIN would tell the peer the stream ended normally.
bool abortive(close_reason why) noexcept {
  switch (why) {
    case close_reason::peer_reset:
    case close_reason::aborted:
    case close_reason::io_error:
    case close_reason::write_timeout:
    case close_reason::resource_limit:
    case close_reason::shutdown:
    case close_reason::protocol_error:
      return true;
    default:
      return false;
  }
}

}  // namespace

// Downstream connections of one listener.
class tcp_proxy::front final : public handler {
 public:
  front(tcp_proxy& p, std::size_t pool) : p_(p), pool_(pool) {}

  void on_open(connection& d) noexcept override {
    session& s = *p_.sessions_.acquire();
    s = session{};
    s.down = d.handle();
    s.down_live = true;
    s.pool = pool_;
    d.set_context(&s);
    p_.shard_.stats().sessions.add();
    p_.shard_.stats().sessions_total.add();
    d.pause_reading();  // until the upstream answers: nothing could go anywhere
    if (!p_.connect_next(s)) d.close();
  }

  void on_data(connection& d) noexcept override {
    session& s = *d.context_as<session>();
    if (connection* u = p_.shard_.paired(s.up_open, s.up)) forward(d, *u);
  }

  void on_writable(connection& d) noexcept override {
    session& s = *d.context_as<session>();
    resume_held_back(p_.shard_.paired(s.up_open, s.up));
  }

  void on_peer_shutdown(connection& d) noexcept override {
    session& s = *d.context_as<session>();
    if (connection* u = p_.shard_.paired(s.up_open, s.up)) {
      forward(d, *u);
      u->shutdown_write();
    }
    // Still connecting: back::on_open passes the FIN on.
  }

  void on_close(connection& d, close_reason why) noexcept override {
    session& s = *d.context_as<session>();
    s.down_live = false;
    p_.shard_.stats().sessions.sub();
    p_.end_side(s, why, true);
  }

 private:
  tcp_proxy& p_;
  std::size_t pool_;
};

// Upstream connections (one handler for the loop).
class tcp_proxy::back final : public handler {
 public:
  explicit back(tcp_proxy& p) : p_(p) {}

  void on_open(connection& u) noexcept override {
    session& s = *u.context_as<session>();
    shard& sh = p_.shard_;
    upstream_pool& pool = sh.pool(s.pool);
    s.up_open = true;
    sh.upstream_connected(s.pool, s.member, s.connect_started);
    pool.acquire(s.member);
    pool.at(s.member).stats->requests.add();
    connection* d = sh.loop().get(s.down);
    if (d == nullptr) {
      u.close();
      return;
    }
    d->resume_reading();
    forward(*d, u);
    if (d->peer_shut()) u.shutdown_write();
  }

  void on_data(connection& u) noexcept override {
    session& s = *u.context_as<session>();
    if (connection* d = p_.shard_.loop().get(s.down)) forward(u, *d);
  }

  void on_writable(connection& u) noexcept override {
    session& s = *u.context_as<session>();
    resume_held_back(p_.shard_.loop().get(s.down));
  }

  void on_peer_shutdown(connection& u) noexcept override {
    session& s = *u.context_as<session>();
    if (connection* d = p_.shard_.loop().get(s.down)) {
      forward(u, *d);
      d->shutdown_write();
    }
  }

  void on_close(connection& u, close_reason why) noexcept override {
    session& s = *u.context_as<session>();
    s.up_live = false;
    p_.end_side(s, why, false);
  }

 private:
  tcp_proxy& p_;
};

tcp_proxy::tcp_proxy(shard& s) : shard_(s), back_(std::make_unique<back>(*this)) {}

tcp_proxy::~tcp_proxy() = default;

std::unique_ptr<handler> tcp_proxy::make_front(std::size_t pool) { return std::make_unique<front>(*this, pool); }

bool tcp_proxy::connect_next(session& s) noexcept {
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(s.pool);
  connection* d = loop.get(s.down);
  const std::uint64_t key = d != nullptr ? d->peer().address_hash() : 0;
  while (s.attempts <= pool.config().retries) {
    auto pick = pool.pick(key, s.tried, loop.now());
    if (!pick) return false;
    s.tried |= std::uint64_t{1} << *pick;
    ++s.attempts;
    s.member = *pick;
    s.connect_started = loop.now();
    auto r = loop.connect(pool.at(*pick).address, *back_, &s);
    if (r) {
      s.up = *r;
      s.up_live = true;
      return true;
    }
    // Could not even start (out of descriptors, connection limit): counts as
    // a failed connect, and the next upstream is tried.
    pool.at(*pick).stats->connect_failures.add();
    pool.failed(*pick, loop.now());
  }
  return false;
}

void tcp_proxy::forward(connection& from, connection& to) noexcept {
  if (!from.input().empty() && !to.send(std::move(from.input()))) {
    // Over the output limit: the watermarks should make this impossible, so
    // end the pair rather than lose bytes silently.
    to.abort();
    from.abort();
    return;
  }
  if (!to.writable()) from.pause_reading();
}

void tcp_proxy::end_side(session& s, close_reason why, bool downstream) noexcept {
  loop_base& loop = shard_.loop();
  upstream_pool& pool = shard_.pool(s.pool);
  if (downstream) {
    if (connection* u = s.up_live ? loop.get(s.up) : nullptr) {
      if (!s.up_open || abortive(why)) {
        u->abort();
      } else {
        u->close();  // what the client sent still goes out, then FIN
      }
    }
  } else if (!s.up_open) {
    // The connect failed (we abort it only when the client left).
    if (why != close_reason::aborted) {
      pool.at(s.member).stats->connect_failures.add();
      pool.failed(s.member, loop.now());
    }
    connection* d = s.down_live ? loop.get(s.down) : nullptr;
    if (d != nullptr && d->is_open() && !connect_next(s)) d->close();
  } else {
    pool.release(s.member);
    if (abortive(why) && why != close_reason::shutdown) pool.at(s.member).stats->failures.add();
    if (connection* d = s.down_live ? loop.get(s.down) : nullptr) {
      if (abortive(why)) {
        d->abort();
      } else {
        d->close();
      }
    }
  }
  maybe_release(s);
}

void tcp_proxy::maybe_release(session& s) noexcept {
  if (!s.down_live && !s.up_live) sessions_.release(&s);
}

}  // namespace sluice::gateway
