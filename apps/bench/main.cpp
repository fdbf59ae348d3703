// sluice-bench: load generator for sluice and its peers.
//
//   sluice-bench echo   --target=HOST:PORT [--size=BYTES] ...   messages echoed back, byte-checked
//   sluice-bench frames --target=HOST:PORT [--size=BYTES] ...   length-prefixed messages, byte-checked
//   sluice-bench http   --target=HOST:PORT [--path=/] ...       GET with keep-alive, status/body checked
//
// Common: --connections=N, --pipeline=K in flight per connection,
// --duration/--warmup or --messages=N, --rate=R (open loop), --json,
// --plot=FILE.png, --tls (--tls-ca, --tls-sni, --tls-resume), --conn-messages=N
// (new connections as load). Closed and open loop, percentiles from a log-linear
// histogram, errors: see worker.hpp and README.md.

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "echo_protocol.hpp"
#include "frames_protocol.hpp"
#include "http_protocol.hpp"
#include "plot.hpp"
#include "report.hpp"
#include "settings.hpp"
#include "sluice/runtime/app_options.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/runtime/runtime.hpp"
#include "worker.hpp"

namespace {

using namespace sluice;
using namespace sluice::bench;
using namespace std::chrono_literals;

// The per-loop workers of one run, whatever their protocol: how to start
// one on a loop, read its progress, and collect its results.
struct workers {
  std::function<result<void>(loop_base&, unsigned first, unsigned count)> start;
  std::function<std::uint64_t()> progress;
  std::function<std::vector<worker_results*>()> results;
};

template <class Protocol, bool Tls>
workers make_workers(const settings& s) {
  auto all = std::make_shared<std::vector<std::unique_ptr<worker<Protocol, Tls>>>>();
  workers w;
  // Start hooks run one loop at a time (loop 0 first), before progress() or
  // results() are ever called.
  w.start = [all, &s](loop_base& l, unsigned first, unsigned count) -> result<void> {
    if (all->size() < l.peers()) all->resize(l.peers());
#if SLUICE_HAVE_TLS
    if constexpr (Tls) {
      // One client context per loop (no OpenSSL lock shared between loops).
      tls::context_options opts;
      opts.ca_file = s.tls_ca;
      auto ctx = tls::context::make_client(opts);
      if (!ctx) return error{"--tls: " + ctx.err().message};
      (*all)[l.id()] = std::make_unique<worker<Protocol, Tls>>(l, s, first, count, std::move(*ctx));
    }
#endif
    if constexpr (!Tls) (*all)[l.id()] = std::make_unique<worker<Protocol, Tls>>(l, s, first, count);
    return (*all)[l.id()]->begin();
  };
  w.progress = [all] {
    std::uint64_t total = 0;
    for (auto& x : *all) {
      if (x) total += x->progress();
    }
    return total;
  };
  w.results = [all] {
    std::vector<worker_results*> out;
    for (auto& x : *all) out.push_back(&x->results());
    return out;
  };
  return w;
}

template <class Protocol>
workers make_workers(const settings& s) {
#if SLUICE_HAVE_TLS
  if (s.tls) return make_workers<Protocol, true>(s);
#endif
  return make_workers<Protocol, false>(s);
}

}  // namespace

int main(int argc, char** argv) {
  cli args("sluice-bench", "Load generator: drives a server with N connections and reports throughput and latency.");
  app_options app;
  settings s;
  app.declare(args, "");
  args.positional("MODE",
                  "echo: messages echoed back, every byte checked; frames: length-prefixed messages (4-byte "
                  "big-endian length), every byte checked; http: GET --path with keep-alive, status and body checked",
                  s.mode, true);
  args.option("--target", "HOST:PORT", "server to load (required)", s.target_text);
  args.count_option("--connections", "N", "connections in all (default 50)", s.connections, {1, 1000000});
  constexpr number_range size_range{1, 64 * ranges::mib, number_unit::bytes};
  args.custom("--size", "BYTES", "echo/frames: message payload size (default 64); range " + to_string(size_range), [&](std::string_view v) -> result<void> {
    auto n = parse_size(v, size_range);
    if (!n) return n.err();
    s.size = static_cast<std::size_t>(*n);
    return {};
  });
  args.count_option("--pipeline", "K", "messages in flight per connection (default 1; open loop: at most 1000)",
                    s.pipeline, {1, 1000000});
  args.duration_option("--duration", "how long to measure (default 5s)", s.run_time, ranges::timeout);
  args.duration_option("--warmup", "load before measuring, not counted (default 1s)", s.warmup, {0ms, 1h});
  args.option("--rate", "R", "open loop: R messages per second in all, latency from intended send times", s.rate);
  constexpr number_range messages_range{1, std::uint64_t{1} << 40};
  args.custom("--messages", "N",
              "stop after N messages in all instead of after --duration (no warm-up; for counting syscalls); range " +
                  to_string(messages_range),
              [&](std::string_view v) -> result<void> {
                auto n = parse_count(v, messages_range);
                if (!n) return n.err();
                s.messages = *n;
                return {};
              });
  args.option("--path", "PATH", "http: the path to GET (default /)", s.path);
  args.count_option("--expect-status", "CODE", "http: the status every response must have (default 200)",
                    s.expect_status, {100, 599});
  args.custom("--expect-body", "TEXT", "http: the exact body every response must have (default: not checked)",
              [&](std::string_view v) -> result<void> {
                s.check_body = true;
                s.expect_body = v;
                return {};
              });
  constexpr number_range conn_messages_range{1, std::uint64_t{1} << 40};
  args.custom("--conn-messages", "N",
              "close each connection after N replies and open a new one in its place (new connections, and with "
              "--tls new handshakes, are part of the load: reported per second); range " +
                  to_string(conn_messages_range),
              [&](std::string_view v) -> result<void> {
                auto n = parse_count(v, conn_messages_range);
                if (!n) return n.err();
                s.conn_messages = *n;
                return {};
              });
#if SLUICE_HAVE_TLS
  args.flag("--tls", "TLS over every connection (http, echo and frames modes); reports handshakes/s", s.tls);
  args.option("--tls-ca", "FILE", "--tls: verify the server's certificate against this CA file (default: not verified)",
              s.tls_ca);
  args.option("--tls-sni", "NAME", "--tls: the SNI name to send (default: none; --target is an address)", s.tls_sni);
  args.flag("--tls-resume", "--tls: each new connection resumes the loop's last TLS session (a ticket)", s.tls_resume);
#endif
  args.flag("--json", "print the result as one JSON object on stdout", s.json);
  args.option("--plot", "FILE.png",
              "draw latency percentiles over time and the latency distribution with gnuplot (data kept next to it)",
              s.plot);
  args.duration_option("--plot-interval", "--plot: time covered by each point (default 100ms)", s.plot_interval,
                       ranges::timeout);
  args.note("Example: sluice-bench echo --target=127.0.0.1:7000 --connections=50 --size=64 --duration=5s");
  args.note("Example: sluice-bench http --target=127.0.0.1:8080 --path=/ --connections=100 --pipeline=16");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;
  if (s.mode != "echo" && s.mode != "frames" && s.mode != "http") {
    return args.fail("unknown mode '" + s.mode + "' (modes: echo, frames, http)");
  }
  if (s.target_text.empty()) return args.fail("--target=HOST:PORT is required");
  auto target = endpoint::parse(s.target_text);
  if (!target) return args.fail("--target: " + target.err().message);
  if (target->port() == 0) return args.fail("--target needs a port");
  // A reply frame is read whole: one that cannot fit the input limit would
  // never complete.
  if (s.mode == "frames" && s.size + 4 > app.runtime.loop.max_input_bytes) {
    return args.fail("--size (" + format_size(s.size) + ") plus the 4-byte header must fit --max-input (" +
                     format_size(app.runtime.loop.max_input_bytes) + ")");
  }
  s.target = *target;
  if (s.rate < 0) return args.fail("--rate must be positive");
  if (s.pipeline == 0) s.pipeline = s.rate > 0 ? 1000 : 1;
  if (s.messages != 0) {
    if (s.rate > 0) return args.fail("--messages and --rate do not go together");
    s.warmup = duration::zero();
  }
  if (s.conn_messages != 0 && (s.messages != 0 || s.rate > 0)) {
    return args.fail("--conn-messages goes with a closed loop run for --duration (not --messages or --rate)");
  }
  if (!s.tls && (!s.tls_ca.empty() || !s.tls_sni.empty() || s.tls_resume)) {
    return args.fail("--tls-ca, --tls-sni and --tls-resume need --tls");
  }
  if (s.mode == "http" && (s.path.empty() || s.path.front() != '/' ||
                           s.path.find_first_of(" \r\n") != std::string::npos)) {
    return args.fail("--path must start with '/' and hold no spaces or line breaks");
  }
  if (!s.plot.empty()) {
    if (auto ok = plot_available(); !ok) return args.fail(ok.err().message);
  }

  runtime_config cfg = app.runtime;
  cfg.handle_signals = false;
  // The schedule of an open loop needs fine timers.
  if (s.rate > 0) {
    cfg.loop.timer_resolution = std::chrono::microseconds(10);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  }
  const workers w = s.mode == "http"     ? make_workers<http_protocol>(s)
                    : s.mode == "frames" ? make_workers<frames_protocol>(s)
                                         : make_workers<echo_protocol>(s);
  const time_point t0 = steady_now();
  s.measure_origin = t0 + s.warmup;
  runtime rt(cfg);
  rt.on_start([&](loop_base& l) -> result<void> {
    const unsigned i = l.id();
    const unsigned loops = rt.loop_count();
    const unsigned first = s.connections * i / loops;
    const unsigned last = s.connections * (i + 1) / loops;
    return w.start(l, first, last - first);
  });
  if (auto r = rt.start(); !r) {
    std::fprintf(stderr, "sluice-bench: error: %s\n", r.err().message.c_str());
    return 2;
  }
  const bool tty = isatty(STDERR_FILENO) != 0 && !s.json;
  std::uint64_t last = 0;
  time_point last_t = t0;
  while (!rt.wait_for(std::chrono::seconds(1))) {
    if (!tty) continue;
    const std::uint64_t total = w.progress();
    const time_point now = steady_now();
    const double dt = std::chrono::duration<double>(now - last_t).count();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    const bool warm = now - t0 < s.warmup;
    std::fprintf(stderr, "\r  %5.1fs  %10.0f %s  %s   ", elapsed, static_cast<double>(total - last) / dt,
                 s.mode == "http" ? "req/s " : "msgs/s", warm ? "(warm-up)" : "          ");
    last = total;
    last_t = now;
  }
  if (tty) std::fprintf(stderr, "\r%60s\r", "");
  rt.wait();

  summary sum;
  sum.mode = s.mode;
  sum.target = s.target.to_string();
  sum.path = s.mode == "http" ? s.path : "";
  sum.connections = s.connections;
  sum.size = s.mode == "http" ? 0 : s.size;
  sum.pipeline = s.pipeline;
  sum.rate = s.rate;
  sum.loops = rt.loop_count();
  sum.tls = s.tls;
  sum.reconnecting = s.conn_messages != 0;
  double window = 0;
  std::unique_ptr<timeline> over_time;
  for (worker_results* r : w.results()) {
    sum.latency.merge(r->latency);
    sum.messages += r->messages;
    sum.bytes += r->bytes;
    window = std::max(window, r->window_seconds);
    sum.connect_failures += r->connect_failures;
    sum.closed_early += r->closed_early;
    sum.mismatches += r->mismatches;
    sum.protocol_errors += r->protocol_errors;
    sum.handshakes += r->handshakes;
    sum.resumed += r->resumed;
    sum.handshake_failures += r->handshake_failures;
    if (sum.first_error.empty()) sum.first_error = r->first_error;
    if (r->timeline) {
      if (!over_time) {
        over_time = std::move(r->timeline);
      } else {
        over_time->merge(*r->timeline);
      }
    }
  }
  sum.seconds = window;
  std::fputs((s.json ? to_json(sum) : to_text(sum)).c_str(), stdout);
  std::fflush(stdout);
  bool bad = sum.errors() != 0 || sum.messages == 0;
  if (bad && s.json && !sum.first_error.empty()) std::fprintf(stderr, "sluice-bench: %s\n", sum.first_error.c_str());
  if (over_time) {
    if (auto drawn = draw_plot(s.plot, headline(sum), *over_time, sum.latency); !drawn) {
      std::fprintf(stderr, "sluice-bench: error: %s\n", drawn.err().message.c_str());
      bad = true;
    } else if (!s.json) {
      std::printf("  plot        %s\n", s.plot.c_str());
    }
  }
  return bad ? 1 : 0;
}
