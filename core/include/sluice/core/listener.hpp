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

// How a listener is set up; the defaults suit a server with one listener per
// loop.
struct listen_options {
  int backlog = 4096;  // the kernel's accept queue length (listen(2)'s backlog)
  // One socket per loop on the same port, balanced by the kernel (SO_REUSEPORT).
  bool reuse_port = true;
  // Fail if anyone (even another SO_REUSEPORT socket) already listens there.
  bool exclusive = true;
};

// A listening socket of one loop (see the file comment). Made by the transport
// in loop_base::listen; applications use local(), accepted() and close it with
// loop_base::close_listener.
class listener {
 public:
  // Made by transports, with the loop that owns it, the handler its connections
  // get and its options.
  listener(loop_base& loop, handler& h, const listen_options& opts) noexcept
      : loop_(&loop), handler_(&h), opts_(opts) {}
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // The address actually bound (port 0 resolved).
  [[nodiscard]] const endpoint& local() const noexcept { return io.local; }
  // The handler accepted connections get.
  [[nodiscard]] handler& get_handler() const noexcept { return *handler_; }
  // The loop that owns it.
  [[nodiscard]] loop_base& loop() const noexcept { return *loop_; }
  // The options it was made with.
  [[nodiscard]] const listen_options& options() const noexcept { return opts_; }
  // close_listener() was called: no more accepts.
  [[nodiscard]] bool closed() const noexcept { return io.closed; }
  // Connections accepted so far.
  [[nodiscard]] std::uint64_t accepted() const noexcept { return io.accepted; }

  // A single acceptor hands connections to other loops (the runtime's
  // --balance policies): the transport calls the distributor for every
  // accepted socket; true means it took the socket, false: serve it here.
  using distributor = bool (*)(void* ctx, int fd, const endpoint& peer) noexcept;
  // Installs the distributor fn (ctx passed back to it); the runtime does, on
  // its acceptor loop.
  void set_distributor(distributor fn, void* ctx) noexcept {
    distribute_ = fn;
    distribute_ctx_ = ctx;
  }
  // For transports, on each accepted socket: offers it to the distributor; true
  // if it took the socket (then the transport forgets it).
  [[nodiscard]] bool hand_off(int fd, const endpoint& peer) noexcept {
    return distribute_ != nullptr && distribute_(distribute_ctx_, fd, peer);
  }

  // Transport-owned state.
  struct io_state {
    int fd = -1;          // the listening socket (-1: none, or not a kernel socket)
    endpoint local;       // the address bound
    bool closed = false;  // closed: no more accepts
    // Accepting is paused after EMFILE/ENFILE until `retry` fires or a
    // connection closes on this loop.
    bool paused = false;
    // More connections may be waiting (edge-triggered, batch limit reached).
    bool pending = false;
    std::uint64_t accepted = 0;  // connections accepted
    timer retry;                 // re-arms accepting after EMFILE/ENFILE (loop_options::accept_retry)
  };
  // This listener's transport state (see io_state). For transports only.
  io_state io;

 private:
  distributor distribute_ = nullptr;
  void* distribute_ctx_ = nullptr;
  loop_base* loop_;
  handler* handler_;
  listen_options opts_;
};

}  // namespace sluice
