#pragma once
// The byte-stream data path shared by the readiness transports (epoll,
// kqueue): what to do once the poller said a socket is readable or writable.
// Both pollers report the same two facts (readable, possibly with the peer's
// FIN or an error; writable), so the read loop (read budget, input limit, pool
// exhaustion, end of stream) and the flush loop (one writev per call, stop at
// a short write) are written once here and called directly: plain functions,
// no virtual call per event.
//
// Owner core only: every function runs on the loop that owns the connection.

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "sluice/core/connection.hpp"
#include "sluice/core/listener.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/base/result.hpp"
#include "sluice/core/udp_socket.hpp"
#include "kernel/socket_ops.hpp"

namespace sluice::readiness {

// transport_loop::slot(c).bits as the readiness transports use them.
//   bit 0       the peer's FIN (or a hang-up) was signalled: a short read no
//               longer proves the socket drained, because the end of stream
//               still waits to be read and an edge-triggered poller will not
//               report it again. Read until read() returns 0 or fails.
//   bits 8..31  an errno the poller delivered with the hang-up (kqueue puts
//               the socket error in EV_EOF's fflags). Reported as the close
//               reason if reading then ends without an error of its own, as
//               it does where reading the error also cleared it.
inline constexpr std::uint32_t peer_hup = 1;
// Where the poller's errno starts in the bits (see above).
inline constexpr std::uint32_t error_shift = 8;

// Records that the peer hung up, with the error the poller reported (0: none).
inline void note_hangup(connection& c, int err) noexcept {
  transport_loop::slot(c).bits |= peer_hup;
  if (err > 0 && (transport_loop::slot(c).bits >> error_shift) == 0) transport_loop::slot(c).bits |= static_cast<std::uint32_t>(err) << error_shift;
}

// Reads what c's socket holds into c.input() (readv into pool segments) and
// reports it to the loop: data_arrived, peer_shutdown, failed, read_starved
// or read_later when the read budget ran out with bytes left. Call with
// read_pending set; it is cleared once a read proves the socket drained.
void read(transport_loop& loop, connection& c) noexcept;

// What flush() did.
enum class flush_result : std::uint8_t {
  drained,  // output is empty (or the connection closed meanwhile)
  blocked,  // the socket took less than offered: loop.write_blocked(c) was called
  failed,   // a write failed: loop.failed(c, ...) was called
};

// Writes c.output() with send/sendmsg (send_flags added to each call) until
// it is empty or the socket stops taking bytes; reports progress through
// loop.wrote().
flush_result flush(transport_loop& loop, connection& c, int send_flags) noexcept;

// ---- control plane, shared by the readiness transports --------------------------------------

// Starts an outgoing connection: a non-blocking socket with connect() begun,
// and a connection slot (context set) holding it. A peer refused or
// unreachable at once is reported through loop.failed() (on_close in the
// close phase, like a late failure, so callers see one path); the caller
// registers the socket with its poller only while the connection is still
// connecting. Fails only when no socket or no slot could be had. With
// start == false connect() is not called: the caller issues it (io_uring's
// IORING_OP_CONNECT) while the connection is connecting.
result<connection*> begin_connect(transport_loop& loop, const endpoint& to, handler& h, void* context,
                                  bool start = true);

// A connection for an accepted non-blocking socket (TCP_NODELAY and SIGPIPE
// suppression set), not yet opened: the caller registers it, then calls
// loop.opened(). nullptr (socket closed, counted) when the loop is full.
connection* adopt_socket(transport_loop& loop, int fd, const endpoint& peer, handler& h) noexcept;

// Opens a listening socket on `at`, makes its listener (retry timer calling
// `retry`), registers the socket with the poller through watch(fd, listener&)
// (returns 0 or an errno) and hands the listener to the loop. The listener,
// or why not ("cannot watch listener ADDR: ...").
template <class Watch>
result<listener*> listen_and_watch(transport_loop& loop, const endpoint& at, handler& h, const listen_options& opts,
                                   timer::callback retry, Watch&& watch) {
  auto fd = sockets::open_listener(at, opts);
  if (!fd) return fd.err();
  auto l = std::make_unique<listener>(loop, h, opts);
  l->io.fd = *fd;
  l->io.local = sockets::local_address(*fd);
  l->io.retry.set_callback(retry, l.get());
  if (int err = watch(*fd, *l); err != 0) {
    ::close(*fd);
    return error::from_errno(err, "cannot watch listener " + at.to_string());
  }
  listener* raw = l.get();
  loop.track_listener(std::move(l));
  return raw;
}

// The same for a UDP socket bound to `at`.
template <class Watch>
result<udp_socket*> bind_udp_and_watch(transport_loop& loop, const endpoint& at, datagram_handler& h, Watch&& watch) {
  auto fd = sockets::open_udp(at, true);
  if (!fd) return fd.err();
  auto s = std::make_unique<udp_socket>(loop, h);
  s->io.fd = *fd;
  s->io.local = sockets::local_address(*fd);
  if (int err = watch(*fd, *s); err != 0) {
    ::close(*fd);
    return error::from_errno(err, "cannot watch UDP socket " + at.to_string());
  }
  udp_socket* raw = s.get();
  loop.track_udp(std::move(s));
  return raw;
}

// What accept_one() did.
enum class accept_step : std::uint8_t {
  accepted,  // *fd and *peer are set
  next,      // that one connection is gone (aborted, interrupted): try again
  stop,      // nobody waits any more, l was paused, or an error was counted
};
// Accepts one connection from l: a non-blocking, close-on-exec socket in
// *fd and its peer, or what to do instead. Out of descriptors, l is paused
// (counted, retry timer armed): accepting resumes when a connection of this
// loop closes (fd_released) or the timer fires, never by spinning.
accept_step accept_one(transport_loop& loop, listener& l, int* fd, endpoint* peer) noexcept;

// Accepts up to n connections; each goes to the listener's distributor (the
// runtime's --balance hand-off) or, if it declines, to adopt(fd, peer,
// handler). True when all n were taken (more may wait), false when accepting
// stopped (drained, paused out of descriptors, or an error was counted).
template <class Adopt>
bool accept_batch(transport_loop& loop, listener& l, unsigned n, Adopt&& adopt) noexcept {
  for (unsigned i = 0; i < n; ++i) {
    int fd;
    endpoint peer;
    switch (accept_one(loop, l, &fd, &peer)) {
      case accept_step::accepted:
        ++l.io.accepted;
        if (!l.hand_off(fd, peer)) adopt(fd, peer, l.get_handler());
        break;
      case accept_step::next:
        break;
      case accept_step::stop:
        return false;
    }
  }
  return true;
}

#if defined(__linux__)
// Sends every datagram queued on s with sendmmsg, 16 per call, and empties
// the queue; what the kernel refuses (a full socket buffer, an unreachable
// destination) is counted as dropped, as UDP may drop (Linux: sendmmsg).
void send_queued_datagrams(transport_loop& loop, udp_socket& s) noexcept;
#endif

// One received datagram: counts it and hands it to the socket's handler, or
// counts a drop when it was truncated. Call with the pool deferring (views
// the handler takes must stay valid until it returns).
void datagram_arrived(transport_loop& loop, udp_socket& s, const endpoint& from, std::string_view payload,
                      bool truncated) noexcept;

}  // namespace sluice::readiness
