#include "memif_reconnect.hpp"

#include <rte_alarm.h>
#include <rte_errno.h>

#include <cstdio>
#include <utility>

#include "sluice/dpdk/preflight.hpp"

namespace sluice::dpdk {

using std::chrono::microseconds;
using clock_type = std::chrono::steady_clock;

memif_reconnect::memif_reconnect(dpdk_device& device, std::string vdev, std::chrono::nanoseconds loop_sleep)
    : device_(device),
      vdev_(std::move(vdev)),
      socket_(memif_socket_name(vdev_)),
      // A loop sees a closed gate at its next poll: after its longest idle
      // sleep, plus whatever one poll's work takes (generously).
      gate_timeout_(2 * loop_sleep + std::chrono::milliseconds(200)) {
  device_.watch_memif_reconnects();
  listener_ = memif_listener_id(vdev_);
  arm(check_every);
}

memif_reconnect::~memif_reconnect() {
  stopping_.store(true);
  // Waits for a running callback to end (it sees stopping_ and does not
  // re-arm; one it re-armed before is cancelled by this same call).
  (void)rte_eal_alarm_cancel(&on_alarm, this);
  if (gates_closed_) device_.open_gates();
}

void memif_reconnect::arm(microseconds after) noexcept {
  if (stopping_.load()) return;
  if (rte_eal_alarm_set(static_cast<std::uint64_t>(after.count()), &on_alarm, this) != 0) {
    std::fprintf(stderr, "sluice: net_memif client: cannot set the reconnect alarm: %s; a lost server will not be "
                 "reconnected\n", rte_strerror(rte_errno));
  }
}

void memif_reconnect::on_alarm(void* self) {
  auto* r = static_cast<memif_reconnect*>(self);
  if (r->stopping_.load()) return;
  r->arm(r->step());
}

microseconds memif_reconnect::step() {
  const auto now = clock_type::now();
  const bool up = device_.link_up();
  if (state_ == state::up) {
    if (up) return check_every;
    device_.count_memif_link_down();
    down_since_ = now;
    next_try_ = now;
    said_no_server_ = false;
    state_ = state::down;
    std::fprintf(stderr, "sluice: net_memif client: the link to the server on %s is down; reconnecting once a "
                 "second while a server listens there\n", socket_.c_str());
  }
  if (state_ == state::connecting) {
    if (up) {
      device_.open_gates();
      gates_closed_ = false;
      device_.count_memif_reconnect();
      state_ = state::up;
      listener_ = memif_listener_id(vdev_);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - down_since_).count();
      std::fprintf(stderr, "sluice: net_memif client: reconnected to the server on %s after %lld ms down\n",
                   socket_.c_str(), static_cast<long long>(ms));
      return check_every;
    }
    // The server's handshake runs on this thread between our looks.
    if (now < next_try_) return microseconds(1000);
    state_ = state::down;  // not accepted within a try: restart again
  }
  // The link is down: the loops keep off the queues until it is back (and
  // their stacks do not retry refused frames against a dead ring).
  if (!gates_closed_) {
    if (!device_.close_gates(gate_timeout_, stopping_)) return check_every;  // a loop did not answer: later
    gates_closed_ = true;
  }
  if (now < next_try_) return std::chrono::duration_cast<microseconds>(next_try_ - now);
  next_try_ = now + try_every;
  const std::uint64_t listener = memif_listener_id(vdev_);
  if (listener == 0 || (listener == listener_ && now - down_since_ < same_server_wait)) {
    if (listener == 0 && !said_no_server_) {
      std::fprintf(stderr, "sluice: net_memif client: no server listens on %s yet; still looking once a second\n",
                   socket_.c_str());
      said_no_server_ = true;
    }
    return try_every;
  }
  state_ = device_.restart() ? state::connecting : state::down;
  return state_ == state::connecting ? microseconds(1000) : try_every;
}

}  // namespace sluice::dpdk
