#pragma once
// What an application implements: callbacks for a connection's life and, for
// UDP, for each datagram. One handler object may serve many connections (keep
// per-connection state in connection::context()); a loop calls it only from its
// own thread, so a handler used by one loop needs no locking.
//
// Life of a connection, as the handler sees it:
//   on_open            established (accepted, or an outgoing connect completed)
//   on_data*           bytes were appended to input(); consume what you can
//   on_writable*       output() drained below the low-water mark after writable()
//                      had turned false (backpressure released)
//   on_peer_shutdown?  the peer will send no more (FIN); by default: close()
//   on_close           exactly once, with the reason; the connection and its
//                      handle die when it returns. An outgoing connection that
//                      never opened gets on_close (connect_refused, ...) only.
//
// Callbacks are noexcept: an exception escaping a handler terminates, as the
// data path has no place to report it.

#include <string_view>

#include "sluice/core/close_reason.hpp"

namespace sluice {

class buffer_chain;
class connection;
class endpoint;
class udp_socket;

class handler {
 public:
  virtual ~handler() = default;
  virtual void on_open(connection&) noexcept {}
  virtual void on_data(connection& c) noexcept = 0;
  virtual void on_writable(connection&) noexcept {}
  virtual void on_peer_shutdown(connection& c) noexcept;
  virtual void on_close(connection&, close_reason) noexcept {}
};

class datagram_handler {
 public:
  virtual ~datagram_handler() = default;
  // `payload` is valid until the callback returns.
  virtual void on_datagram(udp_socket& socket, const endpoint& from, std::string_view payload) noexcept = 0;
  // The user-space stack delivers a datagram as the chain of packet buffers it
  // arrived in (mbuf-backed segments: nothing copied). Keep it, or move it into
  // udp_socket::send_to (an echo then reuses the received buffer). The default
  // hands a contiguous view to on_datagram (copied only for a reassembled
  // datagram whose fragments lie in several buffers). Kernel transports call
  // on_datagram directly.
  virtual void on_datagram_chain(udp_socket& socket, const endpoint& from, buffer_chain& payload) noexcept;
};

}  // namespace sluice
