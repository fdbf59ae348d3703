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
// Owner core only.

#include <cstdint>
#include <memory>

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/relay.hpp"
#include "sluice/core/session.hpp"
#include "sluice/base/time.hpp"

namespace sluice::gateway {

class shard;

class tcp_proxy {
 public:
  explicit tcp_proxy(shard& s);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  // The handler for downstream connections that go to pool `pool`.
  [[nodiscard]] std::unique_ptr<handler> make_front(std::size_t pool);

  struct client;
  struct upstream;
  // What the sessions of one listener share: the proxy, the pool its
  // clients go to, and the listener's handler (so that an upstream's session
  // can find its client's).
  struct front_context {
    tcp_proxy* proxy = nullptr;
    std::size_t pool = 0;
    sessions<client, front_context>* front = nullptr;
  };
  using front_handler = sessions<client, front_context>;
  using back_handler = sessions<upstream, tcp_proxy*>;

  // A downstream connection's session: the relay (end a: the client, end b:
  // its upstream) and the choice of upstream.
  struct client {
    client(front_context& f, connection&) noexcept : ctx(&f) {}
    front_context* ctx;
    sluice::relay link;
    std::uint64_t tried = 0;  // a bit per upstream already tried
    unsigned attempts = 0;

    void on_open(connection& d) noexcept;
    void on_data(connection& d) noexcept { link.on_data(d); }
    void on_writable(connection& d) noexcept { link.on_writable(d); }
    void on_peer_shutdown(connection& d) noexcept { link.on_peer_shutdown(d); }
    void on_close(connection& d, close_reason why) noexcept;
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

    // The client's session while the client connection lives, else null.
    [[nodiscard]] client* owner(connection& u) const noexcept;
    void on_open(connection& u) noexcept;
    void on_data(connection& u) noexcept;
    void on_writable(connection& u) noexcept;
    void on_peer_shutdown(connection& u) noexcept;
    void on_close(connection& u, close_reason why) noexcept;
  };

 private:
  // Starts connecting c's client `d` to the next upstream; false when none
  // is left.
  bool connect_next(client& c, connection& d) noexcept;

  shard& shard_;
  back_handler back_;
};

}  // namespace sluice::gateway
