#pragma once
// One loop's gateway: its upstream pools, health checks, proxies and
// counters. Made on the loop's own thread when the runtime asks for the
// loop's first handler, and used only there: every downstream connection
// gets its upstream connection from the same loop, so the data path never
// crosses a core.
//
// Lifetime: the shard outlives its loop (main owns it), but whatever it holds
// in the loop (connections, timers, buffer segments) is given back when the
// loop stops (on_stop) or as connections close.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "gateway_stats.hpp"
#include "health_checker.hpp"
#include "http_proxy.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"
#include "tcp_proxy.hpp"
#include "sluice_config.hpp"
#include "upstream_pool.hpp"
#if SLUICE_HAVE_TLS
#include "sluice/tls/context.hpp"
#endif

namespace sluice::tls {
class ticket_keys;
class saved_session;
}  // namespace sluice::tls

namespace sluice::gateway {

// One side drained below its low-water mark: the other side, held back
// while this one's output was full, may read again.
inline void resume_held_back(connection* other) noexcept {
  if (other != nullptr && other->reading_paused()) other->resume_reading();
}

class shard {
 public:
  // `tickets`: the process's session-ticket keys, shared by every loop's
  // TLS listeners (so a ticket resumes on any loop); null: each listener's
  // context on this loop keeps a key of its own (or there is no TLS).
  shard(loop_base& loop, const config& cfg, shard_stats& stats,
        const std::shared_ptr<tls::ticket_keys>& tickets = nullptr);
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // The handler for downstream connections of listener `l` on this loop.
  [[nodiscard]] std::unique_ptr<handler> make_front(const listener_config& l);

  [[nodiscard]] loop_base& loop() noexcept { return loop_; }
  // A session's other side: the connection behind `h` while `open` (the
  // session still holds it), else null.
  [[nodiscard]] connection* paired(bool open, connection_handle h) noexcept { return open ? loop_.get(h) : nullptr; }
  [[nodiscard]] const config& cfg() const noexcept { return cfg_; }
  [[nodiscard]] shard_stats& stats() noexcept { return stats_; }
  [[nodiscard]] upstream_pool& pool(std::size_t i) noexcept { return pools_[i]; }
  [[nodiscard]] std::vector<upstream_pool>& pools() noexcept { return pools_; }
  // An upstream connection to `member` of pool `pool`, begun at `started`,
  // is established: passive health, the member's connect count and the
  // connect latency histogram learn of it.
  void upstream_connected(std::size_t pool, unsigned member, time_point started) noexcept;
  // This loop's TLS client context for pool `pool`, or null when the pool
  // speaks plaintext (or its context could not be made: see tls_error()).
  [[nodiscard]] tls::context* client_tls(std::size_t pool) noexcept;
  // Where this loop keeps the TLS session of `member` of pool `pool`: the
  // last upstream connection to it saves its session there, the next one
  // offers it (a resumed handshake). Null when the pool speaks plaintext.
  [[nodiscard]] tls::saved_session* upstream_session(std::size_t pool, unsigned member) noexcept;
  // Why a TLS context of this loop could not be made ("" if all were).
  [[nodiscard]] const std::string& tls_error() const noexcept { return tls_error_; }

 private:
  loop_base& loop_;
  const config& cfg_;
  shard_stats& stats_;
  // One SSL_CTX set per loop (no OpenSSL lock shared between loops): per
  // listener with certificates, per pool with tls = true.
#if SLUICE_HAVE_TLS
  std::vector<std::optional<tls::context>> server_tls_;  // [listener]
  std::vector<std::optional<tls::context>> client_tls_;  // [pool]
  std::vector<std::vector<tls::saved_session>> upstream_sessions_;  // [pool][member], empty for plaintext pools
#endif
  std::string tls_error_;
  std::vector<upstream_pool> pools_;
  health_checker health_;
  tcp_proxy tcp_;
  http_proxy http_;
};

}  // namespace sluice::gateway
