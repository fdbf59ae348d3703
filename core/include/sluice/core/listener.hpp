#pragma once
// A listening endpoint on one loop. Accepted connections get `handler`.
// Owner core only; owned by its loop (loop_base::listen returns a pointer that
// stays valid until the loop is destroyed).

#include <cstdint>

#include "sluice/core/endpoint.hpp"
#include "sluice/core/timer_wheel.hpp"

namespace sluice {

class handler;
class loop_base;

struct listen_options {
  int backlog = 4096;
  // One socket per loop on the same port, balanced by the kernel (SO_REUSEPORT).
  bool reuse_port = true;
  // Fail if anyone (even another SO_REUSEPORT socket) already listens there.
  bool exclusive = true;
};

class listener {
 public:
  listener(loop_base& loop, handler& h, const listen_options& opts) noexcept
      : loop_(&loop), handler_(&h), opts_(opts) {}
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // The address actually bound (port 0 resolved).
  [[nodiscard]] const endpoint& local() const noexcept { return io.local; }
  [[nodiscard]] handler& get_handler() const noexcept { return *handler_; }
  [[nodiscard]] loop_base& loop() const noexcept { return *loop_; }
  [[nodiscard]] const listen_options& options() const noexcept { return opts_; }
  [[nodiscard]] bool closed() const noexcept { return io.closed; }
  [[nodiscard]] std::uint64_t accepted() const noexcept { return io.accepted; }

  // A single acceptor hands connections to other loops (the runtime's
  // --balance policies): the transport calls the distributor for every
  // accepted socket; true means it took the socket, false: serve it here.
  using distributor = bool (*)(void* ctx, int fd, const endpoint& peer) noexcept;
  void set_distributor(distributor fn, void* ctx) noexcept {
    distribute_ = fn;
    distribute_ctx_ = ctx;
  }
  [[nodiscard]] bool hand_off(int fd, const endpoint& peer) noexcept {
    return distribute_ != nullptr && distribute_(distribute_ctx_, fd, peer);
  }

  // Transport-owned state.
  struct io_state {
    int fd = -1;
    endpoint local;
    bool closed = false;
    // Accepting is paused after EMFILE/ENFILE until `retry` fires or a
    // connection closes on this loop.
    bool paused = false;
    // More connections may be waiting (edge-triggered, batch limit reached).
    bool pending = false;
    std::uint64_t accepted = 0;
    timer retry;
  };
  io_state io;

 private:
  distributor distribute_ = nullptr;
  void* distribute_ctx_ = nullptr;
  loop_base* loop_;
  handler* handler_;
  listen_options opts_;
};

}  // namespace sluice
