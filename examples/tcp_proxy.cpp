// tcp_proxy: relays each client connection to --upstream, bytes both ways.
//
//   $ tcp_proxy --listen=127.0.0.1:7001 --upstream=127.0.0.1:7000
//
// Each connection, client or upstream, has a `side` session. The client's holds
// a sluice::relay, which moves input to the other side's output as buffer
// chains (no copy), holds a sender back above the other side's high-water mark
// (backpressure), passes a FIN on as a half-close and closes the other side to
// match; the upstream's session reaches that relay by the client's handle.
#include <cstdio>
#include <string>

#include "sluice/core/relay.hpp"
#include "sluice/core/session.hpp"
#include "sluice/runtime/app_options.hpp"

struct side;
using proxy = sluice::sessions<side, sluice::endpoint>;  // per loop, both sides; context: the upstream

struct side {
  side(sluice::endpoint& upstream, sluice::connection&) noexcept : upstream(upstream) {}

  void on_open(sluice::connection& c) noexcept {
    if (c.outgoing()) {  // the upstream is up: the client's bytes so far go on
      if (sluice::relay* r = link(c)) r->on_open(c);
      return;
    }
    // A client: connect its upstream from this loop, with a session of its own.
    auto& sessions = static_cast<proxy&>(c.get_handler());
    auto up = sessions.connect(c.loop(), upstream);
    side* s = up ? sessions.find(*c.loop().get(*up)) : nullptr;
    if (s == nullptr) return c.close();
    s->client = c.handle();
    pair.start(c, *up);
  }
  void on_data(sluice::connection& c) noexcept {
    if (sluice::relay* r = link(c)) r->on_data(c);
  }
  void on_writable(sluice::connection& c) noexcept {
    if (sluice::relay* r = link(c)) r->on_writable(c);
  }
  void on_peer_shutdown(sluice::connection& c) noexcept {
    if (sluice::relay* r = link(c)) r->on_peer_shutdown(c);
  }
  // The other side is closed to match; an upstream that never opened
  // (refused, timed out) ends its client.
  void on_close(sluice::connection& c, sluice::close_reason why) noexcept {
    sluice::relay* r = link(c);
    if (r != nullptr && !r->on_close(c, why) && r->a() != nullptr) r->a()->close();
  }
  // The relay lives in the client's session; a handle, not a pointer, reaches
  // it from the upstream's (nullptr once the client is gone).
  sluice::relay* link(sluice::connection& c) noexcept {
    if (!c.outgoing()) return &pair;
    sluice::connection* cl = c.loop().get(client);
    side* s = cl != nullptr ? static_cast<proxy&>(cl->get_handler()).find(*cl) : nullptr;
    return s != nullptr ? &s->pair : nullptr;
  }

  sluice::endpoint& upstream;
  sluice::relay pair;                // on a client's session
  sluice::connection_handle client;  // on an upstream's session
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
  rt.on_serving([&] {  // every loop is up and every port 0 resolved
    for (const auto& at : rt.bound()) std::printf("tcp_proxy listening on %s\n", at.to_string().c_str());
    std::fflush(stdout);
  });
  return rt.run("tcp_proxy");
}
