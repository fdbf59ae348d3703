#include "sluice/core/http/request_deadline.hpp"

#include "sluice/core/http/status.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::http {

void request_deadline::arm(connection& c, duration timeout) noexcept {
  loop_ = &c.loop();
  conn_ = c.handle();
  loop_->timers().arm_after(timer_, timeout);
}

void request_deadline::start(connection& c, duration timeout) noexcept {
  partial_ = false;
  arm(c, timeout);
}

void request_deadline::waiting(connection& c, duration timeout) noexcept {
  if (c.input().empty()) return;
  partial_ = true;
  if (!timer_.armed()) arm(c, timeout);
}

void request_deadline::expired() noexcept {
  connection* c = loop_ == nullptr ? nullptr : loop_->get(conn_);
  if (c == nullptr || !c->is_open()) return;
  if (!partial_) return c->close(close_reason::idle_timeout);  // nothing asked: nothing to answer
  if (quiet_) return c->close(close_reason::read_timeout);
  reject(*c, 408);
}

}  // namespace sluice::http
