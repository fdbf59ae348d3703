// tcp_proxy: relays each client connection to --upstream, bytes both ways.
//
//   $ tcp_proxy --listen=127.0.0.1:7001 --upstream=127.0.0.1:7000
//
// Each connection, client or upstream, has a `side` session holding the other
// one's handle. Input moves to the other side's output as buffer chains (no
// copy); above that output's high-water mark the sender is no longer read
// until on_writable (backpressure), and a FIN is passed on as a half-close.
#include <cstdio>
#include <string>

#include "sluice/core/session.hpp"
#include "sluice/runtime/app_options.hpp"

struct side;
using proxy = sluice::sessions<side, sluice::endpoint>;  // per loop, both sides; context: the upstream

struct side {
  side(sluice::endpoint& upstream, sluice::connection&) noexcept : upstream(upstream) {}

  void on_open(sluice::connection& c) noexcept {
    if (c.outgoing()) {  // the upstream is up: pass on a FIN the client sent meanwhile
      if (auto* client = other(c); client != nullptr && client->peer_shut()) c.shutdown_write();
      return;
    }
    // A client: connect its upstream from this loop, with a session of its own
    // (what the client sends meanwhile waits in the upstream's output).
    auto& sessions = static_cast<proxy&>(c.get_handler());
    auto up = sessions.connect(c.loop(), upstream);
    side* s = up ? sessions.find(*c.loop().get(*up)) : nullptr;
    if (s == nullptr) return c.close();
    peer = *up;
    s->peer = c.handle();
  }
  void on_data(sluice::connection& c) noexcept {
    auto* to = other(c);
    if (to == nullptr) return;
    if (!to->send(std::move(c.input()))) return c.abort();  // over the output limit (on_close resets `to`)
    if (!to->writable()) c.pause_reading();  // above high water: hold this side back
  }
  // This side's output drained below low water: read the other side again.
  void on_writable(sluice::connection& c) noexcept {
    if (auto* from = other(c)) from->resume_reading();
  }
  // FIN: send FIN on the other side and go on relaying the other way (the
  // loop closes a connection once both its directions are done).
  void on_peer_shutdown(sluice::connection& c) noexcept {
    if (auto* to = other(c)) to->shutdown_write();
  }
  // A clean end closes the other side after its pending output; a reset, a
  // refused connect or a timeout resets it.
  void on_close(sluice::connection& c, sluice::close_reason why) noexcept {
    auto* o = other(c);
    if (o == nullptr) return;
    if (why == sluice::close_reason::peer_closed || why == sluice::close_reason::local) return o->close();
    o->abort();
  }
  // A handle, not a pointer: the other side may be gone (nullptr then).
  sluice::connection* other(sluice::connection& c) const noexcept { return c.loop().get(peer); }

  sluice::endpoint& upstream;
  sluice::connection_handle peer;
};

int main(int argc, char** argv) {
  sluice::cli args("tcp_proxy", "Relays every client connection to an upstream server.");
  sluice::app_options app;
  app.declare(args, "127.0.0.1:7001");
  std::string upstream;
  args.option("--upstream", "HOST:PORT", "where to connect each client (required)", upstream);
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;
  auto to = sluice::endpoint::parse(upstream);
  if (!to) return args.fail("--upstream: " + to.err().message);

  sluice::runtime rt(app.runtime);
  for (const auto& at : app.listen) {
    rt.listen(at, sluice::session_factory<side, sluice::endpoint>([&](sluice::loop_base&) { return *to; }));
  }
  rt.on_start([&](sluice::loop_base& l) -> sluice::result<void> {
    if (l.id() == 0) {  // loop 0 binds first: a port 0 is resolved by now
      for (const auto& at : rt.bound()) std::printf("tcp_proxy listening on %s\n", at.to_string().c_str());
      std::fflush(stdout);
    }
    return {};
  });
  return rt.run("tcp_proxy");
}
