#pragma once
// TLS on one of the gateway's connections: a client connection it
// terminates TLS on (server side), or an upstream connection it originates
// TLS on (client side). The proxies keep working on plaintext chains:
//
//   client ==records==> [c.input] --pump--> [plain in]   (read by the proxy)
//   client <==records== [c.output] <--seal-- [plain out] (written by the proxy)
//
// The chains, the pump, the scopes and the sealing are tls::plaintext_link's
// (sluice/tls/plaintext_link.hpp): a scope swaps the connection's input and
// output chains with the link's plaintext ones for as long as proxy code
// reads or writes that connection, from whichever callback or timer it runs
// in; when the scope ends, what was written is sealed into records handed to
// the connection with send(), and close_notify follows once the connection
// is closing or shut for writing. Scopes nest (only the outermost swaps).
// Inside a scope, writable() measures the plaintext written in that scope;
// callers check the connection again after it (backpressure on the records).
// What this class adds is the gateway's: the first-byte check, the client's
// name check, the handshake deadline and the per-side counters.
//
// The handshake has a deadline (timeouts.handshake); a handshake that fails,
// times out or is cut off is counted once, by reason, in the side's
// tls_side_stats, and so are completed handshakes (resumed, version).
//
// Owner core only. Without OpenSSL (SLUICE_HAVE_TLS 0) a link is never
// active, and the configuration refuses every TLS option.

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway_stats.hpp"
#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include "sluice/tls/plaintext_link.hpp"
#include "sluice/tls/session.hpp"
#endif

namespace sluice::tls {
class context;
class saved_session;
}  // namespace sluice::tls

namespace sluice::gateway {

#if SLUICE_HAVE_TLS

class tls_link final : private tls::plaintext_link::observer {
 public:
  tls_link() noexcept {
    timer_.bind<&tls_link::expired>(this);
    link_.set_observer(this);
  }
  tls_link(const tls_link&) = delete;
  tls_link& operator=(const tls_link&) = delete;
  ~tls_link() { timer_.cancel(); }

  // Server side on accepted connection c: waits for the client's hello,
  // for at most `deadline`. False (c closed) when OpenSSL had no memory.
  bool start_server(tls::context& ctx, connection& c, tls_side_stats& st, duration deadline) noexcept;
  // Client side on the just-opened upstream connection c: the hello goes
  // out now with `name` as its server name (if not empty); with check_name,
  // the certificate must also be for that name (the context verifies the
  // chain). With `resume` (not null), offers the session saved there by an
  // earlier connection to the same upstream, and saves this connection's
  // session there once it is resumable (for the next one). False (c
  // closed) on failure.
  bool start_client(tls::context& ctx, connection& c, tls_side_stats& st, duration deadline, const std::string& name,
                    bool check_name, tls::saved_session* resume = nullptr) noexcept;

  // TLS is on for this connection (started and not yet ended).
  [[nodiscard]] bool active() const noexcept { return st_ != nullptr; }
  // The handshake is still under way.
  [[nodiscard]] bool handshaking() const noexcept { return active() && tls_.current() == tls::state::handshaking; }
  // The peer sent close_notify and its plaintext was all read.
  [[nodiscard]] bool peer_done() const noexcept { return active() && link_.peer_done(); }
  // The peer sent close_notify (plaintext before it may still be unread):
  // nothing more will come.
  [[nodiscard]] bool peer_closed() const noexcept { return active() && link_.peer_closed(); }
  // The SNI name the client sent (server side), or "".
  [[nodiscard]] std::string_view server_name() const noexcept { return active() ? tls_.server_name() : std::string_view{}; }
  // Plaintext received and not yet read by the proxy.
  [[nodiscard]] bool has_plaintext() const noexcept { return link_.has_plaintext(); }

  // Opens the records c received (up to the loop's input limit of
  // plaintext held), answers the handshake, seals plaintext written while
  // the handshake was under way once it is done. On a failure c is closed
  // (after OpenSSL's alert) and the reason counted. Returns true when this
  // call completed the handshake. Works inside a scope too (records held
  // back by the limit, opened once the proxy consumed plaintext).
  bool pump(connection& c) noexcept;

  // c's FIN (or its close) reached the link: counted as a cut-off
  // handshake when it came during one.
  void transport_closed(connection& c) noexcept;
  // c closed with `why`: a handshake still under way is counted as failed
  // (timeout, cut off or other), then the OpenSSL state is freed.
  void on_close(close_reason why) noexcept;

  // Proxy code on c runs on plaintext while a scope lives (see the file
  // comment). A scope on an inactive link does nothing.
  class scope {
   public:
    scope(tls_link& l, connection& c) noexcept : plain_(l.link_, c) {}

   private:
    tls::plaintext_link::scope plain_;
  };

 private:
  // The link's state for a new connection c, counted in st.
  void begin(connection& c, tls_side_stats& st, bool server) noexcept;
  void count_failure(tls_failure why) noexcept;
  // plaintext_link::observer: the handshake's end and failures, counted.
  void handshake_done(connection& c) noexcept override;
  void failed(connection& c) noexcept override;
  void expired() noexcept;
  // Client side: saves the session into resume_ once it is resumable and,
  // after a TLS 1.3 resumption, once it is the server's fresh ticket (then
  // stops looking).
  void save_session() noexcept;

  tls::plaintext_link link_;
  tls::session& tls_ = link_.tls();       // the link's session
  tls::saved_session* resume_ = nullptr;  // client side: where to save the session, until saved
  timer timer_;
  tls_side_stats* st_ = nullptr;  // null: TLS is off for this connection
  loop_base* loop_ = nullptr;
  connection_handle conn_;
  bool counted_ = false;   // the handshake's end (done or failed) was counted
  bool first_byte_ = true;  // nothing of the peer's was looked at yet
};

#else

// No OpenSSL in this build: TLS is never on (the configuration refuses it).
class tls_link {
 public:
  bool start_server(tls::context&, connection&, tls_side_stats&, duration) noexcept { return false; }
  bool start_client(tls::context&, connection&, tls_side_stats&, duration, const std::string&, bool,
                    tls::saved_session* = nullptr) noexcept {
    return false;
  }
  [[nodiscard]] bool active() const noexcept { return false; }
  [[nodiscard]] bool handshaking() const noexcept { return false; }
  [[nodiscard]] bool peer_done() const noexcept { return false; }
  [[nodiscard]] bool peer_closed() const noexcept { return false; }
  [[nodiscard]] std::string_view server_name() const noexcept { return {}; }
  [[nodiscard]] bool has_plaintext() const noexcept { return false; }
  bool pump(connection&) noexcept { return false; }
  void transport_closed(connection&) noexcept {}
  void on_close(close_reason) noexcept {}
  class scope {
   public:
    scope(tls_link&, connection&) noexcept {}
  };
};

#endif

}  // namespace sluice::gateway
