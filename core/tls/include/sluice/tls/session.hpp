#pragma once
// One TLS connection's state, server or client side, over buffer chains: the
// peer's records come from one chain (a connection's input()), plaintext
// goes to another that the application reads, and what the application
// writes is sealed into records appended to a third (a connection's
// output()). OpenSSL reads and writes those chains through a BIO of ours,
// never a socket, so no transport knows TLS is there.
//
//   tls::session s;
//   s.start(ctx);                                    // per connection
//   on input:  s.receive(c.input(), plain, c.output());  // plaintext into plain
//   to send:   s.send(app_out, c.output());
//   to close:  s.close(c.output());                   // close_notify
//
// Costs: records are read from the input chain's segments and written into
// the output chain's segments directly (no BIO buffer in between); decrypted
// bytes are written once, by OpenSSL, into the plaintext chain's segments.
// Owner core only; no allocation per record once a connection's OpenSSL
// buffers exist.

#include <cstdint>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/close_reason.hpp"
#include "sluice/tls/context.hpp"

struct bio_st;
struct ssl_session_st;

namespace sluice::tls {

// Where a session stands after a call.
enum class state : std::uint8_t {
  idle,         // not started (or reset)
  handshaking,  // the handshake is under way
  open,         // the handshake is done: data flows both ways
  peer_closed,  // the peer sent close_notify: no more plaintext will come
  closed,       // we sent close_notify
  failed,       // a fatal error (error() says which close_reason)
};

// A client's resumable TLS session (a ticket and its secrets), saved from a
// finished handshake with session::save() and offered to the next
// connection to the same server with session::start(..., &saved). Movable;
// empty when nothing resumable was saved. Owner core only.
class saved_session {
 public:
  saved_session() noexcept = default;
  // Takes one reference to s (OpenSSL's SSL_SESSION; may be null).
  explicit saved_session(ssl_session_st* s) noexcept : s_(s) {}
  // Takes other's reference.
  saved_session(saved_session&& other) noexcept : s_(other.s_) { other.s_ = nullptr; }
  // Drops this one's reference and takes other's.
  saved_session& operator=(saved_session&& other) noexcept;
  saved_session(const saved_session&) = delete;
  saved_session& operator=(const saved_session&) = delete;
  // Drops the reference.
  ~saved_session();

  // Something resumable is held.
  [[nodiscard]] bool empty() const noexcept { return s_ == nullptr; }
  // The OpenSSL handle (nullptr when empty).
  [[nodiscard]] ssl_session_st* native() const noexcept { return s_; }

 private:
  ssl_session_st* s_ = nullptr;
};

// The TLS state of one connection (see the file comment). Not movable while
// started (OpenSSL keeps a pointer to it); reset() makes it reusable.
class session {
 public:
  session() noexcept = default;
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  // Frees the OpenSSL state.
  ~session() { reset(); }

  // Begins a connection with ctx (a server context: wait for the client's
  // hello; a client one: the hello is written into `out` now, with
  // `server_name` as SNI if not empty, offering `resume` if given and not
  // empty — a session saved from an earlier connection to the same server
  // and name). False when OpenSSL had no memory.
  [[nodiscard]] bool start(context& ctx, buffer_chain* out = nullptr, std::string_view server_name = {},
                           const saved_session* resume = nullptr) noexcept;
  // Frees the OpenSSL state: the session is idle again.
  void reset() noexcept;

  // Consumes the peer's records from `in` (a partial record stays there),
  // appends the plaintext they carry to `plain` and whatever the protocol
  // must answer (handshake messages, alerts, tickets) to `out`. Returns the
  // state after; failed is counted in the context's stats.
  state receive(buffer_chain& in, buffer_chain& plain, buffer_chain& out) noexcept;
  // Seals all of `plain` (consumed) into records appended to `out`; false
  // (state failed) on an error. Before the handshake is done, nothing is
  // consumed and true is returned: call again once it is open.
  bool send(buffer_chain& plain, buffer_chain& out) noexcept;
  // Sends close_notify into `out` (once); the session is closed after.
  void close(buffer_chain& out) noexcept;
  // The peer closed the transport: counted as a truncation unless
  // close_notify came first.
  void transport_closed() noexcept;
  // The connection was closed with `why`: a timeout (read, idle, write)
  // before the handshake completed is counted as a handshake timeout.
  void connection_closed(close_reason why) noexcept;

  // The current state.
  [[nodiscard]] tls::state current() const noexcept { return state_; }
  // The handshake is done and the session can carry data.
  [[nodiscard]] bool is_open() const noexcept { return state_ == state::open; }
  // After failed: the close reason to close the connection with.
  [[nodiscard]] close_reason error() const noexcept { return error_; }
  // The negotiated version ("TLSv1.3"), or "" before the handshake is done.
  [[nodiscard]] std::string_view version() const noexcept;
  // The ALPN protocol selected ("http/1.1"), or "".
  [[nodiscard]] std::string_view alpn() const noexcept;
  // The handshake resumed an earlier session.
  [[nodiscard]] bool resumed() const noexcept;
  // Client side: this connection's session, to resume with on the next
  // connection; empty if there is none resumable yet. With TLS 1.3 the
  // server's tickets come after the handshake, in records receive() reads:
  // save once data has come back (or at close), not right at open.
  [[nodiscard]] saved_session save() const noexcept;
  // The SNI name the client sent (server side), or "".
  [[nodiscard]] std::string_view server_name() const noexcept;
  // The OpenSSL handle (nullptr when idle), for what this class does not wrap.
  [[nodiscard]] ssl_st* native() const noexcept { return ssl_; }
  // The context this session was started with (nullptr when idle).
  [[nodiscard]] context* owner() const noexcept { return ctx_; }

 private:
  friend struct session_bio;
  state fail(close_reason why) noexcept;
  state after_io(int ret) noexcept;
  void check_handshake() noexcept;

  ssl_st* ssl_ = nullptr;
  context* ctx_ = nullptr;
  // The chains the BIO reads from and writes to during a call (null between).
  buffer_chain* in_ = nullptr;
  buffer_chain* out_ = nullptr;
  state state_ = state::idle;
  close_reason error_ = close_reason::none;
  bool out_of_memory_ = false;  // the BIO could not append to out_
  bool peer_notified_ = false;  // close_notify came (and was counted)
};

}  // namespace sluice::tls
