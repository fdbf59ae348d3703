#pragma once
// L4 proxying (mode tcp) on one loop: each downstream connection gets an
// upstream connection made from the same loop, and a sluice::relay moves the
// bytes between the two as buffer chains (zero copy), with its watermark
// backpressure and half-close both ways (see sluice/core/relay.hpp).
//
//   client ==down==> [input]--send-->[output] ==up==> upstream
//          <=======  [output]<--send--[input]  <=====
//
// Each connection has its own session (sluice::sessions): a client's session
// holds the relay and the upstream choice (retries); an upstream's session
// holds what the upstream pool must learn at its end (which member, whether it
// opened) and reaches its client's session through the client's handle. A
// reset or error on one side resets the other; a failed connect is tried on
// the next upstream (retries), then the client is closed.
//
// TLS (tls_link.hpp): a listener with certificates terminates TLS. The
// upstream is connected only once the client's handshake is done (a flood
// of handshakes never reaches the upstreams), to the pool of the first
// route whose sni is the name the client sent, else the listener's pool. A
// pool with tls = true gets TLS from us (its tls_names: SNI and name check);
// the relay takes such an upstream for open once its handshake is done (the
// client is not read, nor its FIN passed on, before). The relay runs with both ends
// in plaintext scopes; when an end's records pass its high-water mark, the
// other end is held back until that end drains (as the relay does for
// plaintext). A failed handshake or certificate check on the upstream side
// ends the pair as any upstream failure does (the client is reset).
//
// Owner core only.

#include <cstdint>
#include <memory>
#include <string_view>

#include "config.hpp"

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/relay.hpp"
#include "sluice/core/session.hpp"
#include "sluice/base/time.hpp"
#include "tls_link.hpp"

namespace sluice::gateway {

class shard;

class tcp_proxy {
 public:
  explicit tcp_proxy(shard& s);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  // The handler for downstream connections of listener `l` (TLS with the
  // loop's context `tls` when not null).
  [[nodiscard]] std::unique_ptr<handler> make_front(const listener_config& l, tls::context* tls);

  struct client;
  struct upstream;
  // What the sessions of one listener share: the proxy, the pool its
  // clients go to, and the listener's handler (so that an upstream's session
  // can find its client's).
  struct front_context {
    tcp_proxy* proxy = nullptr;
    const listener_config* listener = nullptr;
    tls::context* tls = nullptr;  // this loop's server context; null: plaintext
    sessions<client, front_context>* front = nullptr;
  };
  using front_handler = sessions<client, front_context>;
  using back_handler = sessions<upstream, tcp_proxy*>;

  // A downstream connection's session: the relay (end a: the client, end b:
  // its upstream) and the choice of upstream.
  struct client {
    client(front_context& f, connection&) noexcept : ctx(&f) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    front_context* ctx;
    sluice::relay link;
    tls_link tls;             // TLS terminated on the client connection
    std::size_t pool = 0;     // the listener's, or the one its SNI route names
    std::uint64_t tried = 0;  // a bit per upstream already tried
    unsigned attempts = 0;
    bool up_held = false;     // the upstream is held back: the client's records are above high water
    bool down_held = false;   // the client is held back: the upstream's records are above high water

    void on_open(connection& d) noexcept;
    void on_data(connection& d) noexcept;
    void on_writable(connection& d) noexcept;
    void on_peer_shutdown(connection& d) noexcept;
    void on_close(connection& d, close_reason why) noexcept;
    // Runs relay work with both ends in plaintext (see the file comment),
    // then holds an end back while the other's records are above high water.
    template <class F>
    void plaintext(F&& f) noexcept;
  };

  // An upstream connection's session.
  struct upstream {
    upstream(tcp_proxy*& p, connection&) noexcept : proxy(p) {}
    tcp_proxy* proxy;
    front_handler* front = nullptr;
    connection_handle down;  // the client it serves
    std::size_t pool = 0;
    unsigned member = 0;
    time_point connect_started{};
    bool opened = false;  // the connection was established
    tls_link tls;         // TLS originated to the upstream (pool tls = true)

    // The client's session while the client connection lives, else null.
    [[nodiscard]] client* owner(connection& u) const noexcept;
    void on_open(connection& u) noexcept;
    void on_data(connection& u) noexcept;
    void on_writable(connection& u) noexcept;
    void on_peer_shutdown(connection& u) noexcept;
    void on_close(connection& u, close_reason why) noexcept;
    // u can carry plaintext (at TCP open, or once its TLS handshake is
    // done): the relay sees it open and the client's bytes and end go to it.
    void relay_open(connection& u, client& c) noexcept;
  };

 private:
  // Starts connecting c's client `d` to the next upstream; false when none
  // is left.
  bool connect_next(client& c, connection& d) noexcept;
  // The pool for a client whose TLS server name is `sni`.
  [[nodiscard]] static std::size_t pool_for(const listener_config& l, std::string_view sni) noexcept;

  shard& shard_;
  back_handler back_;
};

}  // namespace sluice::gateway
