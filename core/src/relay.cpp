#include "sluice/core/relay.hpp"

#include <utility>

#include "sluice/core/loop_base.hpp"

namespace sluice {

bool relay::abortive(close_reason why) noexcept {
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

void relay::start(connection& a, connection_handle b) noexcept {
  loop_ = &a.loop();
  a_ = a.handle();
  a_live_ = true;
  a_to_b_ = b_to_a_ = 0;
  a_held_ = b_held_ = false;
  connect_b(b);
  if (!b_open_) a.pause_reading();  // until b opens: nothing could go anywhere
}

void relay::connect_b(connection_handle b) noexcept {
  b_ = b;
  b_held_ = false;
  connection* c = loop_ != nullptr ? loop_->get(b) : nullptr;
  b_live_ = c != nullptr;
  b_open_ = c != nullptr && c->is_open();
}

connection* relay::a() const noexcept { return a_live_ ? loop_->get(a_) : nullptr; }

connection* relay::b() const noexcept { return b_live_ ? loop_->get(b_) : nullptr; }

connection* relay::other(const connection& c) const noexcept {
  const connection_handle h = c.handle();
  if (a_live_ && h == a_) return b_open_ ? b() : nullptr;
  if (b_live_ && h == b_) return a();
  return nullptr;
}

void relay::on_open(connection& b) noexcept {
  if (!b_live_ || b.handle() != b_) return;
  b_open_ = true;
  connection* a = this->a();
  if (a == nullptr || !a->is_open()) {
    b.close();
    return;
  }
  if (a->reading_paused()) a->resume_reading();
  forward(*a, b, a_to_b_);
  if (a->peer_shut()) b.shutdown_write();
}

void relay::forward(connection& from, connection& to, std::uint64_t& count) noexcept {
  // The other end is closing (closed, or its on_close has not run yet): its
  // matched close ends this one; a send now would be refused and taken for
  // an overflow, resetting both.
  if (to.current_state() != connection::state::open) {
    from.pause_reading();
    return;
  }
  const std::size_t n = from.input().size();
  if (n != 0) {
    if (!to.send(std::move(from.input()))) {
      // Over the output limit: the watermarks should make this impossible, so
      // end the pair rather than lose bytes silently.
      to.abort();
      from.abort();
      return;
    }
    count += n;
  }
  if (!to.writable()) {
    from.pause_reading();  // on_writable(to) resumes it
    held(from) = true;
  }
}

bool& relay::held(const connection& c) noexcept { return c.handle() == a_ ? a_held_ : b_held_; }

void relay::on_data(connection& c) noexcept {
  connection* to = other(c);
  if (to == nullptr) {
    // b still connecting (a is paused: these bytes wait in a's input).
    if (b_live_ && !b_open_ && c.handle() == a_) c.pause_reading();
    return;
  }
  forward(c, *to, c.handle() == a_ ? a_to_b_ : b_to_a_);
}

void relay::on_writable(connection& c) noexcept {
  connection* from = other(c);
  if (from == nullptr) return;
  held(*from) = false;
  if (from->reading_paused()) from->resume_reading();
}

void relay::on_peer_shutdown(connection& c) noexcept {
  connection* to = other(c);
  if (to == nullptr) return;  // b still connecting: on_open passes the FIN on
  forward(c, *to, c.handle() == a_ ? a_to_b_ : b_to_a_);
  // Everything c sent before its FIN is passed on now: nothing of c is held
  // back any more, so c ending next (both directions done) is a clean end,
  // however full the other side's output (else it was reset and that output
  // lost).
  held(c) = false;
  to->shutdown_write();
}

bool relay::on_close(connection& c, close_reason why) noexcept {
  const connection_handle h = c.handle();
  // An end that ends while held back by backpressure leaves bytes it never
  // passed on (its input, its socket's buffer): whatever the reason (an idle
  // timeout of a stalled pair), the other peer must not take that for a
  // normal end of stream.
  if (held(c)) why = close_reason::aborted;
  if (a_live_ && h == a_) {
    a_live_ = false;
    if (connection* b = this->b()) {
      if (!b_open_ || abortive(why)) {
        b->abort();
      } else {
        b->close();  // what a sent still goes out, then FIN
      }
    }
    return true;
  }
  if (b_live_ && h == b_) {
    b_live_ = false;
    if (!b_open_) return false;  // a failed connect: the caller decides
    b_open_ = false;
    if (connection* a = this->a()) {
      if (abortive(why)) {
        a->abort();
      } else {
        a->close();
      }
    }
    return true;
  }
  return true;
}

}  // namespace sluice
