#include "shard.hpp"

namespace sluice::gateway {

namespace {

std::vector<upstream_pool> make_pools(const config& cfg, shard_stats& stats) {
  std::vector<upstream_pool> pools;
  pools.reserve(cfg.pools.size());
  for (std::size_t i = 0; i < cfg.pools.size(); ++i) pools.emplace_back(cfg.pools[i], stats.upstreams[i].get());
  return pools;
}

}  // namespace

shard::shard(loop_base& loop, const config& cfg, shard_stats& stats,
             [[maybe_unused]] const std::shared_ptr<tls::ticket_keys>& tickets)
    : loop_(loop),
      cfg_(cfg),
      stats_(stats),
      pools_(make_pools(cfg, stats)),
      health_(loop, pools_),
      tcp_(*this),
      http_(*this) {
#if SLUICE_HAVE_TLS
  for (const listener_config& l : cfg.listeners) {
    server_tls_.emplace_back();
    if (!l.tls()) continue;
    tls::context_options o;
    for (const tls_cert_files& f : l.certs) o.certs.push_back({f.cert, f.key});
    o.tickets = tickets;  // one key set per process: a ticket resumes on every loop
    o.cipher_list = l.ciphers.ciphers;
    o.ciphersuites = l.ciphers.ciphersuites;
    if (l.mode == proxy_mode::tcp) o.alpn.clear();  // the stream is not ours to name
    auto made = tls::context::make_server(o);
    if (made) {
      server_tls_.back().emplace(std::move(*made));
    } else if (tls_error_.empty()) {
      tls_error_ = l.where + ": " + made.err().message;
    }
  }
  for (const pool_config& p : cfg.pools) {
    client_tls_.emplace_back();
    upstream_sessions_.emplace_back();
    if (!p.tls) continue;
    upstream_sessions_.back().resize(p.upstreams.size());
    tls::context_options o;
    o.alpn.clear();  // an upstream needs no ALPN to speak HTTP/1.1
    if (p.verify) o.ca_file = p.ca;
    o.cipher_list = p.ciphers.ciphers;
    o.ciphersuites = p.ciphers.ciphersuites;
    auto made = tls::context::make_client(o);
    if (made) {
      client_tls_.back().emplace(std::move(*made));
    } else if (tls_error_.empty()) {
      tls_error_ = p.where + ": " + made.err().message;
    }
  }
#endif
  health_.start();
  loop_.on_stop([this] {
    health_.stop();
    http_.stop();
    // tcp streams get the grace period: only their peers know when they end.
  });
}

std::unique_ptr<handler> shard::make_front(const listener_config& l) {
  tls::context* t = nullptr;
#if SLUICE_HAVE_TLS
  const auto i = static_cast<std::size_t>(&l - cfg_.listeners.data());
  if (i < server_tls_.size() && server_tls_[i]) t = &*server_tls_[i];
#endif
  // A listener whose certificates could not be loaded on this loop serves
  // nothing in plaintext: no handler, the runtime refuses to start.
  if (l.tls() && t == nullptr) return nullptr;
  if (l.mode == proxy_mode::tcp) return tcp_.make_front(l, t);
  return http_.make_front(l, t);
}

tls::context* shard::client_tls(std::size_t pool) noexcept {
#if SLUICE_HAVE_TLS
  if (pool < client_tls_.size() && client_tls_[pool]) return &*client_tls_[pool];
#else
  (void)pool;
#endif
  return nullptr;
}

tls::saved_session* shard::upstream_session(std::size_t pool, unsigned member) noexcept {
#if SLUICE_HAVE_TLS
  if (pool < upstream_sessions_.size() && member < upstream_sessions_[pool].size()) {
    return &upstream_sessions_[pool][member];
  }
#else
  (void)pool;
  (void)member;
#endif
  return nullptr;
}

void shard::upstream_connected(std::size_t pool, unsigned member, time_point started) noexcept {
  pools_[pool].succeeded(member);
  pools_[pool].at(member).stats->connects.add();
  stats_.connect_latency.record(loop_.now() - started);
}

}  // namespace sluice::gateway
