#pragma once
// The BSD/macOS readiness transport: kernel sockets, one kqueue per loop,
// following FreeBSD's kqueue(2).
//
//   - Connections: EVFILT_READ with EV_CLEAR (edge-like: reported again only
//     when more arrives), EVFILT_WRITE with EV_CLEAR | EV_DISPATCH, armed only
//     while output waits for room (so the ACKs of a busy connection do not
//     wake the loop). EV_EOF marks the peer's FIN or a reset; its fflags
//     carry the socket error.
//   - Listeners: EVFILT_READ, level-triggered; its data is the number of
//     connections waiting, which bounds the accept batch. Out of
//     descriptors, the listener is disabled (EV_DISABLE) until a connection
//     closes or accept_retry passes: never a spin.
//   - Interest changes are batched and handed to the same kevent() call that
//     waits; the wait's timeout is the loop's next timer (from its wheel).
//   - wake() triggers an EVFILT_USER event: any thread.
//   - Listener distribution: one socket per loop where the kernel balances
//     (SO_REUSEPORT_LB on FreeBSD); where it does not (macOS), the runtime
//     defaults to a single acceptor that hands sockets to the other loops
//     (its --balance policies): accepted sockets go through the listener's
//     distributor, and adopt() serves a socket accepted elsewhere.
//
// Only POSIX and <sys/event.h> here; OS differences come from platform/.
// On Linux this file is compiled only for tests, against the emulated
// <sys/event.h> in tests/support/kqueue_emulation.
//
// Owner core only, except wake() (any thread).

#include <sys/types.h>
#include <sys/event.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/transport/loop.hpp"

namespace sluice::kqueue {

// The kqueue transport of one loop (see the file comment);
// loop<kqueue_transport> owns it and calls it directly. Its public members are
// the transport_backend contract (loop.hpp).
class kqueue_transport {
 public:
  // Its registry name.
  static constexpr std::string_view name = "kqueue";
  // Events one kevent() call takes at most.
  static constexpr int max_events = 256;
  // Changes wait here until the next kevent() call; a fuller batch is
  // handed over early.
  static constexpr int max_changes = 256;
  // Receive buffer per datagram: the largest UDP payload.
  static constexpr std::size_t udp_slot_bytes = 65536;

  // Creates the loop's kqueue and its EVFILT_USER wakeup; throws
  // std::runtime_error if the kernel refuses.
  explicit kqueue_transport(transport_loop& loop);
  kqueue_transport(const kqueue_transport&) = delete;
  kqueue_transport& operator=(const kqueue_transport&) = delete;
  ~kqueue_transport();

  // ---- data path (see transport_backend in loop.hpp) ----
  // Hands over the batched interest changes and waits up to timeout in one
  // kevent() call, then dispatches every event it returns; returns the number
  // of events.
  std::size_t poll(duration timeout) noexcept;
  // Reads what c's socket holds now (the loop's ready pass).
  void read(connection& c) noexcept;
  // Writes as much of c's output as the socket takes; arms EVFILT_WRITE if some
  // is left.
  void flush(connection& c) noexcept;
  // Sends FIN (shutdown(SHUT_WR)).
  void shutdown_write(connection& c) noexcept;
  // Closes c's socket: a reset if c was aborted, else a clean close.
  void release(connection& c) noexcept;
  // Sends s's queued datagrams.
  void flush_udp(udp_socket& s) noexcept;
  // A connection freed its descriptor: a listener disabled out of descriptors
  // is enabled again.
  void fd_released() noexcept;
  // Interrupts a blocking kevent() (triggers the EVFILT_USER event). Any
  // thread.
  void wake() noexcept;

  // ---- control plane ----
  // Opens and registers a listening socket on `at` (see loop_base::listen).
  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts);
  // Starts a non-blocking connect to `to` (see loop_base::connect).
  result<connection_handle> connect(const endpoint& to, handler& h, void* context);
  // Binds and registers a UDP socket on `at` (see loop_base::udp_bind).
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  // Stops accepting on l and closes its socket.
  void close_listener(listener& l) noexcept;
  // Closes s's socket.
  void close_udp(udp_socket& s) noexcept;
  // Takes over an accepted non-blocking socket: registers it and opens a
  // connection for it; closes fd if the loop is full.
  void adopt(int fd, const endpoint& peer, handler& h) noexcept;

  // Changes waiting for the next kevent() call (for tests).
  [[nodiscard]] int pending_changes() const noexcept { return nchanges_; }

 private:
  enum kind : std::uintptr_t { k_connection = 0, k_listener = 1, k_udp = 2, k_wakeup = 3 };

  // Queues an interest change for the next kevent() call.
  void change(int fd, short filter, unsigned short flags, void* object, kind k) noexcept;
  // Hands the queued changes over now (the batch is full).
  void submit_changes() noexcept;
  // Applies one change at once (control plane): the error, if any.
  [[nodiscard]] int register_now(std::uintptr_t ident, short filter, unsigned short flags, void* object, kind k) noexcept;
  // Drops queued changes for a descriptor about to be closed.
  void forget_changes(int fd) noexcept;

  void dispatch(const struct kevent& ev) noexcept;
  void change_failed(const struct kevent& ev) noexcept;
  void on_read_event(connection& c, const struct kevent& ev) noexcept;
  void on_write_event(connection& c, const struct kevent& ev) noexcept;
  void accept_ready(listener& l, std::int64_t waiting) noexcept;
  void udp_ready(udp_socket& s) noexcept;
  static void retry_accept(timer& t) noexcept;

  transport_loop& loop_;
  int kq_ = -1;
  int nchanges_ = 0;
  std::array<struct kevent, max_changes> changes_{};
  std::array<struct kevent, max_events> events_{};
  // Receipts for an early batch (never the array poll() is dispatching).
  std::array<struct kevent, max_changes> receipts_{};
  // Receive buffer for UDP, allocated at the first udp_bind.
  std::unique_ptr<std::byte[]> udp_rx_;
};

}  // namespace sluice::kqueue
