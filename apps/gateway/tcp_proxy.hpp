#pragma once
// L4 proxying (mode tcp) on one loop: each downstream connection gets an
// upstream connection made from the same loop; bytes move between the two as
// buffer chains (the input of one is appended to the output of the other,
// zero copy).
//
//   client ==down==> [input]--send-->[output] ==up==> upstream
//          <=======  [output]<--send--[input]  <=====
//
// Backpressure: a side stops being read while its peer's output is above the
// high-water mark and is read again when that output drains below the low
// mark (on_writable), so a connection pair holds at most about
// 2 x (high water + input limit) however fast one side sends. Half-close
// travels both ways (FIN from one side becomes shutdown_write on the other);
// a reset or error on one side resets the other; a failed connect is tried
// on the next upstream (retries), then the client is closed.
//
// Owner core only.

#include <cstdint>
#include <memory>

#include "object_pool.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/base/time.hpp"

namespace sluice::gateway {

class shard;

class tcp_proxy {
 public:
  explicit tcp_proxy(shard& s);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  // The handler for downstream connections that go to pool `pool`.
  [[nodiscard]] std::unique_ptr<handler> make_front(std::size_t pool);

  struct session {
    connection_handle down;
    connection_handle up;
    std::size_t pool = 0;
    unsigned member = 0;
    std::uint64_t tried = 0;   // a bit per upstream already tried
    unsigned attempts = 0;
    time_point connect_started{};
    bool up_open = false;      // the upstream connection was established
    bool up_live = false;      // an upstream connection exists (connecting or open)
    bool down_live = false;
  };

 private:
  class front;
  class back;
  friend class front;
  friend class back;

  // Starts connecting s to the next upstream; false when none is left.
  bool connect_next(session& s) noexcept;
  // Moves from's input to to's output; pauses `from` above to's high water.
  static void forward(connection& from, connection& to) noexcept;
  // One side closed (`downstream`: the client's): end the other to match.
  void end_side(session& s, close_reason why, bool downstream) noexcept;
  void maybe_release(session& s) noexcept;

  shard& shard_;
  std::unique_ptr<back> back_;
  object_pool<session> sessions_;
};

}  // namespace sluice::gateway
