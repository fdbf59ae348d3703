#include "sluice/core/keepalive_pool.hpp"

#include <algorithm>

#include "sluice/core/loop_base.hpp"

namespace sluice {

keepalive_pool::keepalive_pool(loop_base& loop, duration idle_timeout)
    : loop_(loop), idle_timeout_(idle_timeout < duration::zero() ? duration::zero() : idle_timeout) {
  timer_.bind<&keepalive_pool::expire>(this);
}

keepalive_pool::~keepalive_pool() { timer_.cancel(); }

keepalive_pool::upstream_id keepalive_pool::add_upstream(const endpoint& at, std::size_t max_idle,
                                                         counter* idle_gauge) {
  upstream u;
  u.at = at;
  u.max_idle = max_idle;
  u.gauge = idle_gauge;
  u.idle.reserve(max_idle);
  upstreams_.push_back(std::move(u));
  return static_cast<upstream_id>(upstreams_.size() - 1);
}

keepalive_pool::upstream_id keepalive_pool::find(const endpoint& at) const noexcept {
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    if (upstreams_[i].at == at) return static_cast<upstream_id>(i);
  }
  return none;
}

bool keepalive_pool::reusable(connection& c) noexcept {
  return c.is_open() && !c.write_shut() && !c.peer_shut() && c.input().empty();
}

bool keepalive_pool::expired(const entry& e, time_point now) const noexcept {
  return idle_timeout_ != duration::zero() && now - e.since >= idle_timeout_;
}

bool keepalive_pool::park(upstream_id id, connection& c) noexcept {
  upstream& u = upstreams_[id];
  if (u.idle.size() >= u.max_idle || loop_.stopping() || !reusable(c)) return false;
  if (c.reading_paused()) c.resume_reading();  // so that its FIN is seen while idle
  const time_point now = loop_.now();
  u.idle.push_back({c.handle(), now});  // within the capacity reserved: no allocation
  ++total_;
  if (u.gauge != nullptr) u.gauge->add();
  if (idle_timeout_ != duration::zero() && !timer_.armed()) arm(now + idle_timeout_);
  return true;
}

connection* keepalive_pool::take(upstream_id id) noexcept {
  upstream& u = upstreams_[id];
  const time_point now = loop_.now();
  while (!u.idle.empty()) {
    const entry e = u.idle.back();
    u.idle.pop_back();
    --total_;
    if (u.gauge != nullptr) u.gauge->sub();
    connection* c = loop_.get(e.conn);
    if (c == nullptr) continue;
    if (reusable(*c) && !expired(e, now)) {
      ++reused_;
      return c;
    }
    ++closed_stale_;
    c->close(expired(e, now) ? close_reason::idle_timeout : close_reason::local);
  }
  return nullptr;
}

bool keepalive_pool::forget(upstream_id id, const connection& c) noexcept {
  upstream& u = upstreams_[id];
  const connection_handle h = c.handle();
  auto it = std::find_if(u.idle.begin(), u.idle.end(), [&](const entry& e) { return e.conn == h; });
  if (it == u.idle.end()) return false;
  const std::size_t i = static_cast<std::size_t>(it - u.idle.begin());
  drop(u, i, i + 1, false, close_reason::local);
  return true;
}

void keepalive_pool::drop(upstream& u, std::size_t i, std::size_t j, bool close, close_reason why) noexcept {
  if (close) {
    for (std::size_t k = i; k < j; ++k) {
      if (connection* c = loop_.get(u.idle[k].conn)) c->close(why);
    }
  }
  const auto first = u.idle.begin() + static_cast<std::ptrdiff_t>(i);
  u.idle.erase(first, first + static_cast<std::ptrdiff_t>(j - i));
  total_ -= j - i;
  if (u.gauge != nullptr) u.gauge->sub(j - i);
}

void keepalive_pool::close_all() noexcept {
  timer_.cancel();
  for (upstream& u : upstreams_) drop(u, 0, u.idle.size(), true, close_reason::local);
}

void keepalive_pool::arm(time_point when) noexcept { loop_.timers().arm(timer_, when); }

void keepalive_pool::expire() noexcept {
  const time_point now = loop_.now();
  time_point next = time_point::max();
  for (upstream& u : upstreams_) {
    // Oldest first: the expired ones are a prefix.
    std::size_t n = 0;
    while (n < u.idle.size() && expired(u.idle[n], now)) ++n;
    if (n != 0) {
      closed_stale_ += n;
      drop(u, 0, n, true, close_reason::idle_timeout);
    }
    if (!u.idle.empty()) next = std::min(next, u.idle.front().since + idle_timeout_);
  }
  if (next != time_point::max()) arm(next);
}

}  // namespace sluice
