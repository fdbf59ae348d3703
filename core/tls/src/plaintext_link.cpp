#include "sluice/tls/plaintext_link.hpp"

#include <utility>

#include "sluice/core/loop_base.hpp"

namespace sluice::tls {

void plaintext_link::set_pool(segment_pool* pool) noexcept {
  plain_in_.set_pool(pool);
  plain_out_.set_pool(pool);
  sealed_.set_pool(pool);
}

void plaintext_link::reset() noexcept {
  tls_.reset();
  plain_in_.clear();
  plain_out_.clear();
  sealed_.clear();
}

bool plaintext_link::pump(connection& c) noexcept {
  if (!active() || !c.is_open()) return false;
  // Inside a scope the chains are swapped: the connection holds the
  // plaintext, the link the records.
  buffer_chain& records = in_scope_ ? plain_in_ : c.input();
  buffer_chain& plain = in_scope_ ? c.input() : plain_in_;
  buffer_chain& records_out = in_scope_ ? plain_out_ : c.output();
  if (plain.size() >= c.loop().options().max_input_bytes) return false;
  const bool was_handshaking = tls_.current() == state::handshaking;
  const state s = tls_.receive(records, plain, records_out);
  if (s == state::failed) {
    fail(c);
    return false;
  }
  bool done = false;
  if (was_handshaking && s != state::handshaking) {
    done = true;
    if (observer_ != nullptr) observer_->handshake_done(c);
    // Written while the handshake was under way (a scope seals at its end).
    if (!in_scope_ && !plain_out_.empty()) seal(c);
  }
  // A handshake flight cost a signature or a key exchange: it leaves after
  // this event, not after every other connection's work of the iteration
  // (with 20 handshakes in one poll the first client waited for all 20).
  if (!records_out.empty()) {
    if (was_handshaking) {
      c.expedite();
    } else {
      c.flush();
    }
  }
  return done;
}

void plaintext_link::fail(connection& c) noexcept {
  if (observer_ != nullptr) observer_->failed(c);
  if (!in_scope_) plain_out_.clear();  // (in a scope, its end drops the plaintext)
  c.flush();  // the alert OpenSSL wrote goes out before the close
  if (c.is_open()) c.close(tls_.error());
}

void plaintext_link::swap(connection& c) noexcept {
  std::swap(c.input(), plain_in_);
  std::swap(c.output(), plain_out_);
}

void plaintext_link::seal(connection& c) noexcept {
  const state s = tls_.current();
  const connection::state cs = c.current_state();
  if (s == state::failed || s == state::idle || cs == connection::state::closed || cs == connection::state::free) {
    plain_out_.clear();
    return;
  }
  // Closing or shut for writing: send() refuses, the records go straight
  // into the output the loop still flushes.
  const bool ending = cs != connection::state::open || c.write_shut();
  if (!plain_out_.empty() && s != state::handshaking) {
    if (!ending) {
      sealed_.set_pool(&c.loop().pool());
      if (!tls_.send(plain_out_, sealed_)) {
        sealed_.clear();
        return fail(c);
      }
      if (!sealed_.empty() && !c.send(std::move(sealed_))) {
        // Over the output limit: the watermarks should prevent it; never
        // lose bytes silently.
        sealed_.clear();
        return c.abort();
      }
    } else if (!tls_.send(plain_out_, c.output())) {
      return fail(c);
    }
  }
  if (ending && plain_out_.empty() && (s == state::open || s == state::peer_closed)) tls_.close(c.output());
  if (!c.output().empty()) c.flush();
}

plaintext_link::scope::scope(plaintext_link& l, connection& c) noexcept {
  if (!l.active() || l.in_scope_) return;
  link_ = &l;
  c_ = &c;
  l.in_scope_ = true;
  l.swap(c);
}

plaintext_link::scope::~scope() {
  if (link_ == nullptr) return;
  link_->swap(*c_);
  link_->in_scope_ = false;
  link_->plain_in_.release();
  link_->seal(*c_);
}

}  // namespace sluice::tls
