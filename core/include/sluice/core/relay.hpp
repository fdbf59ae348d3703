#pragma once
/// @file
/// A relay of two connections of one loop: what one end reads, the other end
/// writes, as buffer chains (the input of one is appended to the output of the
/// other, no copy), with backpressure, half-close and byte counts. The core of
/// an L4 proxy; sluice-gateway's tcp mode is one.
///
///     a ==> [a.input] --send--> [b.output] ==> b
///     a <== [a.output] <--send-- [b.input] <== b
///
/// Backpressure: an end stops being read while the other end's output is
/// above the high-water mark (connection::writable() is false) and is read
/// again when that output drains below the low mark (on_writable), so a pair
/// holds at most about 2 x (high water + input limit) however fast one end
/// sends. Half-close travels both ways: FIN from one end becomes
/// shutdown_write() on the other once what it sent went out. Closing: when one
/// end closes, the other is closed to match, gracefully (its pending output
/// still goes out, then FIN) after a clean ending, with a reset after an
/// abortive one (see abortive()), or when the closing end was held back by
/// backpressure (bytes it had not passed on are lost with it), so a peer never
/// takes a failure or a truncation for a normal end of stream.
///
/// End b may still be connecting when the relay starts (a proxy's upstream):
/// a is not read until b opens, then what a sent meanwhile (and its FIN) goes
/// on. If b fails to connect, a is left alone, so the caller may connect
/// another b (connect_b()) or close a.
///
/// Where it lives: a relay is plain state (two handles, two counts), kept in
/// the session of one end, usually a (see session.hpp). The session of each
/// end passes its callbacks on (on_open, on_data, on_writable,
/// on_peer_shutdown, on_close). The session of the other end reaches the
/// relay through a's handle: while loop_base::get(a) is not null, a's session
/// (and so the relay) is alive, as sessions<> destroys a session only in its
/// connection's on_close.
///
///     struct client {                     // sessions<client, ...> of a
///       sluice::relay link;
///       void on_data(connection& c) noexcept { link.on_data(c); }
///       ...
///     };
///
/// The data path allocates nothing, throws nothing and logs nothing. Owner
/// core only, as everything a loop holds.

#include <cstdint>

#include "sluice/core/close_reason.hpp"
#include "sluice/core/connection.hpp"

namespace sluice {

class loop_base;

/// Moves bytes both ways between two connections of one loop (see the file
/// comment for the rules).
class relay {
 public:
  /// An idle relay: no end yet.
  relay() noexcept = default;
  /// Not copyable: the other end's session reaches it where it lives.
  relay(const relay&) = delete;
  /// Not copyable.
  relay& operator=(const relay&) = delete;

  /// Starts relaying between `a`, which is open, and the connection behind
  /// `b`, which may be open or still connecting. Until b is open, a is not
  /// read (its bytes could go nowhere). Counts start from zero.
  void start(connection& a, connection_handle b) noexcept;
  /// Gives the relay a new end b after the previous one failed to connect
  /// (on_close() returned false): a retry on another address.
  void connect_b(connection_handle b) noexcept;

  /// Call from b's on_open: b is established. a is read again, and what a
  /// sent meanwhile goes to b (and a's FIN after it, if it came).
  void on_open(connection& b) noexcept;
  /// Call from either end's on_data: its input goes to the other end's
  /// output; the end stops being read while the other end is above high water.
  void on_data(connection& c) noexcept;
  /// Call from either end's on_writable: its output drained below the low
  /// mark, so the other end, held back meanwhile, is read again.
  void on_writable(connection& c) noexcept;
  /// Call from either end's on_peer_shutdown (instead of closing): the rest
  /// of its input goes across, then the other end sends FIN. The relay goes
  /// on the other way until that end ends too.
  void on_peer_shutdown(connection& c) noexcept;
  /// Call from either end's on_close: the other end is closed to match
  /// (aborted if `why` is abortive() or the other end is still connecting,
  /// else closed gracefully). Returns false, touching nothing, when `c` is an
  /// end b that never opened (a failed connect): the caller retries with
  /// connect_b() or closes a itself.
  bool on_close(connection& c, close_reason why) noexcept;

  /// End a, while it is alive (else nullptr).
  [[nodiscard]] connection* a() const noexcept;
  /// End b, while it is alive, connecting or open (else nullptr).
  [[nodiscard]] connection* b() const noexcept;
  /// b has opened (and not yet closed).
  [[nodiscard]] bool b_open() const noexcept { return b_open_; }
  /// Bytes moved from a's input to b's output so far.
  [[nodiscard]] std::uint64_t a_to_b() const noexcept { return a_to_b_; }
  /// Bytes moved from b's input to a's output so far.
  [[nodiscard]] std::uint64_t b_to_a() const noexcept { return b_to_a_; }

  /// Whether an ending must reach the other end as a reset rather than a
  /// clean FIN: a reset, an abort, an I/O error, a write timeout, a resource
  /// limit, the loop's shutdown or a protocol error. A clean close, FIN, or an
  /// idle or read timeout end the other side cleanly.
  [[nodiscard]] static bool abortive(close_reason why) noexcept;

 private:
  // Moves from's input to to's output; pauses `from` above to's high water.
  // On a refused send (over the output limit, out of buffer memory) both ends
  // are aborted rather than losing bytes silently.
  void forward(connection& from, connection& to, std::uint64_t& count) noexcept;
  // The other end of c, if it is alive; nullptr when c is no end of this relay.
  [[nodiscard]] connection* other(const connection& c) const noexcept;
  // Whether end c is paused by the relay (the other end above high water).
  bool& held(const connection& c) noexcept;

  loop_base* loop_ = nullptr;
  connection_handle a_;
  connection_handle b_;
  std::uint64_t a_to_b_ = 0;
  std::uint64_t b_to_a_ = 0;
  bool a_live_ = false;
  bool b_live_ = false;
  bool b_open_ = false;
  bool a_held_ = false;  // a paused: b's output above high water
  bool b_held_ = false;  // b paused: a's output above high water
};

}  // namespace sluice
