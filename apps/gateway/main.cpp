// sluice-gateway: an L4 (tcp) and L7 (http) gateway on sluice. Each loop
// proxies the connections it accepted through upstream connections it makes
// itself (see shard.hpp); configuration from a TOML file or, for one pool,
// from flags; an admin endpoint with Prometheus metrics.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "admin.hpp"
#include "config.hpp"
#include "shard.hpp"
#include "sluice/runtime/app_options.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include "sluice/tls/ticket_rotator.hpp"
#endif

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

// Splits "a,b,c" (repeatable flags may also be given several times). An
// empty entry ("a,,b", "a,") is an error: it is a typo, not a wish.
result<std::vector<std::string>> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    std::size_t start = 0;
    while (start <= item.size()) {
      const std::size_t comma = item.find(',', start);
      std::string part = item.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (part.empty()) return error{"'" + item + "' has an empty entry", {}};
      out.push_back(part);
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
  // The pool's flags are tracked (they exclude --config), so they are
  // custom flags; each still parses and checks its range as every other
  // size, count and duration does (sluice/base/cli.hpp), and --help shows it.
  auto duration_into = [](duration& d, duration_range range) {
    return [&d, range](std::string_view v) -> result<void> {
      auto r = parse_duration(v, range);
      if (!r) return r.err();
      d = *r;
      return {};
    };
  };
  auto count_into = [](auto& n, number_range range) {
    return [&n, range](std::string_view v) -> result<void> {
      auto r = parse_count(v, range);
      if (!r) return r.err();
      n = static_cast<std::remove_reference_t<decltype(n)>>(*r);
      return {};
    };
  };
  auto size_into = [](std::size_t& n, number_range range) {
    return [&n, range](std::string_view v) -> result<void> {
      auto r = parse_size(v, range);
      if (!r) return r.err();
      n = static_cast<std::size_t>(*r);
      return {};
    };
  };
  auto ranged = [](const char* help, const auto& range) { return std::string(help) + "; range " + to_string(range); };

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
  args.custom("--retries", "N",
              ranged("connect to another upstream this many times after a failed connect (default 2)", gateway::ranges::retries),
              track("--retries", count_into(pf.pool.retries, gateway::ranges::retries)));
  args.custom("--max-fails", "N", ranged("consecutive failures that eject an upstream (default 3)", gateway::ranges::max_fails),
              track("--max-fails", count_into(pf.pool.max_fails, gateway::ranges::max_fails)));
  args.custom("--eject-time", "D", ranged("how long an ejected upstream stays out (default 10s)", gateway::ranges::timeout),
              track("--eject-time", duration_into(pf.pool.eject_time, gateway::ranges::timeout)));
  args.custom("--upstream-keepalive", "N",
              ranged("http: idle keep-alive connections kept per upstream and loop (default 256)",
                     gateway::ranges::upstream_keepalive),
              track("--upstream-keepalive", count_into(pf.pool.keepalive, gateway::ranges::upstream_keepalive)));
  args.custom("--health-check", "none|tcp|http", "active health check: connect, or GET --health-path (default tcp)",
              track("--health-check", [&pf](std::string_view v) -> result<void> {
                auto k = parse_check(v);
                if (!k) return k.err();
                pf.pool.check.kind = *k;
                return {};
              }));
  args.custom("--health-interval", "D", ranged("time between health checks (default 2s)", gateway::ranges::timeout),
              track("--health-interval", duration_into(pf.pool.check.interval, gateway::ranges::timeout)));
  args.custom("--health-timeout", "D", ranged("a health check that takes longer fails (default 1s)", gateway::ranges::timeout),
              track("--health-timeout", duration_into(pf.pool.check.timeout, gateway::ranges::timeout)));
  args.custom("--health-path", "PATH", "http health checks GET this path; 2xx or 3xx passes (default /)",
              track("--health-path", [&pf](std::string_view v) -> result<void> {
                pf.pool.check.path = std::string(v);
                return {};
              }));
  args.custom("--rise", "N", ranged("passing checks that bring an upstream back (default 2)", gateway::ranges::rise_fall),
              track("--rise", count_into(pf.pool.check.rise, gateway::ranges::rise_fall)));
  args.custom("--fall", "N", ranged("failing checks that take an upstream out (default 2)", gateway::ranges::rise_fall),
              track("--fall", count_into(pf.pool.check.fall, gateway::ranges::rise_fall)));
  args.custom("--header-timeout", "D",
              ranged("http: a request head must be complete within this, else 408 (default 10s; the admin "
                     "endpoint's requests too)",
                     gateway::ranges::timeout),
              track("--header-timeout", duration_into(cfg.timeouts.header, gateway::ranges::timeout)));
  args.custom("--response-timeout", "D",
              ranged("http: the upstream must start answering within this, else 504 (default 30s)", gateway::ranges::timeout),
              track("--response-timeout", duration_into(cfg.timeouts.response, gateway::ranges::timeout)));
  args.custom("--high-water", "BYTES",
              ranged("per connection: stop reading a side while its peer holds this much output (default 256k)",
                     gateway::ranges::high_water),
              track("--high-water", size_into(cfg.high_water, gateway::ranges::high_water)));
  args.custom("--low-water", "BYTES", ranged("per connection: read it again below this (default 64k)", gateway::ranges::low_water),
              track("--low-water", size_into(cfg.low_water, gateway::ranges::low_water)));
  args.custom("--max-request-line", "BYTES",
              ranged("http: longest request line; longer is 414 (default 8k)", gateway::ranges::max_request_line),
              track("--max-request-line", size_into(cfg.http.max_request_line, gateway::ranges::max_request_line)));
  args.custom("--max-header-bytes", "BYTES",
              ranged("http: largest request head; larger is 431 (default 32k)", gateway::ranges::max_header_bytes),
              track("--max-header-bytes", size_into(cfg.http.max_header_bytes, gateway::ranges::max_header_bytes)));
  args.custom("--max-headers", "N", ranged("http: most header fields; more is 431 (default 100)", gateway::ranges::max_headers),
              track("--max-headers", count_into(cfg.http.max_headers, gateway::ranges::max_headers)));
  args.custom("--max-body", "BYTES",
              ranged("http: largest request body, streamed; larger is 413 (default 1g)", gateway::ranges::max_body),
              track("--max-body", [&cfg](std::string_view v) -> result<void> {
                auto n = parse_size(v, gateway::ranges::max_body);
                if (!n) return n.err();
                cfg.http.max_body = *n;
                return {};
              }));
  std::vector<std::string> tls_certs;
  std::vector<std::string> tls_keys;
  args.custom("--tls-cert", "FILE",
              "terminate TLS on every --listen address with this certificate chain (PEM); repeatable, paired in "
              "order with --tls-key: the first is the default, the others are chosen by SNI name",
              track("--tls-cert", [&tls_certs](std::string_view v) -> result<void> {
                tls_certs.emplace_back(v);
                return {};
              }));
  args.custom("--tls-key", "FILE", "the private key (PEM) of the --tls-cert given in the same position",
              track("--tls-key", [&tls_keys](std::string_view v) -> result<void> {
                tls_keys.emplace_back(v);
                return {};
              }));
  gateway::tls_cipher_config listener_ciphers;
  args.custom("--tls-ciphers", "LIST",
              "TLS: the TLS 1.2 ciphers clients may use, in OpenSSL's syntax (default: OpenSSL's)",
              track("--tls-ciphers", [&listener_ciphers](std::string_view v) -> result<void> {
                listener_ciphers.ciphers = std::string(v);
                return {};
              }));
  args.custom("--tls-ciphersuites", "LIST",
              "TLS: the TLS 1.3 cipher suites clients may use, in OpenSSL's syntax (default: OpenSSL's)",
              track("--tls-ciphersuites", [&listener_ciphers](std::string_view v) -> result<void> {
                listener_ciphers.ciphersuites = std::string(v);
                return {};
              }));
  args.custom("--tls-handshake-timeout", "D",
              ranged("TLS: a handshake (client or upstream side) must be done within this, else the connection "
                     "closes (default 10s)",
                     gateway::ranges::timeout),
              track("--tls-handshake-timeout", duration_into(cfg.timeouts.handshake, gateway::ranges::timeout)));
  args.custom("--tls-ticket-rotate", "D",
              ranged("TLS: a new session-ticket key (one per process, shared by every loop) this often; the "
                     "previous key still resumes for one more period (default 1h)",
                     gateway::ranges::ticket_rotate),
              track("--tls-ticket-rotate", duration_into(cfg.timeouts.ticket_rotate, gateway::ranges::ticket_rotate)));
  bool upstream_tls = false;
  bool upstream_insecure = false;
  args.flag("--upstream-tls", "speak TLS to the upstreams (verified with --upstream-ca)", upstream_tls);
  args.custom("--upstream-ca", "FILE", "the CA file (PEM) the upstreams' certificates must verify with",
              track("--upstream-ca", [&pf](std::string_view v) -> result<void> {
                pf.pool.ca = std::string(v);
                return {};
              }));
  args.custom("--upstream-sni", "NAME",
              "the TLS server name sent to the upstreams; their certificates must be for it (default: each "
              "upstream's host name as written; none for an address: the chain alone is verified)",
              track("--upstream-sni", [&pf](std::string_view v) -> result<void> {
                pf.pool.sni = std::string(v);
                return {};
              }));
  args.flag("--upstream-insecure", "with --upstream-tls: do not verify the upstreams' certificates", upstream_insecure);
  args.custom("--upstream-tls-ciphers", "LIST", "with --upstream-tls: the TLS 1.2 ciphers offered (default: OpenSSL's)",
              track("--upstream-tls-ciphers", [&pf](std::string_view v) -> result<void> {
                pf.pool.ciphers.ciphers = std::string(v);
                return {};
              }));
  args.custom("--upstream-tls-ciphersuites", "LIST",
              "with --upstream-tls: the TLS 1.3 cipher suites offered (default: OpenSSL's)",
              track("--upstream-tls-ciphersuites", [&pf](std::string_view v) -> result<void> {
                pf.pool.ciphers.ciphersuites = std::string(v);
                return {};
              }));
  bool allow_underscores = false;
  args.flag("--allow-underscores",
            "http: forward request header fields whose names hold '_' (dropped by default, as nginx does)",
            allow_underscores);
  args.option("--admin", "HOST:PORT", "serve /metrics (Prometheus) and /healthz here (default: no admin endpoint)",
              admin_text);
  args.note("Defaults here: --idle-timeout=60s (both sides), --connect-timeout=5s.");
  args.note("Upstreams may be host names: each is resolved once, at start-up (and by --check-config, which prints the\n"
            "address), to the first address the resolver gives, and not again while the gateway runs.");
  args.note("Example: sluice-gateway --listen=0.0.0.0:8080 --upstream=10.0.0.1:80,10.0.0.2:80 --mode=http --admin=127.0.0.1:9901");
  args.note("         sluice-gateway --config=/etc/sluice/gateway.toml");
  args.note("TLS:     sluice-gateway --listen=0.0.0.0:8443 --tls-cert=ec.crt --tls-key=ec.key --upstream=10.0.0.1:443 \\\n"
            "           --upstream-tls --upstream-ca=ca.crt --upstream-sni=app.internal\n"
            "         (in the file: [[listener.tls]] cert/key pairs, listener ciphers/ciphersuites, route sni,\n"
            "          pool tls/verify/ca/sni/ciphers/ciphersuites,\n"
            "          timeouts.handshake, timeouts.ticket_rotate)");

  if (auto rc = args.parse(argc, argv)) return *rc;
  if (upstream_tls) pf.given.emplace_back("--upstream-tls");
  if (upstream_insecure) pf.given.emplace_back("--upstream-insecure");
  pf.pool.tls = upstream_tls;
  pf.pool.verify = !upstream_insecure;
  if (upstream_insecure && !upstream_tls) return args.fail("--upstream-insecure needs --upstream-tls");
  if (tls_certs.size() != tls_keys.size()) return args.fail("--tls-cert and --tls-key must be given in pairs");
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
    auto upstreams = split_list(pf.upstreams);
    if (!upstreams) return args.fail("--upstream: " + upstreams.err().message);
    for (const std::string& u : *upstreams) {
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
      for (std::size_t k = 0; k < tls_certs.size(); ++k) {
        l.certs.push_back({tls_certs[k], tls_keys[k]});
        l.cert_where.push_back("--tls-cert=" + tls_certs[k]);
      }
      l.ciphers = listener_ciphers;
      cfg.listeners.push_back(std::move(l));
    }
    cfg.timeouts.idle = app.runtime.loop.idle_timeout;
    cfg.timeouts.connect = app.runtime.loop.connect_timeout;
    if (!admin_text.empty()) {
      auto ep = endpoint::parse(admin_text);
      if (!ep) return args.fail("--admin: " + ep.err().message);
      cfg.admin = *ep;
    }
  }
  if (!admin_text.empty() && !config_path.empty()) {
    auto ep = endpoint::parse(admin_text);
    if (!ep) return args.fail("--admin: " + ep.err().message);
    cfg.admin = *ep;  // the flag names the admin address even with a file
  }
  // Once more with a file (its own checks passed as it was read): --admin
  // may have moved the admin endpoint onto a listener.
  if (auto v = validate(cfg); !v) return args.fail(v.err().message);
  // A head that may grow past the input limit would stall: reading stops
  // before the parser could refuse it.
  if (cfg.http.max_header_bytes >= app.runtime.loop.max_input_bytes) {
    return args.fail("max_header_bytes must be below --max-input (" + std::to_string(app.runtime.loop.max_input_bytes) + ")");
  }
  // A side is read until its peer's output reaches high water; output past
  // --max-output is refused, which would end the connection instead.
  if (cfg.high_water > app.runtime.loop.max_output_bytes) {
    return args.fail("high_water (" + format_size(cfg.high_water) + ") must not exceed --max-output (" +
                     format_size(app.runtime.loop.max_output_bytes) + ")");
  }
  // Every certificate, key and CA file, with one clear error line.
  if (auto ok = check_tls_files(cfg); !ok) return args.fail(ok.err().message);
  if (check_config) {
    // What the start would refuse before binding: the transport, the plan.
    if (auto rc = app.check_start(args)) return *rc;
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
  std::unique_ptr<admin_endpoint> admin;
  // One session-ticket key set for the process: every loop's TLS listeners
  // seal and open tickets with it, rotated from loop 0's timer.
  std::shared_ptr<tls::ticket_keys> ticket_keys;
#if SLUICE_HAVE_TLS
  tls::ticket_rotator rotator;
  if (std::any_of(cfg.listeners.begin(), cfg.listeners.end(), [](const listener_config& l) { return l.tls(); })) {
    auto keys = tls::ticket_keys::make();
    if (!keys) return args.fail(keys.err().message);
    ticket_keys = std::move(*keys);
  }
#endif
  runtime rt(app.runtime);
  // The shard of loop l, made on l's own thread at its first handler.
  auto shard_of = [&](loop_base& l) -> shard& {
    std::lock_guard lock(shards_mu);
    if (shards.size() < rt.loop_count()) {
      shards.resize(rt.loop_count());
      while (stats.size() < rt.loop_count()) stats.push_back(std::make_unique<shard_stats>(cfg));
    }
    if (!shards[l.id()]) shards[l.id()] = std::make_unique<shard>(l, cfg, *stats[l.id()], ticket_keys);
    return *shards[l.id()];
  };
  for (const listener_config& lc : cfg.listeners) {
    rt.listen(lc.address, [&shard_of, &lc](loop_base& l) { return shard_of(l).make_front(lc); });
  }
  endpoint admin_bound;
  rt.on_start([&](loop_base& l) -> result<void> {
    (void)shard_of(l);  // health checks run on every loop, listeners or not
    if (l.id() != 0) return {};
#if SLUICE_HAVE_TLS
    if (ticket_keys) rotator.start(l, ticket_keys, cfg.timeouts.ticket_rotate);
#endif
    if (cfg.admin) {
      admin = std::make_unique<admin_endpoint>(rt, cfg, stats);
      listen_options lo;
      lo.reuse_port = false;
      auto lr = l.listen(*cfg.admin, admin->front(), lo);
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
