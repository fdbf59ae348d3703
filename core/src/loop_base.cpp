#include "sluice/core/loop_base.hpp"

#include <algorithm>
#include <cassert>

namespace sluice {

namespace {

// A full memory barrier. ThreadSanitizer does not model fences (GCC refuses
// them under -fsanitize=thread), so there a sequentially consistent
// read-modify-write on a private atomic stands in: the same x86 instruction
// class (a locked op), and ordering TSan understands.
#if defined(__SANITIZE_THREAD__)
std::atomic<int> fence_stand_in{0};
inline void full_fence() noexcept { fence_stand_in.fetch_add(0, std::memory_order_seq_cst); }
#else
inline void full_fence() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

}  // namespace

void handler::on_peer_shutdown(connection& c) noexcept { c.close(close_reason::peer_closed); }

loop_base::loop_base(const loop_options& opts, std::uint16_t id)
    : opts_(opts),
      id_(id),
      now_(opts.clock.now()),
      pool_(opts.pool),
      timers_(now_, opts.timer_resolution),
      table_(opts.max_connections, id) {
  stop_timer_.set_callback(
      [](timer& t) noexcept { static_cast<loop_base*>(t.context())->close_all(close_reason::shutdown); }, this);
}

loop_base::~loop_base() {
  assert(table_.live() == 0 && "loop destroyed with live connections");
  if (hub_ != nullptr) hub_->attach(id_, nullptr);
  listeners_.clear();
  udp_sockets_.clear();
}

// ---- application API ----------------------------------------------------------------

void loop_base::stop(duration grace) noexcept {
  if (stopping_) return;
  stopping_ = true;
  for (auto& l : listeners_) close_listener(*l);
  for (auto& s : udp_sockets_) close_udp(*s);
  stop_deadline_ = now_ + grace;
  timers_.arm(stop_timer_, stop_deadline_);
  for (auto& hook : stop_hooks_) hook();
}

void loop_base::request_stop(duration grace) {
  post([this, grace] { stop(grace); });
}

void loop_base::request_stop_from_signal(duration grace) noexcept {
  // As post(): publish, then wake the loop if it announced a sleep.
  signal_stop_ns_.store(std::max<std::int64_t>(0, grace.count()), std::memory_order_seq_cst);
  if (take_sleeping()) wake();
}

void loop_base::post(std::function<void()> fn) {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.push_back(std::move(fn));
    inbox_nonempty_.store(true, std::memory_order_seq_cst);
  }
  if (take_sleeping()) wake();
}

void loop_base::begin_sleep() noexcept {
  sleeping_.store(true, std::memory_order_relaxed);
  full_fence();
}

void loop_base::attach_mail(mail_hub* hub) {
  hub_ = hub;
  inbound_.clear();
  for (unsigned from = 0; from < hub->size(); ++from) {
    if (from != id_) inbound_.push_back(&hub->ring(from, id_));
  }
  pending_mail_.resize(hub->size());
  hub->attach(id_, this);
}

void loop_base::send_to(unsigned target, task t) noexcept {
  if (hub_ == nullptr || target >= hub_->size()) {
    // No runtime around this loop: only messages to itself make sense; they
    // run at the start of the next iteration.
    if (pending_mail_.empty()) pending_mail_.resize(1);
    pending_mail_[0].push_back(std::move(t));
    ++pending_mail_count_;
    return;
  }
  stats_.mail_sent.add();
  if (target == id_ || !pending_mail_[target].empty() || !hub_->ring(id_, target).push(t)) {
    // To self, or behind earlier messages that are still waiting: keep order.
    pending_mail_[target].push_back(std::move(t));
    ++pending_mail_count_;
    return;
  }
  wake_if_sleeping(target);
}

void loop_base::wake_if_sleeping(unsigned target) noexcept {
  // Pairs with the receiver's begin_sleep() before it checks its rings: either
  // it sees our message, or we see it asleep.
  full_fence();
  loop_base* peer = hub_->loop(target);
  if (peer != nullptr && peer->sleeping_.load(std::memory_order_relaxed) && peer->take_sleeping()) {
    stats_.wakeups_sent.add();
    peer->wake();
  }
}

bool loop_base::drain_mail() noexcept {
  bool work = false;
  for (spsc_ring* ring : inbound_) {
    if (std::size_t n = ring->drain(*this); n != 0) {
      stats_.mail_received.add(n);
      work = true;
    }
  }
  if (pending_mail_count_ != 0) {
    for (unsigned target = 0; target < pending_mail_.size(); ++target) {
      auto& q = pending_mail_[target];
      if (target == id_ || hub_ == nullptr) {
        // Messages to self run now, those they send run next time.
        std::size_t n = q.size();
        for (std::size_t i = 0; i < n; ++i) {
          task t = std::move(q.front());
          q.pop_front();
          --pending_mail_count_;
          t.run(*this);
          work = true;
        }
        continue;
      }
      bool moved = false;
      while (!q.empty() && hub_->ring(id_, target).push(q.front())) {
        q.pop_front();
        --pending_mail_count_;
        moved = true;
      }
      if (moved) wake_if_sleeping(target);
    }
  }
  return work;
}

bool loop_base::drain_inbox() {
  bool mail = (!inbound_.empty() || pending_mail_count_ != 0) && drain_mail();
  if (signal_stop_ns_.load(std::memory_order_relaxed) >= 0) [[unlikely]] {
    stop(duration(signal_stop_ns_.exchange(-1, std::memory_order_acq_rel)));
    mail = true;
  }
  if (!inbox_nonempty_.load(std::memory_order_seq_cst)) return mail;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_batch_.swap(inbox_);
    inbox_nonempty_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : inbox_batch_) fn();
  inbox_batch_.clear();
  return true;
}

// ---- phases ---------------------------------------------------------------------------

bool loop_base::has_pending_work() const noexcept {
  if (!ready_list_.empty() || !flush_list_.empty() || !close_list_.empty() || !udp_flush_.empty() ||
      pending_mail_count_ != 0 || inbox_nonempty_.load(std::memory_order_seq_cst) ||
      signal_stop_ns_.load(std::memory_order_seq_cst) >= 0) {
    return true;
  }
  for (const spsc_ring* ring : inbound_) {
    if (ring->nonempty()) return true;
  }
  return false;
}

duration loop_base::poll_timeout() noexcept {
  if (has_pending_work()) return duration::zero();
  time_point due = timers_.next_due();
  if (due == time_point::max()) return duration::max();
  // Relative to the iteration's time (no extra clock read): at worst the
  // poll returns a little early and the next iteration waits the rest.
  return due > now_ ? due - now_ : duration::zero();
}

void loop_base::wake_waiting_readers() noexcept {
  if (waiting_list_.empty()) return;
  const bool starved = pool_.starved();
  for (auto it = waiting_list_.begin(); it != waiting_list_.end();) {
    connection& c = *it;
    bool full = c.state_ == connection::state::open && c.input_.size() >= opts_.max_input_bytes;
    if (!full && !starved && !c.flags_.paused) {
      it = waiting_list_.erase(it);
      c.flags_.waiting = false;
      ready_list_.push_back(c);
    } else {
      ++it;
    }
  }
}

void loop_base::advance_timers() noexcept { stats_.timers_fired.add(timers_.advance(now_)); }

bool loop_base::finished() noexcept { return stopping_ && table_.live() == 0 && close_list_.empty(); }

// ---- connection life ----------------------------------------------------------------------

connection* loop_base::new_connection(handler& h, const endpoint& peer, bool outgoing) noexcept {
  connection* c = table_.allocate();
  if (c == nullptr) {
    if (!outgoing) stats_.accept_rejected.add();
    return nullptr;
  }
  c->loop_ = this;
  c->handler_ = &h;
  c->context_ = nullptr;
  c->state_ = connection::state::connecting;
  c->reason_ = close_reason::none;
  c->flags_ = {};
  c->flags_.outgoing = outgoing;
  c->error_ = 0;
  c->peer_ = peer;
  c->slot_ = {};
  c->input_.set_pool(&pool_);
  c->output_.set_pool(&pool_);
  c->read_timeout_ = opts_.read_timeout;
  c->write_timeout_ = opts_.write_timeout;
  c->idle_timeout_ = opts_.idle_timeout;
  c->phase_start_ = c->last_read_ = c->last_write_ = now_;
  c->deadline_.set_callback(&loop_base::deadline_fired, c);
  stats_.connections.add();
  if (outgoing) arm_deadline(*c);
  return c;
}

void loop_base::opened(connection& c) noexcept {
  assert(c.state_ == connection::state::connecting);
  c.state_ = connection::state::open;
  c.last_read_ = c.last_write_ = now_;
  (c.flags_.outgoing ? stats_.connected : stats_.accepted).add();
  arm_deadline(c);
  pool_.set_deferred(true);
  c.handler_->on_open(c);
  pool_.set_deferred(false);
  after_callback(c);
  // Output written while connecting, or in on_open, goes out now.
  if (c.state_ == connection::state::open && !c.output_.empty()) schedule_flush(c);
}

void loop_base::data_arrived(connection& c) noexcept {
  c.last_read_ = now_;
  if (c.state_ != connection::state::open) {
    // Closing: the application is done with input; drain it so the close
    // does not turn into a reset.
    c.input_.skip(c.input_.size());
    c.input_.release();
    return;
  }
  pool_.set_deferred(true);
  c.handler_->on_data(c);
  pool_.set_deferred(false);
  after_callback(c);
}

void loop_base::peer_shutdown(connection& c) noexcept {
  c.flags_.read_eof = true;
  c.flags_.read_pending = false;
  unlink_ready(c);
  switch (c.state_) {
    case connection::state::open:
      pool_.set_deferred(true);
      c.handler_->on_peer_shutdown(c);
      pool_.set_deferred(false);
      after_callback(c);
      // Both directions are done: nothing more can happen on it.
      if (c.state_ == connection::state::open && c.flags_.shut_done && c.output_.empty()) {
        c.close(close_reason::peer_closed);
      }
      break;
    case connection::state::closing:
      // Lingering after our FIN: the peer's FIN ends it.
      if (c.flags_.shut_done) mark_closed(c, c.reason_);
      break;
    default:
      break;
  }
}

void loop_base::wrote(connection& c, std::size_t n) noexcept {
  c.output_.drop_front(n);
  c.last_write_ = now_;
  stats_.bytes_written.add(n);
  if (c.flags_.above_high && c.output_.size() < opts_.output_low_water) {
    c.flags_.above_high = false;
    if (c.state_ == connection::state::open) {
      pool_.set_deferred(true);
      c.handler_->on_writable(c);
      pool_.set_deferred(false);
      after_callback(c);
    }
  }
}

void loop_base::failed(connection& c, close_reason why, int err) noexcept {
  if (c.state_ == connection::state::closed || c.state_ == connection::state::free) return;
  if (c.state_ == connection::state::connecting && c.flags_.outgoing) stats_.connect_failed.add();
  c.error_ = err;
  mark_closed(c, why);
}

bool loop_base::may_read(connection& c) noexcept {
  if (c.state_ != connection::state::open && c.state_ != connection::state::closing) return false;
  if (c.flags_.read_eof) return false;
  if (c.state_ == connection::state::open) {
    if (c.flags_.paused) return false;  // resume_reading() brings it back
    if (c.input_.size() >= opts_.max_input_bytes) {
      stats_.reads_paused_input_full.add();
      if (!c.ready_hook_.is_linked()) {
        c.flags_.waiting = true;
        waiting_list_.push_back(c);
      }
      return false;
    }
  }
  return true;
}

void loop_base::read_starved(connection& c) noexcept {
  stats_.reads_starved.add();
  c.flags_.read_pending = true;
  if (c.ready_hook_.is_linked()) return;
  c.flags_.waiting = true;
  waiting_list_.push_back(c);
}

void loop_base::read_later(connection& c) noexcept {
  c.flags_.read_pending = true;
  make_ready(c);
}

void loop_base::make_ready(connection& c) noexcept {
  // Already ready, or waiting for a limit to clear (wake_waiting_readers moves it).
  if (!c.ready_hook_.is_linked()) ready_list_.push_back(c);
}

void loop_base::unlink_ready(connection& c) noexcept {
  if (!c.ready_hook_.is_linked()) return;
  if (c.flags_.waiting) {
    waiting_list_.erase(waiting_list_.iterator_to(c));
    c.flags_.waiting = false;
  } else {
    ready_list_.erase(ready_list_.iterator_to(c));
  }
}

void loop_base::write_blocked(connection& c) noexcept {
  c.flags_.write_blocked = true;
  // Output is stuck: the write deadline (if any) must be running.
  if (c.write_timeout_ != duration::zero()) arm_deadline(c);
}

void loop_base::flush_ready(connection& c) noexcept {
  c.flags_.write_blocked = false;
  if (!c.output_.empty() || c.flags_.shut_requested || c.state_ == connection::state::closing) schedule_flush(c);
}

void loop_base::track_listener(std::unique_ptr<listener> l) { listeners_.push_back(std::move(l)); }

void loop_base::track_udp(std::unique_ptr<udp_socket> s) {
  udp_sockets_.push_back(std::move(s));
  udp_flush_.reserve(udp_sockets_.size());  // udp_queued() then never allocates
}

void loop_base::udp_queued(udp_socket& s) noexcept {
  if (s.io.in_flush_list) return;
  s.io.in_flush_list = true;
  udp_flush_.push_back(&s);  // capacity reserved per socket at bind: no allocation here
}

bool loop_base::after_flush(connection& c) noexcept {
  if (c.state_ == connection::state::closed || c.state_ == connection::state::free) return false;
  if (c.flags_.write_blocked && c.output_.empty()) c.flags_.write_blocked = false;
  if (!c.output_.empty()) return false;  // the transport waits for writability
  if (c.state_ == connection::state::closing) {
    if (c.flags_.read_eof) {
      // The peer is done too (whether or not our FIN went out before the
      // close): nothing to linger for.
      mark_closed(c, c.reason_);
      return false;
    }
    if (c.flags_.shut_done) return false;  // lingering for the peer's FIN
    return true;                           // FIN now, then linger for the peer's FIN
  }
  return c.flags_.shut_requested && !c.flags_.shut_done;
}

void loop_base::shut_sent(connection& c) noexcept {
  c.flags_.shut_done = true;
  if (c.state_ == connection::state::closing) {
    arm_deadline(c);  // the linger deadline
    return;
  }
  if (c.flags_.read_eof && c.state_ == connection::state::open) c.close(close_reason::peer_closed);
}

void loop_base::finish_close(connection& c) noexcept {
  assert(c.state_ == connection::state::closed);
  c.deadline_.cancel();
  stats_.connections.sub();
  stats_.closed_by_reason[static_cast<int>(c.reason_)].add();
  pool_.set_deferred(true);
  c.handler_->on_close(c, c.reason_);
  pool_.set_deferred(false);
  c.input_.clear();
  c.output_.clear();
  pool_.reclaim();
  c.context_ = nullptr;
  c.slot_ = {};
  table_.free(c);
  fd_released_ = true;
}

// ---- internals ------------------------------------------------------------------------------

void loop_base::after_callback(connection& c) noexcept {
  // Views the handler took are gone: consumed bytes and parked segments go back.
  c.input_.release();
  pool_.reclaim();
  if (c.state_ != connection::state::open) return;
  if (c.output_.size() >= opts_.output_high_water) c.flags_.above_high = true;
  // Input the handler consumed may let a stalled reader go on.
  if (!c.flags_.read_pending || c.flags_.paused || c.ready_hook_.is_linked()) return;
  if (c.input_.size() < opts_.max_input_bytes) {
    make_ready(c);
  } else {
    // Full: read again once the application consumes (wake_waiting_readers).
    c.flags_.waiting = true;
    waiting_list_.push_back(c);
  }
}

void loop_base::schedule_flush(connection& c) noexcept {
  if (!c.flush_hook_.is_linked() && !c.flags_.write_blocked) flush_list_.push_back(c);
}

void loop_base::mark_closed(connection& c, close_reason why) noexcept {
  if (c.state_ == connection::state::closed || c.state_ == connection::state::free) return;
  c.state_ = connection::state::closed;
  c.reason_ = why;
  if (c.flush_hook_.is_linked()) flush_list_.erase(flush_list_.iterator_to(c));
  unlink_ready(c);
  c.deadline_.cancel();
  close_list_.push_back(c);
}

void loop_base::close_all(close_reason why) noexcept {
  table_.for_each_live([&](connection& c) {
    if (c.state_ != connection::state::closed) mark_closed(c, why);
  });
}

time_point loop_base::next_deadline(const connection& c) const noexcept {
  time_point best = time_point::max();
  auto consider = [&](time_point since, duration d) {
    if (d != duration::zero()) best = std::min(best, since + d);
  };
  switch (c.state_) {
    case connection::state::connecting:
      consider(c.phase_start_, opts_.connect_timeout);
      break;
    case connection::state::closing:
      if (c.flags_.shut_done) consider(c.phase_start_, opts_.linger_timeout);
      if (!c.output_.empty()) consider(c.last_write_, c.write_timeout_);
      break;
    case connection::state::open:
      consider(std::max(c.last_read_, c.last_write_), c.idle_timeout_);
      if (!c.flags_.paused && !c.flags_.read_eof) consider(c.last_read_, c.read_timeout_);
      if (!c.output_.empty()) consider(c.last_write_, c.write_timeout_);
      break;
    default:
      break;
  }
  return best;
}

void loop_base::arm_deadline(connection& c) noexcept {
  time_point t = next_deadline(c);
  if (t == time_point::max()) {
    c.deadline_.cancel();
  } else if (!c.deadline_.armed() || c.deadline_.expiry() != t) {
    timers_.arm(c.deadline_, t);
  }
}

void loop_base::deadline_fired(timer& t) noexcept {
  auto* c = static_cast<connection*>(t.context());
  c->loop_->on_deadline(*c);
}

void loop_base::on_deadline(connection& c) noexcept {
  const time_point now = now_;
  auto expired = [&](time_point since, duration d) { return d != duration::zero() && now >= since + d; };
  switch (c.state_) {
    case connection::state::connecting:
      if (expired(c.phase_start_, opts_.connect_timeout)) {
        stats_.connect_failed.add();
        mark_closed(c, close_reason::connect_timeout);
        return;
      }
      break;
    case connection::state::closing:
      if (!c.output_.empty() && expired(c.last_write_, c.write_timeout_)) {
        c.flags_.abort = true;
        mark_closed(c, close_reason::write_timeout);
        return;
      }
      if (c.flags_.shut_done && expired(c.phase_start_, opts_.linger_timeout)) {
        mark_closed(c, c.reason_);
        return;
      }
      break;
    case connection::state::open:
      if (!c.output_.empty() && expired(c.last_write_, c.write_timeout_)) {
        // Output cannot drain: a clean close would wait forever; reset.
        c.flags_.abort = true;
        mark_closed(c, close_reason::write_timeout);
        return;
      }
      if (!c.flags_.paused && !c.flags_.read_eof && expired(c.last_read_, c.read_timeout_)) {
        c.close(close_reason::read_timeout);
        return;
      }
      if (expired(std::max(c.last_read_, c.last_write_), c.idle_timeout_)) {
        c.close(close_reason::idle_timeout);
        return;
      }
      break;
    default:
      return;
  }
  arm_deadline(c);
}

// ---- connection methods (they need the loop's internals) ------------------------------------

bool connection::write(std::string_view bytes) noexcept {
  if (state_ > state::open || flags_.shut_requested || state_ == state::free) {
    loop_->stats_.writes_rejected.add();
    return false;
  }
  const bool was_empty = output_.empty();
  if (output_.size() + bytes.size() > loop_->opts_.max_output_bytes || !output_.write(bytes)) {
    loop_->stats_.writes_rejected.add();
    return false;
  }
  if (was_empty) {
    last_write_ = loop_->now_;
    if (write_timeout_ != duration::zero()) loop_->arm_deadline(*this);
  }
  if (output_.size() >= loop_->opts_.output_high_water) flags_.above_high = true;
  if (state_ == state::open) loop_->schedule_flush(*this);
  return true;
}

bool connection::send(buffer_chain&& chain) noexcept {
  if (state_ > state::open || flags_.shut_requested || state_ == state::free ||
      output_.size() + chain.size() > loop_->opts_.max_output_bytes) {
    loop_->stats_.writes_rejected.add();
    return false;
  }
  const bool was_empty = output_.empty();
  output_.append(std::move(chain));
  if (was_empty && !output_.empty()) {
    last_write_ = loop_->now_;
    if (write_timeout_ != duration::zero()) loop_->arm_deadline(*this);
  }
  if (output_.size() >= loop_->opts_.output_high_water) flags_.above_high = true;
  if (state_ == state::open) loop_->schedule_flush(*this);
  return true;
}

void connection::flush() noexcept {
  if (state_ == state::open || state_ == state::closing) loop_->schedule_flush(*this);
}

void connection::expedite() noexcept {
  if (state_ != state::open && state_ != state::closing) return;
  loop_->schedule_flush(*this);
  loop_->expedite_ = true;
}

bool connection::writable() const noexcept { return output_.size() < loop_->opts_.output_high_water; }

void connection::pause_reading() noexcept { flags_.paused = true; }

void connection::resume_reading() noexcept {
  if (!flags_.paused) return;
  flags_.paused = false;
  if (state_ == state::open && flags_.read_pending) loop_->make_ready(*this);
  loop_->arm_deadline(*this);  // the read deadline runs again
}

void connection::shutdown_write() noexcept {
  if (state_ != state::open || flags_.shut_requested) return;
  flags_.shut_requested = true;
  loop_->schedule_flush(*this);
}

void connection::close(close_reason why) noexcept {
  switch (state_) {
    case state::connecting:
      loop_->stats_.connect_failed.add();
      loop_->mark_closed(*this, why);
      return;
    case state::open:
      state_ = state::closing;
      reason_ = why;
      phase_start_ = loop_->now_;
      flags_.paused = false;  // keep draining input so the close stays clean
      // A reader parked on the input limit must go on reading (and discarding).
      loop_->unlink_ready(*this);
      if (flags_.read_pending) loop_->make_ready(*this);
      loop_->schedule_flush(*this);
      loop_->arm_deadline(*this);
      return;
    default:
      return;
  }
}

void connection::abort() noexcept {
  if (state_ == state::closed || state_ == state::free) return;
  flags_.abort = true;
  loop_->mark_closed(*this, close_reason::aborted);
}

void connection::set_read_timeout(duration d) noexcept {
  read_timeout_ = d;
  if (state_ != state::free) loop_->arm_deadline(*this);
}

void connection::set_write_timeout(duration d) noexcept {
  write_timeout_ = d;
  if (state_ != state::free) loop_->arm_deadline(*this);
}

void connection::set_idle_timeout(duration d) noexcept {
  idle_timeout_ = d;
  if (state_ != state::free) loop_->arm_deadline(*this);
}

}  // namespace sluice
