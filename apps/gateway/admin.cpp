#include "admin.hpp"

#include <algorithm>
#include <cstdio>

#include "sluice/core/connection.hpp"
#include "sluice/core/http/status.hpp"

namespace sluice::gateway {

namespace {

void add(std::string& out, const char* name, const std::string& labels, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " %.9g\n", v);
  out.append(name).append("{").append(labels).append("}").append(buf);
}

void add(std::string& out, const char* name, const std::string& labels, std::uint64_t v) {
  out.append(name).append("{").append(labels).append("} ").append(std::to_string(v)).append("\n");
}

void help(std::string& out, const char* name, const char* type, const char* text) {
  out.append("# HELP ").append(name).append(" ").append(text).append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

std::string loop_label(unsigned i) { return "loop=\"" + std::to_string(i) + "\""; }

void histogram(std::string& out, const char* name, const char* text,
               const std::vector<std::unique_ptr<shard_stats>>& stats, latency_histogram shard_stats::*h) {
  help(out, name, "histogram", text);
  const std::string bucket = std::string(name) + "_bucket";
  const std::string sum = std::string(name) + "_sum";
  const std::string count = std::string(name) + "_count";
  for (unsigned i = 0; i < stats.size(); ++i) {
    const latency_histogram& lh = (*stats[i]).*h;
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < latency_histogram::bounds_ns.size(); ++b) {
      cumulative += lh.bucket(b);
      char le[32];
      std::snprintf(le, sizeof le, "%g", static_cast<double>(latency_histogram::bounds_ns[b]) / 1e9);
      add(out, bucket.c_str(), loop_label(i) + ",le=\"" + le + "\"", cumulative);
    }
    cumulative += lh.bucket(latency_histogram::bounds_ns.size());
    add(out, bucket.c_str(), loop_label(i) + ",le=\"+Inf\"", cumulative);
    add(out, sum.c_str(), loop_label(i), static_cast<double>(lh.sum_ns()) / 1e9);
    add(out, count.c_str(), loop_label(i), cumulative);
  }
}

}  // namespace

admin_endpoint::admin_endpoint(runtime& rt, const config& cfg, const std::vector<std::unique_ptr<shard_stats>>& stats)
    : rt_(rt), cfg_(cfg), stats_(stats), started_(steady_now()), sessions_(this) {
  last_idle_ns_.assign(rt.loop_count(), 0);
  last_at_.assign(rt.loop_count(), started_);
}

http::limits admin_endpoint::request_limits() noexcept {
  return {.max_request_line = ranges::admin_max_request_line,
          .max_header_bytes = ranges::admin_max_header_bytes,
          .max_headers = ranges::admin_max_headers,
          .max_body = 0};
}

admin_endpoint::session::session(admin_endpoint*& a, connection&) noexcept : owner(a) {
  try {
    parser.emplace(request_limits());
  } catch (...) {
    // No memory for the parser: on_open closes the connection.
  }
}

void admin_endpoint::session::on_open(connection& c) noexcept {
  if (!parser) return c.close(close_reason::resource_limit);
  deadline.start(c, owner->cfg_.timeouts.header);
}

void admin_endpoint::session::on_close(connection&, close_reason) noexcept { deadline.met(); }

bool admin_endpoint::respond(connection& c, int code, const char* type, std::string_view body, bool head_only,
                            bool keep_alive, std::string_view extra) {
  std::string head = "HTTP/1.1 " + std::to_string(code) + " " + std::string(http::reason_phrase(code)) +
                     "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                     std::string(extra) + (keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
  if (!head_only) head += body;
  return c.write(head);
}

void admin_endpoint::session::on_data(connection& c) noexcept {
  if (!parser) return;
  for (;;) {
    if (!c.is_open()) return;
    switch (parser->parse(c.input())) {
      case http::request_parser::status::need_more:
        deadline.waiting(c, owner->cfg_.timeouts.header);
        return;
      case http::request_parser::status::error:
        deadline.met();
        return http::reject(c, parser->error_status());
      case http::request_parser::status::request: {
        deadline.met();
        const http::request& r = parser->current();
        const bool head_only = r.method() == http::verb::head;
        bool ok = true;
        try {
          if (r.method() != http::verb::get && !head_only) {
            ok = respond(c, 405, "text/plain; charset=utf-8", "only GET and HEAD\n", false, r.keep_alive(),
                         "Allow: GET, HEAD\r\n");
          } else if (r.path() == "/metrics") {
            ok = respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", owner->render_metrics(), head_only,
                         r.keep_alive());
          } else if (r.path() == "/healthz") {
            const bool stopping = c.loop().stopping();
            ok = respond(c, stopping ? 503 : 200, "text/plain; charset=utf-8", stopping ? "stopping\n" : "ok\n",
                         head_only, r.keep_alive());
          } else {
            ok = respond(c, 404, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n", head_only,
                         r.keep_alive());
          }
        } catch (...) {
          ok = false;  // out of memory while rendering: this connection goes
        }
        if (!ok || !r.keep_alive()) return c.close();
        c.flush();
        continue;
      }
      default:
        continue;
    }
  }
}

std::string admin_endpoint::render_metrics() {
  std::string out;
  out.reserve(16 * 1024);
  const unsigned loops = static_cast<unsigned>(stats_.size());
  const time_point now = steady_now();

  help(out, "sluice_gateway_connections", "gauge", "Client connections open.");
  for (unsigned i = 0; i < loops; ++i) add(out, "sluice_gateway_connections", loop_label(i), stats_[i]->sessions.get());
  help(out, "sluice_gateway_connections_total", "counter", "Client connections accepted.");
  for (unsigned i = 0; i < loops; ++i) {
    add(out, "sluice_gateway_connections_total", loop_label(i), stats_[i]->sessions_total.get());
  }
  help(out, "sluice_gateway_requests_total", "counter", "HTTP requests received.");
  for (unsigned i = 0; i < loops; ++i) add(out, "sluice_gateway_requests_total", loop_label(i), stats_[i]->requests.get());
  help(out, "sluice_gateway_responses_total", "counter", "HTTP responses sent to clients, by status class.");
  for (unsigned i = 0; i < loops; ++i) {
    for (unsigned k = 1; k <= 5; ++k) {
      add(out, "sluice_gateway_responses_total", loop_label(i) + ",class=\"" + std::to_string(k) + "xx\"",
          stats_[i]->responses_by_class[k].get());
    }
  }
  help(out, "sluice_gateway_errors_total", "counter",
       "Requests the gateway could not complete: bad_gateway (502), gateway_timeout (504), no_route (404), "
       "response_cut (upstream failed mid-response, client reset).");
  for (unsigned i = 0; i < loops; ++i) {
    const shard_stats& s = *stats_[i];
    add(out, "sluice_gateway_errors_total", loop_label(i) + ",kind=\"bad_gateway\"", s.bad_gateway.get());
    add(out, "sluice_gateway_errors_total", loop_label(i) + ",kind=\"gateway_timeout\"", s.gateway_timeout.get());
    add(out, "sluice_gateway_errors_total", loop_label(i) + ",kind=\"no_route\"", s.no_route.get());
    add(out, "sluice_gateway_errors_total", loop_label(i) + ",kind=\"response_cut\"", s.responses_cut.get());
  }

  struct upstream_metric {
    const char* name;
    const char* type;
    const char* text;
    counter upstream_stats::*field;
  };
  static const upstream_metric per_upstream[] = {
      {"sluice_gateway_upstream_requests_total", "counter", "Requests (http) or sessions (tcp) sent to the upstream.",
       &upstream_stats::requests},
      {"sluice_gateway_upstream_connects_total", "counter", "Connections opened to the upstream.", &upstream_stats::connects},
      {"sluice_gateway_upstream_connect_failures_total", "counter", "Connects refused, timed out or unreachable.",
       &upstream_stats::connect_failures},
      {"sluice_gateway_upstream_failures_total", "counter", "Upstream failures after connecting (reset, closed early, garbage).",
       &upstream_stats::failures},
      {"sluice_gateway_upstream_timeouts_total", "counter", "Responses that did not start within the response timeout.",
       &upstream_stats::timeouts},
      {"sluice_gateway_upstream_ejections_total", "counter", "Passive ejections after consecutive failures.",
       &upstream_stats::ejections},
      {"sluice_gateway_upstream_health_checks_failed_total", "counter", "Active health checks that failed.",
       &upstream_stats::checks_failed},
      {"sluice_gateway_upstream_active", "gauge", "Upstream connections in use.", &upstream_stats::active},
      {"sluice_gateway_upstream_idle", "gauge", "Idle keep-alive connections in the pool.", &upstream_stats::idle},
  };
  auto upstream_label = [&](unsigned loop, std::size_t p, std::size_t u) {
    return loop_label(loop) + ",pool=\"" + cfg_.pools[p].name + "\",upstream=\"" + cfg_.pools[p].upstream_names[u] + "\"";
  };
  for (const upstream_metric& m : per_upstream) {
    help(out, m.name, m.type, m.text);
    for (unsigned i = 0; i < loops; ++i) {
      for (std::size_t p = 0; p < cfg_.pools.size(); ++p) {
        for (std::size_t u = 0; u < cfg_.pools[p].upstreams.size(); ++u) {
          add(out, m.name, upstream_label(i, p, u), (stats_[i]->upstreams[p][u].*m.field).get());
        }
      }
    }
  }
  help(out, "sluice_gateway_upstream_healthy", "gauge",
       "1 while the upstream takes traffic on this loop (health check up, not ejected).");
  const auto now_ns = static_cast<std::uint64_t>(now.time_since_epoch().count());
  for (unsigned i = 0; i < loops; ++i) {
    for (std::size_t p = 0; p < cfg_.pools.size(); ++p) {
      for (std::size_t u = 0; u < cfg_.pools[p].upstreams.size(); ++u) {
        const upstream_stats& us = stats_[i]->upstreams[p][u];
        const bool healthy = us.check_up.get() != 0 && now_ns >= us.ejected_until_ns.get();
        add(out, "sluice_gateway_upstream_healthy", upstream_label(i, p, u), std::uint64_t{healthy ? 1u : 0u});
      }
    }
  }

  // TLS, per side (client: terminated; upstream: originated), summed over
  // the loops.
  struct tls_side {
    const char* label;
    tls_side_stats shard_stats::*field;
  };
  static const tls_side sides[] = {{"client", &shard_stats::tls_client}, {"upstream", &shard_stats::tls_upstream}};
  auto tls_sum = [&](tls_side_stats shard_stats::*side, auto pick) {
    std::uint64_t n = 0;
    for (unsigned i = 0; i < loops; ++i) n += pick(stats_[i].get()->*side).get();
    return n;
  };
  help(out, "sluice_gateway_tls_handshakes_total", "counter", "TLS handshakes completed, by side (all loops).");
  for (const tls_side& t : sides) {
    add(out, "sluice_gateway_tls_handshakes_total", std::string("side=\"") + t.label + "\"",
        tls_sum(t.field, [](const tls_side_stats& x) -> const counter& { return x.handshakes; }));
  }
  help(out, "sluice_gateway_tls_resumed_total", "counter", "TLS handshakes that resumed a session, by side (all loops).");
  for (const tls_side& t : sides) {
    add(out, "sluice_gateway_tls_resumed_total", std::string("side=\"") + t.label + "\"",
        tls_sum(t.field, [](const tls_side_stats& x) -> const counter& { return x.resumed; }));
  }
  help(out, "sluice_gateway_tls_versions_total", "counter", "TLS handshakes completed, by side and version (all loops).");
  for (const tls_side& t : sides) {
    add(out, "sluice_gateway_tls_versions_total", std::string("side=\"") + t.label + "\",version=\"TLSv1.2\"",
        tls_sum(t.field, [](const tls_side_stats& x) -> const counter& { return x.tls12; }));
    add(out, "sluice_gateway_tls_versions_total", std::string("side=\"") + t.label + "\",version=\"TLSv1.3\"",
        tls_sum(t.field, [](const tls_side_stats& x) -> const counter& { return x.tls13; }));
  }
  help(out, "sluice_gateway_tls_failures_total", "counter",
       "TLS connections that failed, by side and reason (all loops): not_tls, handshake, verify, timeout, truncated "
       "(during the handshake), record (after it), memory, other.");
  for (const tls_side& t : sides) {
    for (std::size_t r = 0; r < tls_failure_count; ++r) {
      add(out, "sluice_gateway_tls_failures_total",
          std::string("side=\"") + t.label + "\",reason=\"" + to_string(static_cast<tls_failure>(r)) + "\"",
          tls_sum(t.field, [r](const tls_side_stats& x) -> const counter& { return x.failures[r]; }));
    }
  }

  histogram(out, "sluice_gateway_request_duration_seconds",
            "HTTP request latency through the gateway: head parsed to response complete.", stats_,
            &shard_stats::request_latency);
  histogram(out, "sluice_gateway_upstream_connect_duration_seconds", "Time to connect to an upstream.", stats_,
            &shard_stats::connect_latency);

  help(out, "sluice_loop_bytes_read_total", "counter", "Bytes read by the loop (clients and upstreams).");
  for (unsigned i = 0; i < loops; ++i) add(out, "sluice_loop_bytes_read_total", loop_label(i), rt_.loop(i).stats().bytes_read.get());
  help(out, "sluice_loop_bytes_written_total", "counter", "Bytes written by the loop (clients and upstreams).");
  for (unsigned i = 0; i < loops; ++i) {
    add(out, "sluice_loop_bytes_written_total", loop_label(i), rt_.loop(i).stats().bytes_written.get());
  }
  help(out, "sluice_loop_connections", "gauge", "Connections the loop holds (clients, upstreams, checks).");
  for (unsigned i = 0; i < loops; ++i) add(out, "sluice_loop_connections", loop_label(i), rt_.loop(i).stats().connections.get());
  help(out, "sluice_loop_idle_seconds_total", "counter", "Time the loop slept with nothing to do.");
  for (unsigned i = 0; i < loops; ++i) {
    add(out, "sluice_loop_idle_seconds_total", loop_label(i), static_cast<double>(rt_.loop(i).stats().idle_ns.get()) / 1e9);
  }
  help(out, "sluice_loop_busy_ratio", "gauge", "Share of time the loop was not sleeping, since the previous scrape.");
  for (unsigned i = 0; i < loops; ++i) {
    const std::uint64_t idle = rt_.loop(i).stats().idle_ns.get();
    const double elapsed = static_cast<double>((now - last_at_[i]).count());
    const double ratio = elapsed > 0 ? 1.0 - static_cast<double>(idle - last_idle_ns_[i]) / elapsed : 0.0;
    add(out, "sluice_loop_busy_ratio", loop_label(i), std::clamp(ratio, 0.0, 1.0));
    last_idle_ns_[i] = idle;
    last_at_[i] = now;
  }
  return out;
}

}  // namespace sluice::gateway
