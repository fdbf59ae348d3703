#pragma once
// TLS over one connection, seen from code that reads and writes plaintext on
// that connection as if TLS were not there: a tls::session plus the two
// plaintext chains it opens records into and seals records from.
//
//   peer ==records==> [c.input]  --pump--> [plain in]   (read by the application)
//   peer <==records== [c.output] <--seal-- [plain out]  (written by the application)
//
//   tls::plaintext_link link(&c.loop().pool());
//   (void)link.tls().start(ctx);                // or start(ctx, &c.output(), name, saved)
//   on data:  link.pump(c);                      // records -> plaintext (capped)
//             { tls::plaintext_link::scope s(link, c);  // c.input()/c.output() are plaintext now
//               app.on_data(c); }                // its end seals, close_notify after a close
//   at close: link.reset();
//
// A scope swaps the connection's input and output chains with the link's
// plaintext ones (an exchange of list heads, no copy) for as long as it
// lives, from whichever callback or timer it runs in; when it ends they are
// swapped back, consumed plaintext is released, what was written is sealed
// into records and handed to the connection with send() (so its output limit
// and high-water mark see the records), and close_notify follows once the
// connection is closing or shut for writing. Scopes nest (only the outermost
// swaps). Inside a scope, c.writable() measures the plaintext written in that
// scope; callers check the connection again after it (backpressure on the
// records).
//
// Used by tls::server_sessions/client_sessions (an application's session
// type under TLS) and by the gateway's TLS on its client and upstream
// connections. Owner core only; nothing is allocated per record beyond the
// connection's chain segments.

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/tls/session.hpp"

namespace sluice::tls {

// A TLS session and its plaintext chains on one connection (see the file
// comment). Not movable; reset() makes it reusable for the next connection.
class plaintext_link {
 public:
  // What the owner is told of (optional, see set_observer): the handshake
  // ended well, or the session failed (the link then flushes OpenSSL's alert
  // and closes the connection with session::error() right after).
  class observer {
   public:
    // pump() completed the handshake (before plaintext written during it is sealed).
    virtual void handshake_done(connection& c) noexcept = 0;
    // receive() or send() failed (tls().error() says why); c is still open or closing.
    virtual void failed(connection& c) noexcept = 0;

   protected:
    ~observer() = default;
  };

  // Chains with no pool yet (set_pool before use).
  plaintext_link() noexcept = default;
  // Chains drawing segments from pool (a connection's loop().pool()).
  explicit plaintext_link(segment_pool* pool) noexcept { set_pool(pool); }
  plaintext_link(const plaintext_link&) = delete;
  plaintext_link& operator=(const plaintext_link&) = delete;

  // The pool the plaintext chains draw from (the connection's loop's).
  void set_pool(segment_pool* pool) noexcept;
  // Who is told of the handshake's end and of failures (nullptr: nobody).
  void set_observer(observer* o) noexcept { observer_ = o; }
  // Frees the OpenSSL state and drops any plaintext: ready for another
  // connection (start it with tls().start()).
  void reset() noexcept;

  // The TLS session (start it with tls().start(); version, ALPN, SNI name).
  [[nodiscard]] session& tls() noexcept { return tls_; }
  // The TLS session, read only.
  [[nodiscard]] const session& tls() const noexcept { return tls_; }
  // TLS was started and not reset.
  [[nodiscard]] bool active() const noexcept { return tls_.current() != state::idle; }
  // A scope is open (the connection's chains are the plaintext ones).
  [[nodiscard]] bool in_scope() const noexcept { return in_scope_; }
  // The peer sent close_notify (plaintext before it may still be unread):
  // nothing more will come.
  [[nodiscard]] bool peer_closed() const noexcept { return tls_.current() == state::peer_closed; }
  // The peer sent close_notify and its plaintext was all read.
  [[nodiscard]] bool peer_done() const noexcept { return peer_closed() && plain_in_.empty(); }
  // Plaintext opened and not yet read (outside a scope).
  [[nodiscard]] bool has_plaintext() const noexcept { return !plain_in_.empty(); }
  // The chain holding the peer's records not yet opened (c.input() outside
  // a scope, the link's inside one).
  [[nodiscard]] buffer_chain& records_in(connection& c) noexcept { return in_scope_ ? plain_in_ : c.input(); }

  // Opens the records c received, while the plaintext held is under the
  // loop's max_input_bytes (past it, records wait in the input and the
  // loop stops reading); answers the handshake; once this call completes
  // it, the observer is told and plaintext written during it is sealed
  // (outside a scope; a scope seals at its end). On a failure the observer
  // is told, OpenSSL's alert flushed and c closed. Returns true when this
  // call completed the handshake. Works inside a scope too (the swapped
  // chains are used). c must be open.
  bool pump(connection& c) noexcept;
  // Seals the plaintext written (outside a scope) into c: through c.send()
  // while c is open (its output limit applies; over it, c is aborted rather
  // than bytes lost), straight into the output once c is closing or shut
  // for writing, then close_notify once all is sealed; c is flushed. Waits
  // while the handshake is under way; drops the plaintext when the session
  // failed or c is closed.
  void seal(connection& c) noexcept;

  // Code on c runs on plaintext while a scope lives (see the file comment).
  // A scope on an inactive link, or inside another scope, does nothing.
  class scope {
   public:
    // Swaps c's chains with l's plaintext ones (outermost scope on an active link).
    scope(plaintext_link& l, connection& c) noexcept;
    // Swaps them back, releases the plaintext read, seals what was written.
    ~scope();
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

   private:
    plaintext_link* link_ = nullptr;  // null: not the outermost scope, or no TLS
    connection* c_ = nullptr;
  };

 private:
  void swap(connection& c) noexcept;
  void fail(connection& c) noexcept;

  session tls_;
  buffer_chain plain_in_;   // opened, not yet read (outside a scope)
  buffer_chain plain_out_;  // written, not yet sealed (the handshake is under way)
  buffer_chain sealed_;     // records on their way into c.send()
  observer* observer_ = nullptr;
  bool in_scope_ = false;
};

}  // namespace sluice::tls
