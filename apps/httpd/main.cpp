// sluice-httpd: an HTTP/1.1 server on sluice, for benchmarks and as the
// gateway's test upstream. Keep-alive, pipelining, "Hello, World!" on GET /,
// files from --root, an /echo endpoint for request bodies, and limits that
// answer 400/413/414/431 and close. See http_handler.hpp for the routes.

#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "http_handler.hpp"
#include "sluice/runtime/app_options.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/runtime/runtime.hpp"
#include "static_files.hpp"
#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include "sluice/tls/server_sessions.hpp"
#include "sluice/tls/ticket_rotator.hpp"
#endif

namespace {
// As the gateway's: a slow client may hold a connection this long at most.
constexpr sluice::duration default_header_timeout = std::chrono::seconds(10);

#if SLUICE_HAVE_TLS
// Every loop's TLS counters, kept past the loops to print at exit.
struct tls_counters {
  void add(std::shared_ptr<const sluice::tls::stats> s) {
    std::lock_guard lock(mu);
    loops.push_back(std::move(s));
  }
  [[nodiscard]] sluice::metric_list metrics() {
    std::lock_guard lock(mu);
    sluice::tls::stats sum;
    for (const auto& s : loops) sum += *s;
    sluice::metric_list out;
    sluice::tls::append_metrics(sum, "tls.", out);
    return out;
  }
  std::mutex mu;  // loops register from their own threads at start
  std::vector<std::shared_ptr<const sluice::tls::stats>> loops;
};
#endif
}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  cli args("sluice-httpd", "HTTP/1.1 server: keep-alive, pipelining, GET / answers \"Hello, World!\", --root serves files.");
  app_options app;
  app.declare(args, "127.0.0.1:8080");
  std::string root;
  http::limits limits;
  args.option("--root", "DIR", "serve the files under DIR (never outside it); default: only GET / and /echo", root);
  args.size_option("--max-request-line", "longest request line; longer is 414 and closes (default 8k)",
                   limits.max_request_line, ranges::max_request_line);
  args.size_option("--max-header-bytes", "largest request head (line and fields); larger is 431 and closes (default 32k)",
                   limits.max_header_bytes, ranges::max_header_bytes);
  args.count_option("--max-headers", "N", "most header fields; more is 431 and closes (default 100)", limits.max_headers,
                    ranges::max_headers);
  args.custom("--max-body", "BYTES",
              "largest request body; larger is 413 and closes (default 1m); range " + to_string(ranges::max_body),
              [&limits](std::string_view v) -> result<void> {
                auto n = parse_size(v, ranges::max_body);
                if (!n) return n.err();
                limits.max_body = *n;
                return {};
              });
  duration header_timeout = default_header_timeout;
  args.duration_option("--header-timeout",
                       "a request must have arrived whole (head and body) within this of when the connection began "
                       "to wait for it; 408 and close if part of it came, a quiet close if none did (default 10s)",
                       header_timeout, ranges::timeout);
  // Per loop; left at "auto" it fits the descriptor limit (see below).
  constexpr std::size_t auto_entries = ~std::size_t{0};
  httpd::open_file_cache_options cache_opts;
  cache_opts.entries = auto_entries;
  cache_opts.content = auto_entries;
  args.count_option("--open-file-cache", "N",
                    "keep up to N served files open per loop (0: off), as nginx's open_file_cache; default 256, "
                    "fewer if the descriptor limit (ulimit -n) is low",
                    cache_opts.entries, httpd::ranges::open_file_cache);
  args.duration_option("--open-file-cache-valid",
                       "trust a cached file this long, then look it up again: until then a file replaced or "
                       "deleted is still served as it was (default 1s)",
                       cache_opts.valid, httpd::ranges::open_file_cache_valid);
  args.size_option("--open-file-cache-content",
                   "also keep the bytes of cached files up to this size in memory (0: only descriptors); a file "
                   "changed in place is then seen at the next check (default 16k)",
                   cache_opts.content, httpd::ranges::open_file_cache_content);
  args.duration_option("--open-file-cache-inactive",
                       "close a cached file not served for this long (default 60s)", cache_opts.inactive,
                       httpd::ranges::open_file_cache_inactive);
#if SLUICE_HAVE_TLS
  std::vector<std::string> tls_certs;
  std::vector<std::string> tls_keys;
  args.option("--tls-cert", "FILE",
              "serve HTTPS on every listen address with this certificate chain (PEM); repeatable, each with its "
              "--tls-key: the first is the default, the others are chosen by SNI name",
              tls_certs);
  args.option("--tls-key", "FILE", "the private key (PEM) of the --tls-cert given in the same position", tls_keys);
  std::string tls_ciphers;
  std::string tls_ciphersuites;
  args.option("--tls-ciphers", "LIST", "the TLS 1.2 ciphers clients may use, in OpenSSL's syntax (default: OpenSSL's)",
              tls_ciphers);
  args.option("--tls-ciphersuites", "LIST",
              "the TLS 1.3 cipher suites clients may use, in OpenSSL's syntax (default: OpenSSL's)", tls_ciphersuites);
  sluice::tls::ticket_rotator rotator;
  std::shared_ptr<sluice::tls::ticket_keys> ticket_keys;
  sluice::duration ticket_rotate = ranges::default_ticket_rotate;
  args.duration_option("--tls-ticket-rotate",
                       "a new session-ticket key (one per process, shared by every loop) this often; the previous "
                       "key still resumes for one more period (default 1h)",
                       ticket_rotate, ranges::ticket_rotate);
  tls_counters tls_stats;
#endif
  args.note("Example: sluice-httpd --listen=0.0.0.0:8080 --cores=2 --root=/srv/www");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;
  // A cached file goes out in one write: it must fit above the high water.
  const std::size_t above_high = app.runtime.loop.max_output_bytes > app.runtime.loop.output_high_water
                                     ? app.runtime.loop.max_output_bytes - app.runtime.loop.output_high_water
                                     : 0;
  if (cache_opts.content == auto_entries) {
    cache_opts.content = std::min<std::size_t>(16 * 1024, above_high);
  } else if (cache_opts.content > above_high) {
    return args.fail("--open-file-cache-content (" + format_size(cache_opts.content) +
                     ") plus the output's high water (" + format_size(app.runtime.loop.output_high_water) +
                     ") must fit in --max-output (" + format_size(app.runtime.loop.max_output_bytes) + ")");
  }
  // A head that may grow past the input limit would stall: reading stops
  // before the parser could refuse it.
  if (limits.max_header_bytes >= app.runtime.loop.max_input_bytes) {
    return args.fail("--max-header-bytes must be below --max-input (" +
                     std::to_string(app.runtime.loop.max_input_bytes) + ")");
  }

  // Bodies are held whole (for /echo): one that the loop's buffer pool
  // cannot hold could never complete.
  if (limits.max_body > app.runtime.loop.pool.max_bytes / 2) {
    return args.fail("--max-body (" + format_size(limits.max_body) + ") must be at most half of --pool-limit (" +
                     format_size(app.runtime.loop.pool.max_bytes) + "): a body is held whole");
  }

  std::optional<httpd::static_files> files;
  if (!root.empty()) {
    auto opened = httpd::static_files::open(root);
    if (!opened) return args.fail(opened.err().message);
    files.emplace(std::move(*opened));
  }
  const httpd::static_files* files_ptr = files ? &*files : nullptr;

  runtime rt(app.runtime);
  // The cache's descriptors may take at most half of the process's limit,
  // the rest is for connections. Loops are known once the runtime starts.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  const std::size_t fd_budget = nofile.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : nofile.rlim_cur / 2;
  const bool cache_auto = cache_opts.entries == auto_entries;
  auto cache_for_loop = [&rt, &cache_opts, cache_auto, fd_budget] {
    httpd::open_file_cache_options o = cache_opts;
    if (cache_auto) o.entries = std::min<std::size_t>(256, fd_budget / rt.loop_count() / 2);
    return o;
  };
  rt.on_start([&](loop_base& l) -> result<void> {
    if (l.id() != 0 || !files || cache_auto || cache_opts.entries * rt.loop_count() <= fd_budget) return {};
    return error{"--open-file-cache=" + std::to_string(cache_opts.entries) + " x " + std::to_string(rt.loop_count()) +
                     " loops would hold more than half of the descriptor limit (ulimit -n " +
                     std::to_string(nofile.rlim_cur) + "): lower it, or raise the limit",
                 {}};
  });
  bool tls = false;
#if SLUICE_HAVE_TLS
  tls::context_options tls_opts;
  if (tls_certs.size() != tls_keys.size()) return args.fail("--tls-cert and --tls-key must be given in pairs");
  for (std::size_t i = 0; i < tls_certs.size(); ++i) tls_opts.certs.push_back({tls_certs[i], tls_keys[i]});
  tls = !tls_opts.certs.empty();
  if (!tls && (!tls_ciphers.empty() || !tls_ciphersuites.empty())) {
    return args.fail(std::string(!tls_ciphers.empty() ? "--tls-ciphers" : "--tls-ciphersuites") +
                     " needs --tls-cert and --tls-key");
  }
  tls_opts.cipher_list = tls_ciphers;
  tls_opts.ciphersuites = tls_ciphersuites;
  if (tls) {
    // Checked once here, with one clear error; each loop then makes its own
    // context from the same files (no OpenSSL lock shared between loops).
    auto checked = tls::context::make_server(tls_opts);
    if (!checked) return args.fail(checked.err().message);
    auto keys = tls::ticket_keys::make();
    if (!keys) return args.fail(keys.err().message);
    tls_opts.tickets = *keys;
    ticket_keys = *keys;
  }
#endif
  for (const auto& at : app.listen) {
#if SLUICE_HAVE_TLS
    if (tls) {
      rt.listen(at, [&limits, files_ptr, header_timeout, &tls_opts, &tls_stats, &cache_for_loop](loop_base&) -> std::unique_ptr<handler> {
        auto ctx = tls::context::make_server(tls_opts);
        if (!ctx) return nullptr;
        tls_stats.add(ctx->shared_stats());
        return std::make_unique<tls::server_sessions<httpd::http_session, httpd::httpd_context>>(
            std::move(*ctx), limits, files_ptr, header_timeout, true, cache_for_loop());
      });
      continue;
    }
#endif
    rt.listen(at, [&limits, files_ptr, header_timeout, &cache_for_loop](loop_base&) {
      return std::make_unique<httpd::http_handler>(limits, files_ptr, header_timeout, false, cache_for_loop());
    });
  }
  rt.on_start([&](loop_base& l) -> result<void> {
#if SLUICE_HAVE_TLS
    if (l.id() == 0 && tls) rotator.start(l, ticket_keys, ticket_rotate);
#endif
    return {};
  });
  rt.on_serving([&] {
    for (const auto& ep : rt.bound()) {
      std::printf("sluice-httpd: %s on %s (transport %.*s, %u loop%s%s%s)\n", tls ? "HTTPS" : "HTTP", ep.to_string().c_str(),
                  static_cast<int>(rt.transport_name().size()), rt.transport_name().data(), rt.loop_count(),
                  rt.loop_count() == 1 ? "" : "s", files ? ", root " : "", files ? files->root().c_str() : "");
    }
    std::fflush(stdout);
  });
  const int rc = rt.run("sluice-httpd");
#if SLUICE_HAVE_TLS
  // After the loops' own counters (--print-metrics), every loop's TLS
  // counters summed: tls.handshakes, tls.resumed, tls.handshake_failures, ...
  if (tls && app.runtime.print_metrics) std::fputs(format_metrics(tls_stats.metrics()).c_str(), stderr);
#endif
  return rc;
}
