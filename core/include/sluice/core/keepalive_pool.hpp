#pragma once
/// @file
/// Idle outgoing connections kept for reuse, per upstream, on one loop: an
/// HTTP/1.1 client or proxy parks a connection whose exchange ended cleanly
/// and takes it back for the next request to the same upstream, instead of
/// connecting anew.
///
/// Bounds: at most `max_idle` connections per upstream (a connection over
/// the bound is refused: the caller closes it), each for at most the pool's
/// idle timeout since it was parked (then the pool closes it, reason
/// idle_timeout). take() hands out the newest one (the least likely to have
/// been closed by the upstream meanwhile) and closes the stale ones it finds
/// on the way (gone, closing, half-closed by the peer, holding unread bytes,
/// past the idle timeout).
///
/// The application keeps the connection's handler and session; the pool holds
/// only handles. While a connection is parked its session must:
///   - on bytes or FIN from the upstream (an idle upstream has nothing to say):
///     forget() it, then close it;
///   - in on_close: call forget(), which drops it from the pool (a connection
///     the pool closed itself is no longer there: forget() returns false).
/// park() resumes reading, so that the upstream's FIN is seen while idle.
///
///     // the exchange ended cleanly:
///     if (!pool.park(id, u)) u.close();      // else the session marks itself idle
///     // the next request:
///     if (connection* u = pool.take(id)) send_on(*u); else connect(...);
///
/// Upstreams are registered once (add_upstream, control plane: it allocates
/// the room for max_idle handles); parking, taking and forgetting allocate
/// nothing, throw nothing and log nothing. When the loop stops, close_all()
/// (from a loop_base::on_stop hook) closes what the pool holds, so the loop
/// need not wait its grace period for them; park() refuses once the loop is
/// stopping.
///
/// Lifetime: the pool must outlive the loop's connections, as their handlers
/// do (a parked connection's session calls forget() from its on_close, which
/// may come when the loop itself is torn down).
///
/// Owner core only, as everything a loop holds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sluice/core/connection.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/core/stats.hpp"
#include "sluice/base/time.hpp"
#include "sluice/core/timer_wheel.hpp"

namespace sluice {

class loop_base;

/// Idle outgoing connections per upstream, with a bound and an idle timeout
/// (see the file comment).
class keepalive_pool {
 public:
  /// The index of a registered upstream, from add_upstream().
  using upstream_id = std::uint32_t;
  /// No upstream: what find() returns for an address never registered.
  static constexpr upstream_id none = UINT32_MAX;

  /// An empty pool for connections of `loop`. A parked connection is closed
  /// `idle_timeout` after it was parked; zero keeps it until the upstream or
  /// the application ends it.
  explicit keepalive_pool(loop_base& loop, duration idle_timeout = std::chrono::seconds(60));
  /// Cancels the pool's timer; closes nothing (the loop ends its connections).
  ~keepalive_pool();
  /// Not copyable: its timer is armed for this object.
  keepalive_pool(const keepalive_pool&) = delete;
  /// Not copyable.
  keepalive_pool& operator=(const keepalive_pool&) = delete;

  /// Registers an upstream that keeps up to `max_idle` idle connections (zero:
  /// none, every park() is refused); `idle_gauge`, if given, is kept equal to
  /// the number it holds. Control plane: allocates room for `max_idle`
  /// handles, so that parking never does. The same address may be registered
  /// more than once (for example in two load-balancing groups), each with its
  /// own connections.
  upstream_id add_upstream(const endpoint& at, std::size_t max_idle, counter* idle_gauge = nullptr);
  /// The first upstream registered for `at`, or `none`.
  [[nodiscard]] upstream_id find(const endpoint& at) const noexcept;
  /// How many upstreams were registered (ids are 0 to upstreams() - 1).
  [[nodiscard]] std::size_t upstreams() const noexcept { return upstreams_.size(); }
  /// The address upstream `u` was registered with.
  [[nodiscard]] const endpoint& address(upstream_id u) const noexcept { return upstreams_[u].at; }
  /// The bound of upstream `u`.
  [[nodiscard]] std::size_t max_idle(upstream_id u) const noexcept { return upstreams_[u].max_idle; }
  /// The idle timeout (zero: none).
  [[nodiscard]] duration idle_timeout() const noexcept { return idle_timeout_; }

  /// Keeps `c`, an open connection to upstream `u` whose exchange ended, for
  /// reuse. False when it cannot be kept: the upstream holds max_idle already,
  /// the loop is stopping, or `c` is not reusable (not open, write side shut,
  /// FIN or unread bytes from the upstream); the caller then closes it.
  [[nodiscard]] bool park(upstream_id u, connection& c) noexcept;
  /// The newest reusable connection parked for `u`, now no longer in the
  /// pool (the caller owns it again), or nullptr when there is none. Stale
  /// ones found first are closed and dropped.
  [[nodiscard]] connection* take(upstream_id u) noexcept;
  /// Drops `c` from upstream `u`'s idle connections; true if it was there.
  /// Call from the on_close of a connection that may be parked.
  bool forget(upstream_id u, const connection& c) noexcept;
  /// Closes every connection the pool holds and empties it (the loop stops).
  void close_all() noexcept;

  /// Idle connections held for upstream `u`.
  [[nodiscard]] std::size_t idle(upstream_id u) const noexcept { return upstreams_[u].idle.size(); }
  /// Idle connections held, all upstreams together.
  [[nodiscard]] std::size_t idle() const noexcept { return total_; }
  /// Connections handed out by take() so far (reuses).
  [[nodiscard]] std::uint64_t reused() const noexcept { return reused_; }
  /// Connections the pool closed as stale so far (idle timeout, or found
  /// unusable by take()).
  [[nodiscard]] std::uint64_t closed_stale() const noexcept { return closed_stale_; }

 private:
  struct entry {
    connection_handle conn;
    time_point since;  // when it was parked
  };
  struct upstream {
    endpoint at;
    std::size_t max_idle = 0;
    counter* gauge = nullptr;
    std::vector<entry> idle;  // oldest first; capacity max_idle
  };

  [[nodiscard]] static bool reusable(connection& c) noexcept;
  [[nodiscard]] bool expired(const entry& e, time_point now) const noexcept;
  // Drops idle[i, j) of u, closing what is still alive with `why`.
  void drop(upstream& u, std::size_t i, std::size_t j, bool close, close_reason why) noexcept;
  void arm(time_point when) noexcept;
  void expire() noexcept;  // the timer: closes what passed the idle timeout

  loop_base& loop_;
  duration idle_timeout_;
  std::vector<upstream> upstreams_;
  std::size_t total_ = 0;
  std::uint64_t reused_ = 0;
  std::uint64_t closed_stale_ = 0;
  timer timer_;  // armed for the oldest entry's expiry while any is held
};

}  // namespace sluice
