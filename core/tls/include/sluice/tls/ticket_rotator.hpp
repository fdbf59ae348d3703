#pragma once
// Rotates a process's session-ticket keys (ticket_keys) on one loop's timer
// wheel, for the applications that share one key set among their loops
// (sluice-httpd, sluice-gateway):
//
//   tls::ticket_rotator rotator;                    // outlives the runtime
//   rt.on_start([&](loop_base& l) -> result<void> {
//     if (l.id() == 0) rotator.start(l, keys, period);
//     return {};
//   });
//
// The period's range and default are sluice::ranges::ticket_rotate and
// default_ticket_rotate (the --tls-ticket-rotate flag). A rotation whose
// random generator failed keeps the current key one more period.
//
// Owner loop only (start, stop and the timer run there); the keys it
// rotates are read by every loop, lock-free.

#include <memory>
#include <utility>

#include "sluice/base/cli.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice/tls/ticket_keys.hpp"

namespace sluice::tls {

// See the file comment. Not copyable or movable (its timer points at it).
class ticket_rotator {
 public:
  ticket_rotator() noexcept { timer_.bind<&ticket_rotator::fire>(this); }
  ticket_rotator(const ticket_rotator&) = delete;
  ticket_rotator& operator=(const ticket_rotator&) = delete;

  // Calls keys->rotate() every `period` from now on, on l's timer wheel;
  // call on l's thread (its on_start). A second start replaces the first.
  void start(loop_base& l, std::shared_ptr<ticket_keys> keys, duration period) noexcept {
    loop_ = &l;
    keys_ = std::move(keys);
    period_ = period;
    l.timers().arm_after(timer_, period_);
  }
  // No more rotations (the keys stay as they are). Owner loop.
  void stop() noexcept { timer_.cancel(); }

 private:
  void fire() noexcept {
    if (keys_) (void)keys_->rotate();
    loop_->timers().arm_after(timer_, period_);
  }

  std::shared_ptr<ticket_keys> keys_;
  duration period_ = ranges::default_ticket_rotate;
  loop_base* loop_ = nullptr;
  timer timer_;
};

}  // namespace sluice::tls
