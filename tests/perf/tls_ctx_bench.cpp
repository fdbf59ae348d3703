// sluice-tls-ctx-bench: one SSL_CTX per loop against one SSL_CTX shared by
// every loop, measured without sockets: each thread (a stand-in for a loop)
// runs client/server tls::session pairs in memory, either new handshakes
// (each followed by one 1 KB request and response) or records on open
// sessions (1 KB each way). With --shared every thread's server sessions
// come from one tls::context; otherwise each thread makes its own from the
// same files (what sluice-httpd does). tests/perf/tls_compare.py runs both
// and prints the ratio; nothing here is a test.
//
//   sluice-tls-ctx-bench --cert=ec.crt --key=ec.key --threads=2 --seconds=2 [--shared] [--records]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sluice/base/cli.hpp"
#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/segment_pool.hpp"
#include "sluice/tls/context.hpp"
#include "sluice/tls/session.hpp"

namespace {

using namespace sluice;

struct pair_io {
  segment_pool pool{};
  buffer_chain c2s{&pool}, s2c{&pool}, cplain{&pool}, splain{&pool}, app{&pool};
  void pump(tls::session& srv, tls::session& cli) {
    for (int i = 0; i < 16 && (!c2s.empty() || !s2c.empty()); ++i) {
      srv.receive(c2s, splain, s2c);
      cli.receive(s2c, cplain, c2s);
    }
  }
};

// One exchange: 1 KB from the client, 1 KB back.
bool exchange(pair_io& io, tls::session& srv, tls::session& cli, const std::string& kb) {
  if (!io.app.write(kb) || !cli.send(io.app, io.c2s)) return false;
  io.pump(srv, cli);
  if (io.splain.size() != kb.size()) return false;
  io.splain.clear();
  if (!io.app.write(kb) || !srv.send(io.app, io.s2c)) return false;
  io.pump(srv, cli);
  if (io.cplain.size() != kb.size()) return false;
  io.cplain.clear();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  cli args("sluice-tls-ctx-bench", "SSL_CTX per thread against one shared SSL_CTX: in-memory TLS handshakes or records.");
  std::string cert, key;
  std::size_t threads = 2;
  duration run = std::chrono::seconds(2);
  bool shared = false;
  bool records = false;
  args.option("--cert", "FILE", "server certificate (PEM)", cert);
  args.option("--key", "FILE", "its private key (PEM)", key);
  args.count_option("--threads", "N", "threads, each a loop's stand-in (default 2)", threads, {1, 64});
  args.duration_option("--seconds", "how long to run (default 2s)", run, {std::chrono::milliseconds(100), std::chrono::hours(1)});
  args.flag("--shared", "one server context for every thread (default: one per thread)", shared);
  args.flag("--records", "measure 1 KB records on open sessions (default: new handshakes)", records);
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (cert.empty() || key.empty()) return args.fail("--cert and --key are required");

  tls::context_options so;
  so.certs = {{cert, key}};
  auto keys = tls::ticket_keys::make();
  if (!keys) return args.fail(keys.err().message);
  so.tickets = *keys;
  std::optional<tls::context> one;
  if (shared) {
    auto made = tls::context::make_server(so);
    if (!made) return args.fail(made.err().message);
    one.emplace(std::move(*made));
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<std::uint64_t> done(threads, 0);
  std::vector<std::thread> workers;
  const std::string kb(1024, 'x');
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::optional<tls::context> own;
      if (!shared) {
        auto made = tls::context::make_server(so);
        if (!made) {
          failed = true;
          return;
        }
        own.emplace(std::move(*made));
      }
      tls::context& sctx = shared ? *one : *own;
      auto cctx = tls::context::make_client({});
      if (!cctx) {
        failed = true;
        return;
      }
      pair_io io;
      tls::session srv, cli;
      std::uint64_t n = 0;
      if (records) {
        if (!srv.start(sctx) || !cli.start(*cctx, &io.c2s)) failed = true;
        io.pump(srv, cli);
        while (!stop.load(std::memory_order_relaxed) && !failed) {
          if (!exchange(io, srv, cli, kb)) failed = true;
          ++n;
        }
      } else {
        while (!stop.load(std::memory_order_relaxed) && !failed) {
          if (!srv.start(sctx) || !cli.start(*cctx, &io.c2s)) failed = true;
          io.pump(srv, cli);
          if (!srv.is_open() || !exchange(io, srv, cli, kb)) failed = true;
          srv.reset();
          cli.reset();
          io.c2s.clear();
          io.s2c.clear();
          ++n;
        }
      }
      done[t] = n;
    });
  }
  std::this_thread::sleep_for(run);
  stop = true;
  for (auto& w : workers) w.join();
  if (failed) {
    std::fprintf(stderr, "sluice-tls-ctx-bench: a handshake or exchange failed\n");
    return 1;
  }
  std::uint64_t total = 0;
  for (auto n : done) total += n;
  const double secs = std::chrono::duration<double>(run).count();
  std::printf("%s %s threads=%zu per_s=%.0f\n", shared ? "shared" : "per-thread", records ? "records" : "handshakes",
              threads, static_cast<double>(total) / secs);
  return 0;
}
