#pragma once
// sluice-echo's handlers, in a header of their own so that tests can drive
// exactly what the app runs.
//
// One handler object per loop, called only on that loop's thread; what one
// connection needs to remember lives in its session (frame_echo_session).

#include "sluice/core/codec/length_field_decoder.hpp"
#include "sluice/core/codec/length_field_prepender.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/session.hpp"
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

// Frames: [4-byte big-endian payload length][payload]. What every frame
// session of a loop shares: the codec settings (checked once, at start-up).
struct frame_echo_settings {
  frame_echo_settings(const codec::length_field_decoder& d, const codec::length_field_prepender& p) noexcept
      : decoder(d), prepender(p) {}
  codec::length_field_decoder decoder;  // each session decodes with a copy of its own
  codec::length_field_prepender prepender;
};

// One connection's frame echo: its decoder and the frame being echoed.
class frame_echo_session {
 public:
  frame_echo_session(frame_echo_settings& s, connection&) noexcept : decoder_(s.decoder), prepender_(s.prepender) {}

  void on_data(connection& c) noexcept {
    while (c.writable()) {
      // A frame that cannot fit the input limit is refused, not waited for.
      const auto status = codec::fit_input(c, decoder_.decode(c.input(), frame_));
      if (status == codec::frame_status::need_more) {
        // No whole frame left: once the peer is done, so are we.
        if (c.peer_shut()) c.close(close_reason::peer_closed);
        return;
      }
      if (codec::is_error(status)) {
        codec::reject(c, status);
        return;
      }
      if (!prepender_.send(c, std::move(frame_))) {
        c.close(close_reason::resource_limit);
        return;
      }
    }
  }
  void on_writable(connection& c) noexcept { on_data(c); }
  // Frames held back by backpressure still go out before the close.
  void on_peer_shutdown(connection& c) noexcept { on_data(c); }

 private:
  // The decoder keeps no scanning state today (it reads the header again),
  // but a decoder belongs to one connection: that is what the codec
  // promises, so each session has its own.
  codec::length_field_decoder decoder_;
  const codec::length_field_prepender& prepender_;  // stateless; the loop's
  buffer_chain frame_;
};

// The handler a loop serves --frames with: a frame_echo_session per
// connection, made from (decoder, prepender).
using frame_echo_handler = sessions<frame_echo_session, frame_echo_settings>;

class udp_echo_handler final : public datagram_handler {
 public:
  void on_datagram(udp_socket& s, const endpoint& from, std::string_view payload) noexcept override {
    (void)s.send_to(from, payload);  // a full queue is counted as a drop
  }
  // The user-space stack: the datagram goes back in the buffer it came in.
  void on_datagram_chain(udp_socket& s, const endpoint& from, buffer_chain& payload) noexcept override {
    (void)s.send_to(from, std::move(payload));
  }
};

}  // namespace sluice::echo_app
