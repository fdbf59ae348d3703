#pragma once
// sluice-echo's handlers, in a header of their own so that tests can drive
// exactly what the app runs.
//
// One handler object per loop, called only on that loop's thread.

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/udp_socket.hpp"

namespace sluice::echo_app {

class echo_handler final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    // Over the high-water mark: leave the input where it is. Reading stops at
    // the input limit (backpressure to the peer) until on_writable.
    if (!c.writable()) return;
    (void)c.send(std::move(c.input()));
    // The peer is done and everything it sent is on its way back.
    if (c.peer_shut() && c.input().empty()) c.close(close_reason::peer_closed);
  }
  void on_writable(connection& c) noexcept override { on_data(c); }
  // The peer's FIN may come while input is still held back (output above
  // high water): echo that first, then close (on_data does). Closing at once
  // would discard it.
  void on_peer_shutdown(connection& c) noexcept override { on_data(c); }
};

class udp_echo_handler final : public datagram_handler {
 public:
  void on_datagram(udp_socket& s, const endpoint& from, std::string_view payload) noexcept override {
    (void)s.send_to(from, payload);  // a full queue is counted as a drop
  }
};

}  // namespace sluice::echo_app
