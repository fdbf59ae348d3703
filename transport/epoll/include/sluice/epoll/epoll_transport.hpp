#pragma once
// The Linux readiness transport: kernel sockets, one epoll instance per loop.
//
// Every socket is registered once, edge-triggered, for input and output
// (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET), so the steady state makes no epoll_ctl
// calls: one readv per readiness (a short read means drained), one writev per
// flush, and one epoll_wait per iteration, shared by every event it returns.
//
// Owner core only, except wake() (any thread).

#include <sys/epoll.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "sluice/transport/loop.hpp"

namespace sluice::epoll {

// The epoll transport of one loop (see the file comment); loop<epoll_transport>
// owns it and calls it directly. Its public members are the transport_backend
// contract (loop.hpp).
class epoll_transport {
 public:
  // Its registry name.
  static constexpr std::string_view name = "epoll";
  // Events one epoll_wait takes at most.
  static constexpr int max_events = 256;
  // Datagrams one recvmmsg takes at most.
  static constexpr int udp_batch = 16;
  // Receive buffer per datagram: the largest UDP payload.
  static constexpr std::size_t udp_slot_bytes = 65536;

  // Creates the loop's epoll instance and wakeup eventfd; throws
  // std::runtime_error if the kernel refuses.
  explicit epoll_transport(transport_loop& loop);
  epoll_transport(const epoll_transport&) = delete;
  epoll_transport& operator=(const epoll_transport&) = delete;
  ~epoll_transport();

  // ---- data path (see transport_backend in loop.hpp) ----
  // Waits up to timeout for readiness (one epoll_wait) and dispatches every
  // event it returns: accepts, reads, writability, errors; returns the number
  // of events.
  std::size_t poll(duration timeout) noexcept {
    return poll(timeout, [] {});
  }
  // The same, calling after_event() once each event is dispatched (the loop
  // flushes there with loop_options::flush_each_event).
  template <class AfterEvent>
  std::size_t poll(duration timeout, AfterEvent&& after_event) noexcept {
    const int n = wait(timeout);
    for (int i = 0; i < n; ++i) {
      dispatch(events_[static_cast<std::size_t>(i)]);
      after_event();
    }
    serve_pending_accepts();
    return static_cast<std::size_t>(n);
  }
  // Reads what c's socket holds now (the loop's ready pass).
  void read(connection& c) noexcept;
  // Writes as much of c's output as the socket takes (sendmsg over its segments).
  void flush(connection& c) noexcept;
  // Sends FIN (shutdown(SHUT_WR)).
  void shutdown_write(connection& c) noexcept;
  // Closes c's socket: a reset if c was aborted, else a clean close.
  void release(connection& c) noexcept;
  // Sends s's queued datagrams (sendmmsg).
  void flush_udp(udp_socket& s) noexcept;
  // A connection freed its descriptor: listeners paused out of descriptors may
  // accept again.
  void fd_released() noexcept;
  // Interrupts a blocking epoll_wait (writes the eventfd). Any thread.
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
  // Takes over an accepted socket (the single-acceptor hand-off): registers it
  // and opens a connection for it; closes fd if the loop is full.
  void adopt(int fd, const endpoint& peer, handler& h) noexcept;

 private:
  enum kind : std::uint64_t { k_connection = 0, k_listener = 1, k_udp = 2, k_wakeup = 3 };
  static std::uint64_t tag(void* p, kind k) noexcept { return reinterpret_cast<std::uint64_t>(p) | k; }

  int wait(duration timeout) noexcept;  // epoll_wait; 0 on EINTR
  void serve_pending_accepts() noexcept;
  void dispatch(const epoll_event& ev) noexcept;
  void on_connection_event(connection& c, std::uint32_t events) noexcept;
  void accept_ready(listener& l) noexcept;
  void udp_ready(udp_socket& s) noexcept;
  void drain_wakeup() noexcept;
  static void retry_accept(timer& t) noexcept;

  transport_loop& loop_;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::array<epoll_event, max_events> events_{};
  // Listeners whose accept batch ran out (edge-triggered: no new edge will
  // come for the connections still waiting); served in every poll until drained.
  std::vector<listener*> pending_accepts_;
  std::vector<listener*> accept_batch_;
  // Receive slots for recvmmsg, allocated at the first udp_bind.
  std::unique_ptr<std::byte[]> udp_rx_;
};

}  // namespace sluice::epoll
