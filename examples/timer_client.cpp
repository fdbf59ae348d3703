// timer_client: connects to a line server (line_server), sends "tick N" every
// --interval from the loop's timer wheel, prints each reply and exits 0 after
// --count replies (1 if the connection ends first).
//
//   $ timer_client --connect=127.0.0.1:7000 --interval=100ms --count=2
//   1 tick 1
//   2 tick 2
#include <cstdio>
#include <string>

#include "sluice/base/cli.hpp"
#include "sluice/core/codec/line_decoder.hpp"
#include "sluice/core/session.hpp"
#include "sluice/runtime/runtime.hpp"

struct settings {
  sluice::duration interval = std::chrono::milliseconds(100);
  std::size_t count = 10;
  std::size_t replies = 0;  // what main() returns on
};

// The session of the one connection; its context is a settings* (owned by main).
struct ticker {
  ticker(settings* s, sluice::connection& c) noexcept : cfg(*s), conn(c) { tick.bind<&ticker::send>(this); }

  void on_open(sluice::connection&) noexcept { send(); }
  // Also the timer's callback: sends a line, then re-arms until --count lines went out.
  void send() noexcept {
    char line[32];
    const int n = std::snprintf(line, sizeof line, "tick %zu\n", ++sent);
    if (!conn.write({line, std::size_t(n)})) return conn.close();
    if (sent < cfg.count) conn.loop().timers().arm_after(tick, cfg.interval);
  }
  void on_data(sluice::connection& c) noexcept {
    std::string_view reply;
    while (lines.decode(c.input(), reply) == sluice::codec::frame_status::frame) {
      std::printf("%.*s\n", int(reply.size()), reply.data());
      if (++cfg.replies == cfg.count) return c.close();
    }
  }
  // Done, refused or cut off: stop the loop, which ends rt.run().
  void on_close(sluice::connection& c, sluice::close_reason why) noexcept {
    if (cfg.replies < cfg.count) std::fprintf(stderr, "timer_client: %s\n", sluice::to_string(why).data());
    c.loop().stop(sluice::duration::zero());
  }

  settings& cfg;
  sluice::connection& conn;  // the session never outlives its connection
  sluice::timer tick;        // an armed timer is cancelled when destroyed
  sluice::codec::line_decoder lines;
  std::size_t sent = 0;
};

int main(int argc, char** argv) {
  sluice::cli args("timer_client", "Sends a line to a line server every interval; exits after COUNT replies.");
  settings cfg;
  std::string server;
  args.option("--connect", "HOST:PORT", "the line server (required)", server);
  args.duration_option("--interval", "time between lines (default 100ms)", cfg.interval, sluice::ranges::timeout);
  args.count_option("--count", "N", "replies to wait for (default 10)", cfg.count, {1, 1000000});
  if (auto rc = args.parse(argc, argv)) return *rc;
  auto to = sluice::endpoint::parse(server);
  if (!to) return args.fail("--connect: " + to.err().message);

  sluice::sessions<ticker, settings*> client(&cfg);  // declared first: it must outlive the loop
  sluice::runtime_config config;
  config.placement.loops = 1;
  sluice::runtime rt(config);
  rt.on_start([&](sluice::loop_base& l) -> sluice::result<void> {  // on the loop's thread
    if (auto h = client.connect(l, *to); !h) return h.err();
    return {};
  });
  if (int code = rt.run("timer_client"); code != 0) return code;
  return cfg.replies == cfg.count ? 0 : 1;
}
