#pragma once
// TLS under an application's own session type, unchanged: the application's
// session reads plaintext from c.input() and writes plaintext with
// c.write()/c.send()/c.output(), as it would on a plain connection.
//
//   struct my_session { my_session(my_ctx&, connection&); void on_data(connection&) noexcept; ... };
//   auto tls = tls::context::make_server({.certs = {{"cert.pem", "key.pem"}}});
//   rt.listen(at, [&](loop_base&) {
//     return std::make_unique<tls::server_sessions<my_session, my_ctx>>(
//         *tls::context::make_server(opts), my_ctx_args...);   // one context per loop
//   });
//
// How: each callback of the application's session runs inside a
// tls::plaintext_link scope (plaintext_link.hpp): the connection's input and
// output chains are swapped with the link's plaintext chains (an exchange of
// list heads, no copy); when the callback returns, they are swapped back,
// the plaintext written is sealed into records sent on the connection, and
// close_notify follows a close() or shutdown_write(). On the wire the
// connection only ever carries records.
//
// The client side is the same wrapper over connect(): client_sessions<S>
// made from a client context; the hello (with session_context::server_name
// as SNI, and the last saved session if session_context::resume) is written
// at TCP open, Inner's on_open runs then too and what it writes is sealed
// once the handshake is done.
//
//   auto conns = std::make_unique<tls::client_sessions<my_session, my_ctx>>(
//       *tls::context::make_client(opts), my_ctx_args...);
//   conns->context().server_name = "example.test";
//   conns->connect(loop, to);
//
// Limits: code that writes to the connection outside the session's
// callbacks (a timer) writes outside TLS: run it inside with_plaintext(),
// or close quietly instead (http::request_deadline::set_quiet).
//
// Backpressure: plaintext waiting for the application is held up to the
// loop's max_input_bytes; past that, records wait in the input and the loop
// stops reading. While the sealed output is above the loop's high-water
// mark, Inner's on_data waits for on_writable (Inner's own c.writable()
// sees only its plaintext chain).
// Owner core only.

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/session.hpp"
#include "sluice/tls/context.hpp"
#include "sluice/tls/plaintext_link.hpp"
#include "sluice/tls/session.hpp"

namespace sluice::tls {

// The per-loop state of server_sessions: the loop's TLS context and the
// application's own Context (none for void).
template <class AppContext>
struct session_context {
  // Takes the loop's TLS context; the application's Context is made from args.
  template <class... Args>
  explicit session_context(context&& t, Args&&... args) : tls(std::move(t)), app(std::forward<Args>(args)...) {}
  context tls;     // this loop's SSL_CTX set and its counters
  AppContext app;  // what the application's sessions share
  // Client side: the SNI name sent (empty: none).
  std::string server_name;
  // Client side: offer the last saved session (each connection that ends
  // after its handshake saves its own here).
  bool resume = false;
  saved_session saved;  // client side: the session to resume with
};
// session_context without an application Context.
template <>
struct session_context<void> {
  // Takes the loop's TLS context.
  explicit session_context(context&& t) : tls(std::move(t)) {}
  context tls;  // this loop's SSL_CTX set and its counters
  std::string server_name;  // client side: the SNI name sent (empty: none)
  bool resume = false;      // client side: offer the last saved session
  saved_session saved;      // client side: the session to resume with
};

// One TLS connection serving an application session Inner (made from
// (AppContext&, connection&), or (connection&) for void). Recycled: the
// OpenSSL state is freed on close and made anew on open; Inner is reopened
// when it is itself recycled, made anew otherwise.
template <class Inner, class AppContext = void>
class plaintext_session {
 public:
  // Once per pool slot: makes the Inner session (which may throw).
  plaintext_session(session_context<AppContext>& ctx, connection& c)
      : ctx_(ctx), link_(&c.loop().pool()) {
    make_inner(c);
  }
  plaintext_session(const plaintext_session&) = delete;
  plaintext_session& operator=(const plaintext_session&) = delete;

  // A new connection in this slot.
  void reopen(connection& c) noexcept {
    link_.reset();
    peer_done_ = false;
    if constexpr (recycled_session<Inner>) {
      inner_->reopen(c);
    } else {
      inner_.reset();
      make_inner(c);
    }
  }

  // Starts the handshake (server: waits for the hello; client: writes it);
  // Inner's on_open runs now (its deadlines then cover the handshake too).
  void on_open(connection& c) noexcept {
    session& tls = link_.tls();
    const bool started = ctx_.tls.server()
                             ? tls.start(ctx_.tls)
                             : tls.start(ctx_.tls, &c.output(), ctx_.server_name, ctx_.resume ? &ctx_.saved : nullptr);
    if (!started) {
      c.close(close_reason::resource_limit);
      return;
    }
    if constexpr (requires(Inner& s) { s.on_open(c); }) {
      in_plaintext(c, [&] { inner_->on_open(c); });
    }
    link_.seal(c);
  }
  // Opens the peer's records; Inner's on_data gets the plaintext, unless
  // the sealed output is above the high-water mark: then it waits (and the
  // records behind it too, past the input cap) for on_writable. Inner's
  // own c.writable() sees only its plaintext chain, so this is where the
  // connection's backpressure reaches it.
  void on_data(connection& c) noexcept {
    pump(c);
    if (link_.has_plaintext() && c.is_open() && c.writable()) in_plaintext(c, [&] { inner_->on_data(c); });
    peer_done_if_drained(c);
    link_.seal(c);
  }
  // Inner's on_writable (if any); plaintext held back by the input cap or
  // by backpressure is opened first and given to Inner's on_data.
  void on_writable(connection& c) noexcept {
    pump(c);
    if (link_.has_plaintext() && c.is_open() && c.writable()) in_plaintext(c, [&] { inner_->on_data(c); });
    if constexpr (requires(Inner& s) { s.on_writable(c); }) {
      if (c.is_open() && c.writable()) in_plaintext(c, [&] { inner_->on_writable(c); });
    }
    peer_done_if_drained(c);
    link_.seal(c);
  }
  // The peer's FIN: counted as a truncation unless close_notify came; then
  // Inner's on_peer_shutdown, or a close.
  void on_peer_shutdown(connection& c) noexcept {
    link_.tls().transport_closed();
    peer_done(c);
    link_.seal(c);
  }
  // Inner's on_close, then the OpenSSL state and any plaintext are dropped
  // (a timeout before the handshake completed is counted).
  void on_close(connection& c, close_reason why) noexcept {
    if constexpr (requires(Inner& s) { s.on_close(c, why); }) inner_->on_close(c, why);
    if (ctx_.resume && !ctx_.tls.server()) {
      if (saved_session mine = link_.tls().save(); !mine.empty()) ctx_.saved = std::move(mine);
    }
    link_.tls().connection_closed(why);
    link_.reset();
  }

  // Runs f (which uses c as Inner's callbacks do: plaintext in c.input(),
  // writes to c.output()) outside a callback, e.g. from a timer; what it
  // writes is sealed after. c must be this session's open connection.
  template <class F>
  void with_plaintext(connection& c, F&& f) noexcept {
    in_plaintext(c, std::forward<F>(f));
    link_.seal(c);
  }

  // This connection's TLS state (version, ALPN, SNI name).
  [[nodiscard]] const session& tls() const noexcept { return link_.tls(); }
  // The application's session.
  [[nodiscard]] Inner& inner() noexcept { return *inner_; }

 private:
  void make_inner(connection& c) {
    if constexpr (std::is_void_v<AppContext>) {
      inner_.emplace(c);
    } else {
      inner_.emplace(ctx_.app, c);
    }
  }

  // Receives records while the plaintext held is under the input cap (a
  // failure closes c); the peer's end once its plaintext is all taken.
  void pump(connection& c) noexcept {
    (void)link_.pump(c);
    peer_done_if_drained(c);
  }

  // close_notify came with plaintext still unread: once Inner has taken it
  // all, the peer's end is delivered (else a client that sent its last
  // request and close_notify together would wait for a timeout).
  void peer_done_if_drained(connection& c) noexcept {
    if (link_.peer_done()) peer_done(c);
  }

  void peer_done(connection& c) noexcept {
    if (!c.is_open() || peer_done_) return;
    peer_done_ = true;
    if constexpr (requires(Inner& s) { s.on_peer_shutdown(c); }) {
      in_plaintext(c, [&] { inner_->on_peer_shutdown(c); });
    } else {
      c.close(close_reason::peer_closed);
    }
  }

  // Runs f with the connection's chains swapped for the plaintext ones;
  // what it wrote is sealed after.
  template <class F>
  void in_plaintext(connection& c, F&& f) noexcept {
    plaintext_link::scope plain(link_, c);
    f();
  }

  session_context<AppContext>& ctx_;
  plaintext_link link_;  // the TLS session and the plaintext chains Inner works on
  std::optional<Inner> inner_;
  bool peer_done_ = false;  // Inner was told the peer's end (once per connection)
};

// The handler that serves TLS connections with an application session type
// Inner (see the file comment): one per loop, made from the loop's tls
// context and the arguments of the application's Context.
template <class Inner, class AppContext = void>
using server_sessions = sessions<plaintext_session<Inner, AppContext>, session_context<AppContext>>;

// The handler that makes TLS client connections (connect()) with an
// application session type Inner: the same wrapper, made from a client
// context (see the file comment).
template <class Inner, class AppContext = void>
using client_sessions = sessions<plaintext_session<Inner, AppContext>, session_context<AppContext>>;

}  // namespace sluice::tls
