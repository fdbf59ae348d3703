#pragma once
// TLS configuration of one loop: an OpenSSL SSL_CTX per certificate/key pair
// (the first is the default, the others are chosen by SNI), TLS 1.2 and 1.3,
// ALPN http/1.1, session tickets on, renegotiation refused. Made once per
// loop (no lock shared between loops on the data path) and read-only after.
//
//   auto ctx = tls::context::make_server({{"cert.pem", "key.pem"}});
//   if (!ctx) fail(ctx.err().message);   // "cert.pem: certificate expired"
//
// Owner core only once made; make and check_certificate may run anywhere.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/tls/ticket_keys.hpp"

// OpenSSL's types, named without its headers.
struct ssl_ctx_st;
struct ssl_st;

namespace sluice::tls {

// A certificate chain file and its private key file (PEM).
struct cert_pair {
  std::string cert_file;  // the certificate, then its chain (PEM)
  std::string key_file;   // the private key of the first certificate (PEM)
};

// What a context is made from.
struct context_options {
  // Server: at least one pair; the first is used when the client sends no
  // SNI name or one no certificate covers. Client: an optional client cert.
  std::vector<cert_pair> certs;
  // ALPN protocols offered (client) or accepted (server), in order.
  std::vector<std::string> alpn{"http/1.1"};
  // TLS 1.2 cipher list in OpenSSL's syntax (empty: OpenSSL's default).
  std::string cipher_list;
  // TLS 1.3 cipher suites in OpenSSL's syntax (empty: OpenSSL's default).
  std::string ciphersuites;
  // Client: a CA file to verify the server with (empty: no verification).
  std::string ca_file;
  // Server: the process's session-ticket keys (shared by every loop's
  // context, so a ticket resumes on any loop; rotate them on a timer). Null:
  // OpenSSL's own key, one per SSL_CTX (a ticket resumes on that loop only).
  std::shared_ptr<ticket_keys> tickets;
};

// Counters of one loop's TLS sessions (plain integers: owner core only).
struct stats {
  std::uint64_t handshakes = 0;          // handshakes completed
  std::uint64_t resumed = 0;             // of which resumed a session (ticket)
  std::uint64_t tls12 = 0;               // handshakes completed with TLS 1.2
  std::uint64_t tls13 = 0;               // handshakes completed with TLS 1.3
  std::uint64_t handshake_failures = 0;  // errors before the handshake completed
  std::uint64_t record_errors = 0;       // errors after it (bad records, alerts)
  std::uint64_t renegotiations_refused = 0;  // TLS 1.2 renegotiations the peer asked for
  std::uint64_t close_notify_received = 0;   // clean closes by the peer
  std::uint64_t close_notify_sent = 0;       // clean closes by us
  std::uint64_t truncated = 0;          // the peer closed TCP without close_notify
  std::uint64_t out_of_memory = 0;      // buffer memory ran out mid-record
  std::uint64_t handshake_timeouts = 0;  // closed by a timeout before the handshake completed

  // Adds other's counters to these (summing loops).
  stats& operator+=(const stats& other) noexcept;
};

// Appends the counters as metrics named prefix + "handshakes", prefix +
// "resumed", ... (the field names above), for --print-metrics or an admin
// endpoint. Control plane.
void append_metrics(const stats& s, const std::string& prefix, metric_list& out);

// Checks one pair as a server would load it: both files exist and are
// readable, hold a certificate and a key, the key matches the certificate and
// the certificate is valid now. The error names the file and what is wrong,
// in one line (for --check-config).
[[nodiscard]] result<void> check_certificate(const cert_pair& pair);

// One loop's SSL_CTX set (see the file comment). Movable, not copyable.
class context {
 public:
  // A server context from opts (certs must not be empty); the error is
  // check_certificate's or OpenSSL's, in one line.
  [[nodiscard]] static result<context> make_server(const context_options& opts);
  // A client context from opts.
  [[nodiscard]] static result<context> make_client(const context_options& opts);

  // Moves the SSL_CTXs (and the counters) from other.
  context(context&& other) noexcept;
  // Frees this context's SSL_CTXs and takes other's.
  context& operator=(context&& other) noexcept;
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  // Frees the SSL_CTXs (sessions made from it hold their own references).
  ~context();

  // Server (true) or client (false).
  [[nodiscard]] bool server() const noexcept { return server_; }
  // The default SSL_CTX (the first pair's).
  [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctxs_.empty() ? nullptr : ctxs_.front(); }
  // The counters of the sessions made from this context.
  [[nodiscard]] tls::stats& stats() noexcept { return *stats_; }
  // Read-only view of the counters.
  [[nodiscard]] const tls::stats& stats() const noexcept { return *stats_; }
  // The counters, shared: they outlive the context (read them after the loop
  // that owned it has ended, e.g. to print them at exit).
  [[nodiscard]] std::shared_ptr<const tls::stats> shared_stats() const noexcept { return stats_; }
  // The ticket keys given in the options (nullptr: OpenSSL's per-SSL_CTX key).
  [[nodiscard]] ticket_keys* tickets() const noexcept { return tickets_.get(); }

  // The ALPN protocols in wire format (each prefixed by its length).
  [[nodiscard]] const std::string& alpn_wire() const noexcept { return alpn_wire_; }
  // For the SNI callback: switches ssl to the pair whose certificate covers
  // `name`; false when none does (the default stays).
  bool select_by_name(ssl_st* ssl, const char* name) const noexcept;

 private:
  context() = default;
  bool server_ = true;
  std::vector<ssl_ctx_st*> ctxs_;
  std::string alpn_wire_;  // ALPN protocols in wire format (length-prefixed)
  std::shared_ptr<tls::stats> stats_ = std::make_shared<tls::stats>();
  std::shared_ptr<ticket_keys> tickets_;
};

}  // namespace sluice::tls
