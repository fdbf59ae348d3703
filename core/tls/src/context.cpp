#include "sluice/tls/context.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sluice/tls/session.hpp"

namespace sluice::tls {

namespace {

// OpenSSL's last error in words (and the queue cleared).
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
struct x509_free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

result<file_ptr> open_file(const std::string& path, const char* what) {
  if (path.empty()) return error{std::string("no ") + what + " file given"};
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return error::from_errno(errno, path + ": cannot read the " + what);
  return file_ptr(f);
}

// ALPN server side: the first of the client's protocols that we accept.
int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  auto* s = static_cast<session*>(SSL_get_app_data(ssl));
  if (s == nullptr || s->owner() == nullptr) return SSL_TLSEXT_ERR_NOACK;
  const std::string* wire = &s->owner()->alpn_wire();
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                            static_cast<unsigned>(wire->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// SNI: the session (app data) knows its context, which picks the pair.
int select_name(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto* s = static_cast<session*>(SSL_get_app_data(ssl));
  if (name != nullptr && s != nullptr && s->owner() != nullptr) s->owner()->select_by_name(ssl, name);
  return SSL_TLSEXT_ERR_OK;  // an unknown name gets the default certificate
}

// Session tickets sealed and opened with the process's keys (ticket_keys):
// 1 sealed / opened, 2 opened with the previous key (OpenSSL issues a new
// ticket), 0 unknown or expired key (a full handshake), -1 an error.
int ticket_key_cb(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
                  int enc) {
  auto* s = static_cast<session*>(SSL_get_app_data(ssl));
  ticket_keys* keys = s != nullptr && s->owner() != nullptr ? s->owner()->tickets() : nullptr;
  // Fetched once per process (an implicit fetch per ticket would take
  // OpenSSL's provider locks).
  static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (keys == nullptr || aes == nullptr) return -1;
  ticket_keys::key k;
  int ret = 1;
  if (enc == 1) {
    k = keys->current();
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
    std::memcpy(name, k.name.data(), k.name.size());
  } else {
    bool is_current = false;
    if (!keys->find(name, k, is_current)) return 0;
    ret = is_current ? 1 : 2;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac.data(), k.hmac.size()),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  const bool ok = (enc == 1 ? EVP_EncryptInit_ex2(cctx, aes, k.aes.data(), iv, nullptr)
                            : EVP_DecryptInit_ex2(cctx, aes, k.aes.data(), iv, nullptr)) == 1 &&
                  EVP_MAC_CTX_set_params(hctx, params) == 1;
  OPENSSL_cleanse(&k, sizeof k);
  return ok ? ret : -1;
}

}  // namespace

stats& stats::operator+=(const stats& o) noexcept {
  handshakes += o.handshakes;
  resumed += o.resumed;
  tls12 += o.tls12;
  tls13 += o.tls13;
  handshake_failures += o.handshake_failures;
  record_errors += o.record_errors;
  renegotiations_refused += o.renegotiations_refused;
  close_notify_received += o.close_notify_received;
  close_notify_sent += o.close_notify_sent;
  truncated += o.truncated;
  out_of_memory += o.out_of_memory;
  handshake_timeouts += o.handshake_timeouts;
  return *this;
}

void append_metrics(const stats& s, const std::string& prefix, metric_list& out) {
  const std::pair<const char*, std::uint64_t> fields[] = {
      {"handshakes", s.handshakes},
      {"resumed", s.resumed},
      {"tls12", s.tls12},
      {"tls13", s.tls13},
      {"handshake_failures", s.handshake_failures},
      {"record_errors", s.record_errors},
      {"renegotiations_refused", s.renegotiations_refused},
      {"close_notify_received", s.close_notify_received},
      {"close_notify_sent", s.close_notify_sent},
      {"truncated", s.truncated},
      {"out_of_memory", s.out_of_memory},
      {"handshake_timeouts", s.handshake_timeouts},
  };
  for (const auto& [name, value] : fields) out.push_back({prefix + name, value});
}

result<void> check_certificate(const cert_pair& pair) {
  auto cf = open_file(pair.cert_file, "certificate");
  if (!cf) return cf.err();
  std::unique_ptr<X509, x509_free> cert(PEM_read_X509(cf->get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) return error{pair.cert_file + ": no PEM certificate in the file"};
  auto kf = open_file(pair.key_file, "key");
  if (!kf) return kf.err();
  std::unique_ptr<EVP_PKEY, pkey_free> key(PEM_read_PrivateKey(kf->get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) return error{pair.key_file + ": no PEM private key in the file (or it is encrypted)"};
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return error{pair.key_file + ": the key does not match the certificate " + pair.cert_file};
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return error{pair.cert_file + ": the certificate has expired"};
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0) {
    return error{pair.cert_file + ": the certificate is not valid yet"};
  }
  return {};
}

namespace {

result<SSL_CTX*> new_ctx(bool server, const context_options& opts) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return error{"SSL_CTX_new: " + openssl_error()};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // Renegotiation is refused (a CPU sink and a source of old bugs); records
  // may be written partially (our BIO never blocks, but be safe), and a
  // buffer OpenSSL hands us may move between calls.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!opts.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, opts.cipher_list.c_str()) != 1) {
    SSL_CTX_free(ctx);
    return error{"cipher list '" + opts.cipher_list + "': " + openssl_error()};
  }
  if (!opts.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, opts.ciphersuites.c_str()) != 1) {
    SSL_CTX_free(ctx);
    return error{"TLS 1.3 cipher suites '" + opts.ciphersuites + "': " + openssl_error()};
  }
  return ctx;
}

result<void> load_pair(SSL_CTX* ctx, const cert_pair& pair) {
  if (auto ok = check_certificate(pair); !ok) return ok;
  if (SSL_CTX_use_certificate_chain_file(ctx, pair.cert_file.c_str()) != 1) {
    return error{pair.cert_file + ": " + openssl_error()};
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, pair.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return error{pair.key_file + ": " + openssl_error()};
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return error{pair.key_file + ": the key does not match the certificate " + pair.cert_file};
  }
  return {};
}

std::string make_alpn_wire(const std::vector<std::string>& protos) {
  std::string w;
  for (const auto& p : protos) {
    if (p.empty() || p.size() > 255) continue;
    w.push_back(static_cast<char>(p.size()));
    w += p;
  }
  return w;
}

}  // namespace

result<context> context::make_server(const context_options& opts) {
  if (opts.certs.empty()) return error{"a TLS server needs a certificate and a key"};
  context c;
  c.server_ = true;
  c.alpn_wire_ = make_alpn_wire(opts.alpn);
  c.tickets_ = opts.tickets;
  static const unsigned char sid_ctx[] = "sluice";
  for (const auto& pair : opts.certs) {
    auto made = new_ctx(true, opts);
    if (!made) return made.err();
    c.ctxs_.push_back(*made);
    if (auto ok = load_pair(*made, pair); !ok) return ok.err();
    SSL_CTX_set_session_id_context(*made, sid_ctx, sizeof sid_ctx - 1);
    // Resumption is by ticket only: OpenSSL's server-side session cache
    // would keep every full handshake's session (a flood fills it) behind a
    // lock, for clients that resume by session id alone.
    SSL_CTX_set_session_cache_mode(*made, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_tlsext_servername_callback(*made, select_name);
    // The callbacks find the context through the session (the SSL's app
    // data), so a context may move after make.
    if (!c.alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(*made, select_alpn, nullptr);
    if (c.tickets_) SSL_CTX_set_tlsext_ticket_key_evp_cb(*made, ticket_key_cb);
  }
  return c;
}

result<context> context::make_client(const context_options& opts) {
  context c;
  c.server_ = false;
  c.alpn_wire_ = make_alpn_wire(opts.alpn);
  auto made = new_ctx(false, opts);
  if (!made) return made.err();
  c.ctxs_.push_back(*made);
  if (!opts.certs.empty()) {
    if (auto ok = load_pair(*made, opts.certs.front()); !ok) return ok.err();
  }
  if (!opts.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(*made, opts.ca_file.c_str(), nullptr) != 1) {
      return error{opts.ca_file + ": " + openssl_error()};
    }
    SSL_CTX_set_verify(*made, SSL_VERIFY_PEER, nullptr);
  }
  // Sessions are kept by the application (session::save, a saved_session
  // per server), not in OpenSSL's client cache: removing a TLS 1.3 session
  // from that cache once it resumed marks it unresumable, and the same saved
  // session offered by several connections at once would then resume once.
  SSL_CTX_set_session_cache_mode(*made, SSL_SESS_CACHE_OFF);
  return c;
}

context::context(context&& other) noexcept
    : server_(other.server_), ctxs_(std::move(other.ctxs_)), alpn_wire_(std::move(other.alpn_wire_)),
      stats_(std::move(other.stats_)), tickets_(std::move(other.tickets_)) {
  other.ctxs_.clear();
}

context& context::operator=(context&& other) noexcept {
  if (this != &other) {
    for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
    server_ = other.server_;
    ctxs_ = std::move(other.ctxs_);
    other.ctxs_.clear();
    alpn_wire_ = std::move(other.alpn_wire_);
    stats_ = std::move(other.stats_);
    tickets_ = std::move(other.tickets_);
  }
  return *this;
}

context::~context() {
  for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
}

bool context::select_by_name(ssl_st* ssl, const char* name) const noexcept {
  for (std::size_t i = 1; i < ctxs_.size(); ++i) {
    X509* cert = SSL_CTX_get0_certificate(ctxs_[i]);
    if (cert != nullptr && X509_check_host(cert, name, std::strlen(name), 0, nullptr) == 1) {
      SSL_set_SSL_CTX(ssl, ctxs_[i]);
      return true;
    }
  }
  return false;
}

}  // namespace sluice::tls
