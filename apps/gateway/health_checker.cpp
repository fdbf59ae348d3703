#include "health_checker.hpp"

#include <charconv>

#include "sluice/core/loop_base.hpp"

namespace sluice::gateway {

health_checker::health_checker(loop_base& loop, std::vector<upstream_pool>& pools)
    : loop_(loop), pools_(pools), checks_(this) {
  for (unsigned p = 0; p < pools_.size(); ++p) {
    const unsigned n = pools_[p].size();
    probes_.emplace_back(std::make_unique<probe[]>(n));
    for (unsigned m = 0; m < n; ++m) {
      probe& pr = probes_.back()[m];
      pr.owner = this;
      pr.pool = p;
      pr.member = m;
      pr.deadline.bind<&probe::expired>(&pr);
    }
    auto clock = std::make_unique<pool_clock>();
    clock->owner = this;
    clock->pool = p;
    clock->tick.bind<&pool_clock::fire>(clock.get());
    clocks_.push_back(std::move(clock));
  }
}

health_checker::~health_checker() = default;

void health_checker::start() {
  for (auto& c : clocks_) {
    // The first round at once, so that an upstream down at start-up is known soon.
    if (pools_[c->pool].config().check.kind != check_kind::none) loop_.timers().arm_after(c->tick, duration::zero());
  }
}

void health_checker::stop() noexcept {
  stopped_ = true;
  for (auto& c : clocks_) c->tick.cancel();
  for (unsigned p = 0; p < pools_.size(); ++p) {
    for (unsigned m = 0; m < pools_[p].size(); ++m) {
      probe& pr = probes_[p][m];
      pr.deadline.cancel();
      if (connection* c = pr.busy ? loop_.get(pr.conn) : nullptr) c->abort();
    }
  }
}

void health_checker::pool_clock::fire() noexcept {
  owner->run_checks(pool);
  if (!owner->stopped_) owner->loop_.timers().arm_after(tick, owner->pools_[pool].config().check.interval);
}

void health_checker::run_checks(unsigned pool) noexcept {
  upstream_pool& up = pools_[pool];
  for (unsigned m = 0; m < up.size(); ++m) {
    probe& pr = probes_[pool][m];
    if (pr.busy) continue;  // the last one is still going (its timeout ends it)
    pr.done = false;
    auto r = checks_.connect(loop_, up.at(m).address);
    connection* c = r ? loop_.get(*r) : nullptr;
    check* ck = c != nullptr ? checks_.find(*c) : nullptr;
    if (ck == nullptr) {
      conclude(pr, false);
      continue;
    }
    ck->p = &pr;
    pr.busy = true;
    pr.conn = *r;
    loop_.timers().arm_after(pr.deadline, up.config().check.timeout);
  }
}

void health_checker::probe::expired() noexcept {
  if (connection* c = owner->loop_.get(conn)) c->abort();  // on_close reports the failure
}

void health_checker::conclude(probe& p, bool passed) noexcept {
  if (p.done) return;
  p.done = true;
  pools_[p.pool].checked(p.member, passed);
}

void health_checker::check::on_open(connection& c) noexcept {
  if (this->p == nullptr) return c.abort();
  probe& p = *this->p;
  upstream_pool& pool = owner->pools_[p.pool];
  const pool_config& cfg = pool.config();
  if (cfg.check.kind == check_kind::tcp) {
    owner->conclude(p, true);
    c.close();
    return;
  }
  // One request and "Connection: close": the answer's status line is all we read.
  bool ok = c.write("GET ") && c.write(cfg.check.path) && c.write(" HTTP/1.1\r\nHost: ") &&
            c.write(pool.at(p.member).name) &&
            c.write("\r\nUser-Agent: sluice-gateway-health-check\r\nConnection: close\r\n\r\n");
  if (!ok) {
    owner->conclude(p, false);
    c.abort();
    return;
  }
  c.flush();
}

void health_checker::check::on_data(connection& c) noexcept {
  if (this->p == nullptr) return c.abort();
  probe& p = *this->p;
  // "HTTP/1.x NNN": the status code is bytes 9 to 11.
  auto line = c.input().peek(12);
  if (!line) {
    if (c.peer_shut()) c.close();
    return;
  }
  int code = 0;
  const char* first = line->data() + 9;
  const bool parsed = line->substr(0, 7) == "HTTP/1." && std::from_chars(first, first + 3, code).ptr == first + 3;
  owner->conclude(p, parsed && code >= 200 && code < 400);
  (void)c.input().skip(c.input().size());
  c.close();
}

void health_checker::check::on_close(connection&, close_reason) noexcept {
  if (this->p == nullptr) return;  // never started (its connect was refused at once)
  probe& p = *this->p;
  owner->conclude(p, false);  // no effect if it passed already
  p.busy = false;
  p.deadline.cancel();
}

}  // namespace sluice::gateway
