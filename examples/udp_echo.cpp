// udp_echo: sends every UDP datagram back to where it came from.
//
//   $ udp_echo --listen=127.0.0.1:7002 &
//   $ echo hi | nc -u -q1 127.0.0.1 7002
//   hi
#include <cstdio>
#include <memory>
#include <string_view>

#include "sluice/core/udp_socket.hpp"
#include "sluice/runtime/app_options.hpp"

// Datagrams need no per-connection state: one handler per loop serves them all.
struct echo final : sluice::datagram_handler {
  void on_datagram(sluice::udp_socket& s, const sluice::endpoint& from, std::string_view payload) noexcept override {
    // Queued (copied) now, sent with the iteration's other replies in one
    // sendmmsg. False when the queue is full: the datagram is dropped, as UDP may.
    (void)s.send_to(from, payload);
  }
};

int main(int argc, char** argv) {
  sluice::cli args("udp_echo", "Sends every UDP datagram back to its sender.");
  sluice::app_options app;
  app.declare(args, "127.0.0.1:7002");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;

  sluice::runtime rt(app.runtime);
  for (const auto& at : app.listen) {
    rt.udp_bind(at, [](sluice::loop_base&) { return std::make_unique<echo>(); });  // a socket per loop
  }
  rt.on_serving([&] {  // every loop is up and every port 0 resolved
    for (const auto& at : rt.udp_bound()) std::printf("udp_echo listening on %s\n", at.to_string().c_str());
    std::fflush(stdout);
  });
  return rt.run("udp_echo");
}
