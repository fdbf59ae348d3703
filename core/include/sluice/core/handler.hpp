#pragma once
// What an application implements: callbacks for a connection's life and, for
// UDP, for each datagram. One handler object may serve many connections, so
// what belongs to one connection (a decoder, a parser) must not live in its
// members: give it a session instead (sessions<S>, session.hpp). A loop calls
// a handler only from its own thread, so a handler used by one loop needs no
// locking.
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

// The callbacks of byte-stream connections. Subclass it and override what you
// need (on_data at least); a listener or connect() names the handler, which
// must outlive every connection it serves. Called on the owning loop's thread
// only; see the file comment for the order of calls.
class handler {
 public:
  virtual ~handler() = default;
  // The connection is established (accepted, or an outgoing connect completed).
  // The first callback a connection gets; deadlines and a context are often set
  // here.
  virtual void on_open(connection&) noexcept {}
  // Bytes were appended to c.input(). Consume what forms a complete unit and
  // leave the rest there: on_data comes again when more arrives.
  virtual void on_data(connection& c) noexcept = 0;
  // Output drained below the low-water mark after writable() had turned false:
  // produce again.
  virtual void on_writable(connection&) noexcept {}
  // The peer sent FIN and will send no more; output may still be written. The
  // default closes c with close_reason::peer_closed; override it to answer
  // first or keep the half-open connection.
  virtual void on_peer_shutdown(connection& c) noexcept;
  // The connection ended, for the reason given; called exactly once, and the
  // connection and its handle are gone when it returns. Release what you keep
  // for it here.
  virtual void on_close(connection&, close_reason) noexcept {}
};

// The callbacks of UDP sockets (udp_socket), one call per datagram received, on
// the socket's loop thread. Must outlive the sockets it serves.
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
