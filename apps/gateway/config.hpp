#pragma once
// sluice-gateway's configuration: listeners, upstream pools, routes, limits
// and timeouts, from a TOML file (toml++) or from the command line for the
// common single-pool case. Every error names where it comes from: the file,
// the line and the key ("gw.toml:12: pool[0].upstreams[1]: ..."), or the flag.
//
// Control plane only: loaded once at start-up, then read-only (each loop
// builds its own runtime state from it; nothing here is shared mutably).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/cli.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/core/http/limits.hpp"
#include "sluice/base/result.hpp"
#include "sluice/base/time.hpp"

namespace sluice::gateway {

enum class proxy_mode : std::uint8_t { tcp, http };
// How a pool picks the upstream for a new connection or request.
enum class lb_policy : std::uint8_t { round_robin, least_conn, source_hash, consistent_hash };
// What consistent-hash hashes: the client's address, or (http) the request's Host or path.
enum class hash_key : std::uint8_t { source, host, path };
enum class check_kind : std::uint8_t { none, tcp, http };

[[nodiscard]] std::string_view to_string(proxy_mode m) noexcept;
[[nodiscard]] std::string_view to_string(lb_policy p) noexcept;
[[nodiscard]] std::string_view to_string(check_kind k) noexcept;
[[nodiscard]] result<proxy_mode> parse_mode(std::string_view s);
[[nodiscard]] result<lb_policy> parse_policy(std::string_view s);
[[nodiscard]] result<hash_key> parse_hash_key(std::string_view s);
[[nodiscard]] result<check_kind> parse_check(std::string_view s);

// Most upstreams one pool may hold (a loop tracks the ones a connection
// already tried in a 64-bit mask).
inline constexpr std::size_t max_upstreams_per_pool = 64;

// The gateway's own ranges; the flags and the file check them with the same
// check_range() as every other size, count and duration (sluice/base/cli.hpp,
// whose `ranges` hold the shared ones: HTTP limits, timeouts).
namespace ranges {
using namespace sluice::ranges;
// More retries than other upstreams in a pool cannot find another one.
inline constexpr number_range retries{0, max_upstreams_per_pool - 1};
inline constexpr number_range max_fails{1, 1000};
inline constexpr number_range rise_fall{1, 1000};
inline constexpr number_range upstream_keepalive{0, 65536};
inline constexpr number_range high_water{4 * kib, gib, number_unit::bytes};
inline constexpr number_range low_water{0, gib, number_unit::bytes};
// The admin endpoint's requests: a GET of /metrics or /healthz needs little.
inline constexpr std::size_t admin_max_request_line = 1024;
inline constexpr std::size_t admin_max_header_bytes = 8 * 1024;
inline constexpr std::size_t admin_max_headers = 32;
}  // namespace ranges

struct health_check_config {
  check_kind kind = check_kind::tcp;
  duration interval = std::chrono::seconds(2);
  duration timeout = std::chrono::seconds(1);
  std::string path = "/";        // http checks: GET this path; 2xx or 3xx passes
  unsigned rise = 2;             // consecutive passes that bring an upstream back
  unsigned fall = 2;             // consecutive failures that take it out
};

// A certificate chain file and its private key file (PEM), as
// tls::cert_pair (kept apart so that a build without OpenSSL reads the same
// configuration and refuses it with a clear error).
struct tls_cert_files {
  std::string cert;
  std::string key;
};

// OpenSSL's cipher choices for one side (tls::context_options'
// cipher_list and ciphersuites); empty: OpenSSL's defaults.
struct tls_cipher_config {
  std::string ciphers;       // TLS 1.2 cipher list ("ECDHE-ECDSA-AES128-GCM-SHA256:...")
  std::string ciphersuites;  // TLS 1.3 suites ("TLS_AES_128_GCM_SHA256:...")
  [[nodiscard]] bool empty() const noexcept { return ciphers.empty() && ciphersuites.empty(); }
};

struct pool_config {
  std::string name;
  // Host names are allowed: they are resolved once, when the configuration
  // is read (at start-up, and by --check-config, which prints the address),
  // to the first address the resolver gives; never again while running.
  std::vector<endpoint> upstreams;
  std::vector<std::string> upstream_names;  // as written, for metrics and messages
  lb_policy policy = lb_policy::round_robin;
  hash_key key = hash_key::source;
  // A failed connect is retried on another upstream this many times.
  unsigned retries = 2;
  // Passive ejection: this many consecutive failures (connect refused or
  // timed out, reset or timeout before a response) take an upstream out for
  // eject_time; then it is tried again.
  unsigned max_fails = 3;
  duration eject_time = std::chrono::seconds(10);
  // http: idle keep-alive connections kept per upstream, per loop.
  std::size_t keepalive = 256;
  health_check_config check;
  // TLS to the upstreams: on/off; verify the certificate with the CA file
  // `ca` (and that it is for the upstream's TLS name); the SNI name sent.
  bool tls = false;
  bool verify = true;
  std::string ca;
  std::string sni;
  tls_cipher_config ciphers;  // offered to the upstreams
  // Per upstream, set by validate(): the name sent as SNI and checked in its
  // certificate: `sni` if given, else the upstream's host name as written
  // (none for an IP address: then the chain alone is verified).
  std::vector<std::string> tls_names;
  std::string where;                // "FILE:LINE: pool[0]" or the flag, for messages
};

struct route_config {
  std::string sni;                  // empty: any; else the TLS server name the client sent (case-insensitive)
  std::string host;                 // empty: any host; compared without the port, case-insensitively
  std::string path_prefix = "/";
  std::string pool;
  std::size_t pool_index = 0;       // resolved by validate()
  std::string where;
};

struct listener_config {
  endpoint address;
  std::string address_text;
  proxy_mode mode = proxy_mode::http;
  std::string pool;                 // tcp: the pool; http: when no route matches (may be empty)
  std::size_t pool_index = SIZE_MAX;  // resolved by validate(); SIZE_MAX: none (http: 404)
  std::vector<route_config> routes; // first match wins (tcp: routes by sni only)
  // TLS termination: certificate/key pairs, the first the default, the
  // others chosen by the SNI name (none: plaintext).
  std::vector<tls_cert_files> certs;
  std::vector<std::string> cert_where;  // where each pair was given, for messages
  tls_cipher_config ciphers;            // accepted from clients
  std::string where;
  [[nodiscard]] bool tls() const noexcept { return !certs.empty(); }
};

struct timeouts_config {
  duration connect = std::chrono::seconds(5);    // upstream connect
  duration idle = std::chrono::seconds(60);      // both sides: nothing moved either way
  // http: a request head must be complete within (the admin endpoint's
  // requests too)
  duration header = std::chrono::seconds(10);
  duration response = std::chrono::seconds(30);  // http: the upstream must start its response within
  // TLS: a handshake (client or upstream side) must be done within
  duration handshake = std::chrono::seconds(10);
  // TLS: a new session-ticket key (one per process, shared by every loop's
  // listeners) this often; the previous one still resumes for one more period
  duration ticket_rotate = ranges::default_ticket_rotate;
};

struct config {
  std::vector<listener_config> listeners;
  std::vector<pool_config> pools;
  timeouts_config timeouts;
  http::limits http{.max_request_line = 8 * 1024,
                    .max_header_bytes = 32 * 1024,
                    .max_headers = 100,
                    .max_body = std::uint64_t{1} << 30};  // streamed, never buffered whole
  // Per connection: stop reading a side when its peer's output holds this
  // much, read again below low_water.
  std::size_t high_water = 256 * 1024;
  std::size_t low_water = 64 * 1024;
  // http: forward request fields whose names hold '_' (dropped by default:
  // "X_Forwarded_For" must not pass beside our X-Forwarded-For).
  bool allow_underscores = false;
  std::optional<endpoint> admin;
  std::string source = "command line";  // where it came from, for messages
};

// Parses and checks a TOML file. Errors: "FILE:LINE: KEY: what is wrong".
[[nodiscard]] result<config> load_file(const std::string& path);
// Parses TOML text (tests), naming it `name` in errors.
[[nodiscard]] result<config> load_text(std::string_view text, const std::string& name);
// Resolves pool names and checks what spans several keys: pools and routes,
// upstreams (no port 0, none twice in a pool), listener and admin addresses
// (no two on one address), limits against each other. Ranges of single
// values are checked where they are read (flags, file). Errors name the key.
[[nodiscard]] result<void> validate(config& c);
// Checks every TLS file the configuration names: each listener's
// certificate/key pairs (tls::check_certificate: missing, unreadable, no PEM,
// key does not match, expired, not yet valid) and each pool's CA file. One
// line naming the key and the file. Without OpenSSL: an error if any TLS
// option is used.
[[nodiscard]] result<void> check_tls_files(const config& c);
// The configuration in words, one line per listener and pool (for the log and --check-config).
[[nodiscard]] std::string describe(const config& c);

}  // namespace sluice::gateway
