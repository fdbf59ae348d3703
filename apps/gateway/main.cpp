// sluice-gateway: an L4 (tcp) and L7 (http) gateway on sluice. Each loop
// proxies the connections it accepted through upstream connections it makes
// itself (see shard.hpp); configuration from a TOML file or, for one pool,
// from flags; an admin endpoint with Prometheus metrics.

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admin.hpp"
#include "config.hpp"
#include "shard.hpp"
#include "sluice/core/app_options.hpp"
#include "sluice/core/cli.hpp"
#include "sluice/core/runtime.hpp"

namespace {

using namespace sluice;
using namespace sluice::gateway;

// The flags that describe the single-pool case; they and --config exclude
// each other, so that nobody wonders which one won.
struct pool_flags {
  std::vector<std::string> upstreams;
  pool_config pool;
  proxy_mode mode = proxy_mode::http;
  std::vector<std::string> given;  // which of these flags were given
};

// Splits "a,b,c" (repeatable flags may also be given several times).
std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    std::size_t start = 0;
    while (start <= item.size()) {
      const std::size_t comma = item.find(',', start);
      std::string part = item.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  cli args("sluice-gateway",
           "Low-latency L4/L7 gateway: proxies TCP streams (--mode=tcp) or HTTP/1.1 requests (--mode=http) to "
           "upstream pools, with health checks, keep-alive pools and Prometheus metrics.");
  app_options app;
  // Gateway defaults for two of the shared flags (a gateway must not hold
  // idle connections forever, nor wait 10 s for a dead upstream).
  app.runtime.loop.idle_timeout = std::chrono::seconds(60);
  app.runtime.loop.connect_timeout = std::chrono::seconds(5);
  app.declare(args, "127.0.0.1:8000");

  std::string config_path;
  bool check_config = false;
  pool_flags pf;
  pf.pool.name = "default";
  config cfg;
  std::string admin_text;
  auto track = [&pf](const char* name, auto apply) {
    return [&pf, name, apply](std::string_view v) -> result<void> {
      pf.given.emplace_back(name);
      return apply(v);
    };
  };
  auto duration_into = [](duration& d) {
    return [&d](std::string_view v) -> result<void> {
      auto r = parse_duration(v);
      if (!r) return r.err();
      d = *r;
      return {};
    };
  };
  auto count_into = [](unsigned& n) {
    return [&n](std::string_view v) -> result<void> {
      auto r = parse_count(v);
      if (!r) return r.err();
      n = static_cast<unsigned>(*r);
      return {};
    };
  };
  auto size_into = [](std::size_t& n) {
    return [&n](std::string_view v) -> result<void> {
      auto r = parse_size(v);
      if (!r) return r.err();
      n = static_cast<std::size_t>(*r);
      return {};
    };
  };

  args.option("--config", "FILE", "read listeners, pools, routes, limits and timeouts from a TOML file", config_path);
  args.flag("--check-config", "check the configuration (file or flags), print it, and exit (0 if valid, 2 if not)",
            check_config);
  args.custom("--upstream", "HOST:PORT[,...]", "the upstreams of the single pool (repeatable)",
              track("--upstream", [&pf](std::string_view v) -> result<void> {
                pf.upstreams.emplace_back(v);
                return {};
              }));
  args.custom("--mode", "tcp|http", "proxy TCP streams or HTTP/1.1 requests (default http)",
              track("--mode", [&pf](std::string_view v) -> result<void> {
                auto m = parse_mode(v);
                if (!m) return m.err();
                pf.mode = *m;
                return {};
              }));
  args.custom("--lb", "POLICY", "how the pool picks an upstream: round-robin (default), least-conn, source-hash, consistent-hash",
              track("--lb", [&pf](std::string_view v) -> result<void> {
                auto p = parse_policy(v);
                if (!p) return p.err();
                pf.pool.policy = *p;
                return {};
              }));
  args.custom("--hash-key", "source|host|path", "what consistent-hash hashes (default source: the client's address)",
              track("--hash-key", [&pf](std::string_view v) -> result<void> {
                auto k = parse_hash_key(v);
                if (!k) return k.err();
                pf.pool.key = *k;
                return {};
              }));
  args.custom("--retries", "N", "connect to another upstream this many times after a failed connect (default 2)",
              track("--retries", count_into(pf.pool.retries)));
  args.custom("--max-fails", "N", "consecutive failures that eject an upstream (default 3)",
              track("--max-fails", count_into(pf.pool.max_fails)));
  args.custom("--eject-time", "D", "how long an ejected upstream stays out (default 10s)",
              track("--eject-time", duration_into(pf.pool.eject_time)));
  args.custom("--upstream-keepalive", "N", "http: idle keep-alive connections kept per upstream and loop (default 256)",
              track("--upstream-keepalive", size_into(pf.pool.keepalive)));
  args.custom("--health-check", "none|tcp|http", "active health check: connect, or GET --health-path (default tcp)",
              track("--health-check", [&pf](std::string_view v) -> result<void> {
                auto k = parse_check(v);
                if (!k) return k.err();
                pf.pool.check.kind = *k;
                return {};
              }));
  args.custom("--health-interval", "D", "time between health checks (default 2s)",
              track("--health-interval", duration_into(pf.pool.check.interval)));
  args.custom("--health-timeout", "D", "a health check that takes longer fails (default 1s)",
              track("--health-timeout", duration_into(pf.pool.check.timeout)));
  args.custom("--health-path", "PATH", "http health checks GET this path; 2xx or 3xx passes (default /)",
              track("--health-path", [&pf](std::string_view v) -> result<void> {
                pf.pool.check.path = std::string(v);
                return {};
              }));
  args.custom("--rise", "N", "passing checks that bring an upstream back (default 2)", track("--rise", count_into(pf.pool.check.rise)));
  args.custom("--fall", "N", "failing checks that take an upstream out (default 2)", track("--fall", count_into(pf.pool.check.fall)));
  args.custom("--header-timeout", "D", "http: a request head must be complete within this (default 10s)",
              track("--header-timeout", duration_into(cfg.timeouts.header)));
  args.custom("--response-timeout", "D", "http: the upstream must start answering within this, else 504 (default 30s)",
              track("--response-timeout", duration_into(cfg.timeouts.response)));
  args.custom("--high-water", "BYTES", "per connection: stop reading a side while its peer holds this much output (default 256k)",
              track("--high-water", size_into(cfg.high_water)));
  args.custom("--low-water", "BYTES", "per connection: read it again below this (default 64k)",
              track("--low-water", size_into(cfg.low_water)));
  args.custom("--max-request-line", "BYTES", "http: longest request line; longer is 414 (default 8k)",
              track("--max-request-line", size_into(cfg.http.max_request_line)));
  args.custom("--max-header-bytes", "BYTES", "http: largest request head; larger is 431 (default 32k)",
              track("--max-header-bytes", size_into(cfg.http.max_header_bytes)));
  args.custom("--max-headers", "N", "http: most header fields; more is 431 (default 100)",
              track("--max-headers", size_into(cfg.http.max_headers)));
  args.custom("--max-body", "BYTES", "http: largest request body, streamed; larger is 413 (default 1g)",
              track("--max-body", [&cfg](std::string_view v) -> result<void> {
                auto n = parse_size(v);
                if (!n) return n.err();
                cfg.http.max_body = *n;
                return {};
              }));
  bool allow_underscores = false;
  args.flag("--allow-underscores",
            "http: forward request header fields whose names hold '_' (dropped by default, as nginx does)",
            allow_underscores);
  args.option("--admin", "HOST:PORT", "serve /metrics (Prometheus) and /healthz here (default: no admin endpoint)",
              admin_text);
  args.note("Defaults here: --idle-timeout=60s (both sides), --connect-timeout=5s.");
  args.note("Example: sluice-gateway --listen=0.0.0.0:8080 --upstream=10.0.0.1:80,10.0.0.2:80 --mode=http --admin=127.0.0.1:9901");
  args.note("         sluice-gateway --config=/etc/sluice/gateway.toml");

  if (auto rc = args.parse(argc, argv)) return *rc;
  const bool listen_given = !app.listen_text.empty();
  if (auto rc = app.finish(args)) return *rc;

  if (!config_path.empty()) {
    if (!pf.given.empty()) {
      return args.fail(pf.given.front() + " and --config exclude each other: put it in " + config_path);
    }
    if (listen_given) return args.fail("--listen and --config exclude each other: put listeners in " + config_path);
    auto loaded = load_file(config_path);
    if (!loaded) return args.fail(loaded.err().message);
    cfg = std::move(*loaded);
    cfg.allow_underscores = cfg.allow_underscores || allow_underscores;
    // The file's timeouts are the loops' connection timeouts.
    app.runtime.loop.idle_timeout = cfg.timeouts.idle;
    app.runtime.loop.connect_timeout = cfg.timeouts.connect;
  } else {
    cfg.allow_underscores = allow_underscores;
    for (const std::string& u : split_list(pf.upstreams)) {
      auto ep = endpoint::parse(u);
      if (!ep) return args.fail("--upstream: " + ep.err().message);
      pf.pool.upstreams.push_back(*ep);
      pf.pool.upstream_names.push_back(u);
    }
    if (pf.pool.upstreams.empty()) return args.fail("no upstream: give --upstream=HOST:PORT[,...] or --config=FILE");
    pf.pool.where = "--upstream";
    cfg.pools.push_back(pf.pool);
    for (std::size_t i = 0; i < app.listen.size(); ++i) {
      listener_config l;
      l.address = app.listen[i];
      l.address_text = app.listen_text[i];
      l.mode = pf.mode;
      l.pool = pf.pool.name;
      l.where = "--listen";
      cfg.listeners.push_back(std::move(l));
    }
    cfg.timeouts.idle = app.runtime.loop.idle_timeout;
    cfg.timeouts.connect = app.runtime.loop.connect_timeout;
    if (!admin_text.empty()) {
      auto ep = endpoint::parse(admin_text);
      if (!ep) return args.fail("--admin: " + ep.err().message);
      cfg.admin = *ep;
    }
    if (auto v = validate(cfg); !v) return args.fail(v.err().message);
  }
  if (!admin_text.empty() && !config_path.empty()) {
    auto ep = endpoint::parse(admin_text);
    if (!ep) return args.fail("--admin: " + ep.err().message);
    cfg.admin = *ep;  // the flag names the admin address even with a file
  }
  // A head that may grow past the input limit would stall: reading stops
  // before the parser could refuse it.
  if (cfg.http.max_header_bytes >= app.runtime.loop.max_input_bytes) {
    return args.fail("max_header_bytes must be below --max-input (" + std::to_string(app.runtime.loop.max_input_bytes) + ")");
  }
  if (check_config) {
    std::printf("sluice-gateway: configuration OK (%s)\n%s", cfg.source.c_str(), describe(cfg).c_str());
    return 0;
  }
  app.runtime.loop.output_high_water = cfg.high_water;
  app.runtime.loop.output_low_water = cfg.low_water;

  // Stats and shards outlive the runtime (declared first, destroyed last):
  // the loops' handlers point into them until the loops are gone.
  std::vector<std::unique_ptr<shard_stats>> stats;
  std::vector<std::unique_ptr<shard>> shards;
  std::mutex shards_mu;
  std::unique_ptr<admin_handler> admin;
  runtime rt(app.runtime);
  // The shard of loop l, made on l's own thread at its first handler.
  auto shard_of = [&](loop_base& l) -> shard& {
    std::lock_guard lock(shards_mu);
    if (shards.size() < rt.loop_count()) {
      shards.resize(rt.loop_count());
      while (stats.size() < rt.loop_count()) stats.push_back(std::make_unique<shard_stats>(cfg));
    }
    if (!shards[l.id()]) shards[l.id()] = std::make_unique<shard>(l, cfg, *stats[l.id()]);
    return *shards[l.id()];
  };
  for (const listener_config& lc : cfg.listeners) {
    rt.listen(lc.address, [&shard_of, &lc](loop_base& l) { return shard_of(l).make_front(lc); });
  }
  endpoint admin_bound;
  rt.on_start([&](loop_base& l) -> result<void> {
    (void)shard_of(l);  // health checks run on every loop, listeners or not
    if (l.id() != 0) return {};
    if (cfg.admin) {
      admin = std::make_unique<admin_handler>(rt, cfg, stats);
      listen_options lo;
      lo.reuse_port = false;
      auto lr = l.listen(*cfg.admin, *admin, lo);
      if (!lr) return error{"--admin: " + lr.err().message, {}};
      admin_bound = (*lr)->local();
    }
    for (std::size_t i = 0; i < rt.bound().size(); ++i) {
      const listener_config& lc = cfg.listeners[i];
      std::string to = lc.pool.empty() ? std::string("routes") : "pool " + lc.pool;
      std::printf("sluice-gateway: %s on %s -> %s (%zu route%s; transport %.*s, %u loop%s)\n",
                  std::string(to_string(lc.mode)).c_str(), rt.bound()[i].to_string().c_str(), to.c_str(),
                  lc.routes.size(), lc.routes.size() == 1 ? "" : "s", static_cast<int>(rt.transport_name().size()),
                  rt.transport_name().data(), rt.loop_count(), rt.loop_count() == 1 ? "" : "s");
    }
    if (cfg.admin) {
      std::printf("sluice-gateway: admin on %s (http://%s/metrics, /healthz)\n", admin_bound.to_string().c_str(),
                  admin_bound.to_string().c_str());
    }
    std::fflush(stdout);
    return {};
  });
  const int rc = rt.run("sluice-gateway");
  return rc;
}
