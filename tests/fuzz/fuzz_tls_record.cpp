// libFuzzer target: tls::session's record path, fed the peer's bytes.
// The first input byte picks what the bytes are:
//   0  the client's records to a fresh server session (before any handshake)
//   1  the server's records to a fresh client session (its hello sent)
//   2  after a real handshake: the client seals plaintext from the input into
//      records, and the input may flip one byte of them before the server
//      reads them
// The bytes arrive in pieces the input chooses (every split point of a
// record). Checks: no crash, no leak; a failure is protocol_error or
// resource_limit and counted; junk never opens a session nor yields
// plaintext; the same stream whole and in pieces ends in the same state;
// records not tampered with give back exactly the plaintext sealed, tampered
// ones never give back bytes that were not sealed.
//
// The first handshake of each version is full; the rest resume it (no
// signature to make or check: many more inputs per second).
//
// Certificates: an ECDSA P-256 key and a self-signed certificate made once
// with the OpenSSL API into a temporary folder (nothing is committed).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "fuzz_input.hpp"
#include "sluice/tls/context.hpp"
#include "sluice/tls/session.hpp"

namespace {

using namespace sluice;

struct contexts {
  std::optional<tls::context> server;
  std::optional<tls::context> client;
  std::optional<tls::context> client12;  // TLS 1.2 at most
  // A session of each client to resume (cheap handshakes: no signature).
  tls::saved_session resume[2];
};

// Writes a fresh key and certificate; false on any OpenSSL error.
bool write_pair(const std::string& dir) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return false;
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("fuzz.test"), -1, -1, 0);
  X509_set_issuer_name(x, n);
  bool ok = X509_sign(x, key, EVP_sha256()) > 0;
  std::FILE* cf = std::fopen((dir + "/c.pem").c_str(), "w");
  std::FILE* kf = std::fopen((dir + "/k.pem").c_str(), "w");
  ok = ok && cf != nullptr && kf != nullptr && PEM_write_X509(cf, x) == 1 &&
       PEM_write_PrivateKey(kf, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (cf != nullptr) std::fclose(cf);
  if (kf != nullptr) std::fclose(kf);
  X509_free(x);
  EVP_PKEY_free(key);
  return ok;
}

contexts& shared() {
  static contexts c = [] {
    contexts made;
    char tmpl[] = "/tmp/sluice-fuzz-tls-XXXXXX";
    SLUICE_FUZZ_CHECK(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    SLUICE_FUZZ_CHECK(write_pair(dir));
    tls::context_options so;
    so.certs = {{dir + "/c.pem", dir + "/k.pem"}};
    auto s = tls::context::make_server(so);
    SLUICE_FUZZ_CHECK(s);
    made.server.emplace(std::move(*s));
    auto cl = tls::context::make_client({});
    SLUICE_FUZZ_CHECK(cl);
    made.client.emplace(std::move(*cl));
    auto c12 = tls::context::make_client({});
    SLUICE_FUZZ_CHECK(c12);
    made.client12.emplace(std::move(*c12));
    SSL_CTX_set_max_proto_version(made.client12->native(), TLS1_2_VERSION);
    // The contexts hold the certificate now: the files may go.
    std::remove((dir + "/c.pem").c_str());
    std::remove((dir + "/k.pem").c_str());
    rmdir(dir.c_str());
    return made;
  }();
  return c;
}

void check_failure(const tls::session& s) {
  if (s.current() == tls::state::failed) {
    SLUICE_FUZZ_CHECK(s.error() == close_reason::protocol_error || s.error() == close_reason::resource_limit);
  }
}

std::string drain(buffer_chain& c) {
  std::string s(c.size(), '\0');
  c.copy_out(s.data(), s.size());
  c.clear();
  return s;
}

// Junk to a fresh session: fed whole, then in pieces; the same end.
void junk(tls::context& ctx, std::string_view stream, std::uint32_t seed) {
  segment_pool pool(fuzz::pool_options());
  tls::state ends[2];
  for (int pass = 0; pass < 2; ++pass) {
    buffer_chain in(&pool), plain(&pool), out(&pool);
    tls::session s;
    const std::uint64_t failures_before = ctx.stats().handshake_failures;
    SLUICE_FUZZ_CHECK(s.start(ctx, &out));
    out.clear();
    if (pass == 0) {
      fuzz::append(pool, in, stream);
      s.receive(in, plain, out);
    } else {
      for (std::string_view piece : fuzz::cut(stream, seed)) {
        fuzz::append(pool, in, piece);
        if (s.receive(in, plain, out) == tls::state::failed) break;
        out.clear();
      }
    }
    check_failure(s);
    // Junk cannot finish a handshake: that takes the peer's keys.
    SLUICE_FUZZ_CHECK(!s.is_open() && plain.empty());
    if (s.current() == tls::state::failed) SLUICE_FUZZ_CHECK(ctx.stats().handshake_failures == failures_before + 1);
    ends[pass] = s.current();
    s.transport_closed();
  }
  SLUICE_FUZZ_CHECK(ends[0] == ends[1]);
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
}

// A real pair, then records sealed from the input's plaintext, perhaps with
// one byte flipped, fed to the server in pieces.
void sealed(contexts& ctx, fuzz::input& in) {
  const bool tls12 = in.byte() % 2 == 0;
  const std::size_t flip_at = in.number(2);
  const std::uint8_t flip = in.byte();
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  const std::string_view text = in.rest();
  segment_pool pool(fuzz::pool_options());
  {
    buffer_chain c2s(&pool), s2c(&pool), cplain(&pool), splain(&pool), app(&pool);
    tls::session srv, cli;
    SLUICE_FUZZ_CHECK(srv.start(*ctx.server));
    tls::saved_session& saved = ctx.resume[tls12 ? 1 : 0];
    SLUICE_FUZZ_CHECK(cli.start(tls12 ? *ctx.client12 : *ctx.client, &c2s, {}, &saved));
    for (int i = 0; i < 8 && (!c2s.empty() || !s2c.empty()); ++i) {
      srv.receive(c2s, splain, s2c);
      cli.receive(s2c, cplain, c2s);
    }
    SLUICE_FUZZ_CHECK(srv.is_open() && cli.is_open());
    SLUICE_FUZZ_CHECK(srv.version() == (tls12 ? "TLSv1.2" : "TLSv1.3"));
    if (saved.empty() || !cli.resumed()) {
      SLUICE_FUZZ_CHECK(app.write("x"));  // TLS 1.3 tickets come with the server's first records
      SLUICE_FUZZ_CHECK(srv.send(app, s2c));
      cli.receive(s2c, cplain, c2s);
      cplain.clear();
      saved = cli.save();
      SLUICE_FUZZ_CHECK(!saved.empty());
    }
    SLUICE_FUZZ_CHECK(srv.resumed() == cli.resumed());
    SLUICE_FUZZ_CHECK(app.write(text));
    SLUICE_FUZZ_CHECK(cli.send(app, c2s));
    std::string records = drain(c2s);
    const bool tampered = flip != 0 && !records.empty();
    if (tampered) records[flip_at % records.size()] = static_cast<char>(records[flip_at % records.size()] ^ flip);
    buffer_chain wire(&pool);
    for (std::string_view piece : fuzz::cut(records, seed)) {
      fuzz::append(pool, wire, piece);
      if (srv.receive(wire, splain, s2c) == tls::state::failed) break;
      s2c.clear();
    }
    check_failure(srv);
    const std::string got = drain(splain);
    if (!tampered) {
      SLUICE_FUZZ_CHECK(srv.is_open());
      SLUICE_FUZZ_CHECK(got == text);
    } else {
      // Only bytes that were sealed, in order, from the start.
      SLUICE_FUZZ_CHECK(got.size() <= text.size() && text.substr(0, got.size()) == got);
    }
  }
  pool.reclaim();
  SLUICE_FUZZ_CHECK(pool.segments_in_use() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  contexts& ctx = shared();
  fuzz::input in(data, size);
  const std::uint8_t mode = in.byte() % 3;
  if (mode == 2) {
    sealed(ctx, in);
    return 0;
  }
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  junk(mode == 0 ? *ctx.server : *ctx.client, in.rest(), seed);
  return 0;
}
