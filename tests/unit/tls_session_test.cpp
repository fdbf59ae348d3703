// Unit tests of tls::session pairs in memory: a client and a server session
// talking over two buffer chains, no socket. Certificates (ECDSA P-256 and
// RSA 2048) are made at test time with the openssl command into a temporary
// directory; nothing is committed.

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <openssl/err.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#include <filesystem>
#include <string>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/segment_pool.hpp"
#include "sluice/tls/context.hpp"
#include "sluice/tls/session.hpp"
#include "tls_test_certs.hpp"

namespace {

using namespace sluice;
namespace fs = std::filesystem;

fs::path dir;

void make_pair(const std::string& name, const std::string& keyopts, const std::string& cn) {
  test::make_cert_pair(dir, name, keyopts, cn);
}

// A certificate that expired yesterday, signed with ec.key (the openssl
// command of OpenSSL 3.0 cannot set past dates).
void make_expired() {
  std::FILE* kf = std::fopen((dir / "ec.key").c_str(), "r");
  ASSERT_NE(kf, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
  std::fclose(kf);
  ASSERT_NE(key, nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), -86400);
  X509_set_pubkey(x, key);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("old"), -1, -1, 0);
  X509_set_issuer_name(x, n);
  ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
  std::FILE* cf = std::fopen((dir / "expired.crt").c_str(), "w");
  PEM_write_X509(cf, x);
  std::fclose(cf);
  X509_free(x);
  EVP_PKEY_free(key);
}

class TlsEnv : public ::testing::Environment {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    make_pair("ec", "ec -pkeyopt ec_paramgen_curve:P-256", "ec.test");
    make_pair("rsa", "rsa:2048", "rsa.test");
    make_expired();
  }
  void TearDown() override { fs::remove_all(dir); }
};
const auto* env = ::testing::AddGlobalTestEnvironment(new TlsEnv);

tls::cert_pair pair_of(const std::string& name) { return {(dir / (name + ".crt")).string(), (dir / (name + ".key")).string()}; }

segment_pool::options small_segments() {
  segment_pool::options o;
  o.segment_size = 2048;  // records span segments
  return o;
}

// A client and a server session over two chains.
struct link {
  explicit link(tls::context& server_ctx, tls::context& client_ctx, std::string_view sni = {}, bool hello = true,
                const tls::saved_session* resume = nullptr)
      : sctx(server_ctx), cctx(client_ctx) {
    EXPECT_TRUE(srv.start(sctx));
    EXPECT_TRUE(cli.start(cctx, hello ? &c2s : nullptr, sni, resume));
  }
  // Moves records both ways until neither side has anything to say.
  void pump() {
    for (int i = 0; i < 20 && (!c2s.empty() || !s2c.empty()); ++i) {
      srv.receive(c2s, splain, s2c);
      cli.receive(s2c, cplain, c2s);
    }
  }
  static std::string drain(buffer_chain& c) {
    std::string s(c.size(), '\0');
    c.copy_out(s.data(), s.size());
    c.skip(s.size());
    c.release();
    return s;
  }
  tls::context& sctx;
  tls::context& cctx;
  segment_pool pool{small_segments()};
  buffer_chain c2s{&pool}, s2c{&pool}, cplain{&pool}, splain{&pool}, app{&pool};
  tls::session srv, cli;
};

struct contexts {
  explicit contexts(const std::string& name, int max_version = 0,
                    std::shared_ptr<tls::ticket_keys> tickets = nullptr) {
    tls::context_options so;
    so.tickets = std::move(tickets);
    so.certs = {pair_of(name)};
    if (name == "ec") so.certs.push_back(pair_of("rsa"));
    auto s = tls::context::make_server(so);
    EXPECT_TRUE(s) << (s ? "" : s.err().message);
    tls::context_options co;
    co.ca_file = (dir / (name + ".crt")).string();
    auto c = tls::context::make_client(co);
    EXPECT_TRUE(c) << (c ? "" : c.err().message);
    server.emplace(std::move(*s));
    client.emplace(std::move(*c));
    if (max_version != 0) SSL_CTX_set_max_proto_version(client->native(), max_version);
  }
  std::optional<tls::context> server, client;
};

class TlsPair : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(TlsPair, HandshakeAndDataAtEverySplitPoint) {
  const auto& [name, version] = GetParam();
  contexts ctx(name, version);
  link l(*ctx.server, *ctx.client, name + ".test");
  l.pump();
  ASSERT_TRUE(l.srv.is_open());
  ASSERT_TRUE(l.cli.is_open());
  EXPECT_EQ(l.srv.version(), version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
  EXPECT_EQ(l.srv.alpn(), "http/1.1");
  EXPECT_EQ(l.cli.alpn(), "http/1.1");
  EXPECT_EQ(ctx.server->stats().handshakes, 1u);
  EXPECT_EQ(l.srv.server_name(), name + ".test");

  std::string msg;
  for (int i = 0; i < 3000; ++i) msg.push_back(static_cast<char>('a' + i % 26));
  for (int dirn = 0; dirn < 2; ++dirn) {
    tls::session& from = dirn == 0 ? l.cli : l.srv;
    tls::session& to = dirn == 0 ? l.srv : l.cli;
    buffer_chain& wire = dirn == 0 ? l.c2s : l.s2c;
    buffer_chain& back = dirn == 0 ? l.s2c : l.c2s;
    buffer_chain& plain = dirn == 0 ? l.splain : l.cplain;
    ASSERT_TRUE(l.app.write(msg));
    ASSERT_TRUE(from.send(l.app, wire));
    ASSERT_TRUE(l.app.empty());
    const std::size_t record_bytes = wire.size();
    ASSERT_GT(record_bytes, msg.size());
    EXPECT_EQ(to.receive(wire, plain, back), tls::state::open);
    ASSERT_EQ(link::drain(plain), msg);
    // Each cut gets fresh records (the same plaintext seals to the same
    // length), fed in two parts.
    for (std::size_t cut = 0; cut <= record_bytes; ++cut) {
      ASSERT_TRUE(l.app.write(msg));
      ASSERT_TRUE(from.send(l.app, wire));
      const std::string records = link::drain(wire);
      ASSERT_EQ(records.size(), record_bytes);
      buffer_chain in(&l.pool);
      ASSERT_TRUE(in.write(std::string_view(records).substr(0, cut)));
      to.receive(in, plain, back);
      ASSERT_TRUE(in.write(std::string_view(records).substr(cut)));
      EXPECT_EQ(to.receive(in, plain, back), tls::state::open);
      EXPECT_TRUE(in.empty());
      ASSERT_EQ(link::drain(plain), msg) << "direction " << dirn << " cut " << cut;
    }
    link::drain(back);
  }
}

INSTANTIATE_TEST_SUITE_P(Keys, TlsPair,
                         ::testing::Combine(::testing::Values(std::string("ec"), std::string("rsa")),
                                            ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION)));

TEST(Tls, CloseNotifyBothWays) {
  contexts ctx("ec");
  link l(*ctx.server, *ctx.client);
  l.pump();
  ASSERT_TRUE(l.cli.is_open());
  l.cli.close(l.c2s);
  EXPECT_EQ(l.cli.current(), tls::state::closed);
  EXPECT_EQ(l.srv.receive(l.c2s, l.splain, l.s2c), tls::state::peer_closed);
  EXPECT_EQ(ctx.server->stats().close_notify_received, 1u);
  l.srv.close(l.s2c);
  EXPECT_EQ(ctx.server->stats().close_notify_sent, 1u);
  l.srv.transport_closed();
  EXPECT_EQ(ctx.server->stats().truncated, 0u);
  l.cli.receive(l.s2c, l.cplain, l.c2s);
  EXPECT_EQ(ctx.client->stats().close_notify_received, 1u);
}

TEST(Tls, GarbageRecordIsACountedProtocolError) {
  contexts ctx("ec");
  link l(*ctx.server, *ctx.client);
  l.pump();
  ASSERT_TRUE(l.srv.is_open());
  link::drain(l.s2c);
  ASSERT_TRUE(l.c2s.write(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x')));
  EXPECT_EQ(l.srv.receive(l.c2s, l.splain, l.s2c), tls::state::failed);
  EXPECT_EQ(l.srv.error(), close_reason::protocol_error);
  EXPECT_EQ(ctx.server->stats().record_errors, 1u);
  EXPECT_FALSE(l.s2c.empty());  // the alert
  EXPECT_TRUE(l.splain.empty());
}

TEST(Tls, PlaintextHttpIsAFailedHandshake) {
  contexts ctx("ec");
  segment_pool pool(small_segments());
  buffer_chain in(&pool), out(&pool), plain(&pool);
  tls::session srv;
  ASSERT_TRUE(srv.start(*ctx.server));
  ASSERT_TRUE(in.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(srv.receive(in, plain, out), tls::state::failed);
  EXPECT_EQ(srv.error(), close_reason::protocol_error);
  EXPECT_EQ(ctx.server->stats().handshake_failures, 1u);
}

TEST(Tls, TruncatedHandshakeWaitsThenCountsTruncation) {
  contexts ctx("ec");
  link l(*ctx.server, *ctx.client);
  const std::string hello = link::drain(l.c2s);
  ASSERT_TRUE(l.c2s.write(std::string_view(hello).substr(0, hello.size() / 2)));
  EXPECT_EQ(l.srv.receive(l.c2s, l.splain, l.s2c), tls::state::handshaking);
  EXPECT_TRUE(l.s2c.empty());
  l.srv.transport_closed();
  EXPECT_EQ(ctx.server->stats().truncated, 1u);
  EXPECT_EQ(ctx.server->stats().handshakes, 0u);
}

TEST(Tls, SniSelectsTheCertificate) {
  contexts ctx("ec");
  tls::context_options co;
  co.ca_file = (dir / "rsa.crt").string();
  auto client = tls::context::make_client(co);
  ASSERT_TRUE(client);
  link l(*ctx.server, *client, "rsa.test");  // verified against the RSA certificate only
  l.pump();
  ASSERT_TRUE(l.cli.is_open());
  EXPECT_EQ(l.srv.server_name(), "rsa.test");
  X509* peer = SSL_get0_peer_certificate(l.cli.native());
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(X509_check_host(peer, "rsa.test", 0, 0, nullptr), 1);
}

// One full handshake with data both ways (so TLS 1.3 tickets reach the
// client), then the client's saved session.
tls::saved_session first_connection(tls::context& server, tls::context& client, bool& resumed) {
  link l(server, client, "ec.test");
  l.pump();
  EXPECT_TRUE(l.cli.is_open());
  EXPECT_TRUE(l.app.write("ping"));
  EXPECT_TRUE(l.srv.send(l.app, l.s2c));
  l.pump();
  EXPECT_EQ(link::drain(l.cplain), "ping");
  resumed = l.cli.resumed();
  return l.cli.save();
}

// A second connection offering `saved`: whether it resumed, both sides.
bool second_connection(tls::context& server, tls::context& client, const tls::saved_session& saved) {
  link l(server, client, "ec.test", true, &saved);
  l.pump();
  EXPECT_TRUE(l.cli.is_open());
  EXPECT_TRUE(l.srv.is_open());
  EXPECT_EQ(l.cli.resumed(), l.srv.resumed());
  return l.cli.resumed() && SSL_session_reused(l.cli.native()) == 1;
}

class TlsResume : public ::testing::TestWithParam<int> {};

TEST_P(TlsResume, ClientResumesWithASavedSession) {
  contexts ctx("ec", GetParam());
  bool resumed = true;
  tls::saved_session saved = first_connection(*ctx.server, *ctx.client, resumed);
  EXPECT_FALSE(resumed);
  ASSERT_FALSE(saved.empty());
  EXPECT_TRUE(second_connection(*ctx.server, *ctx.client, saved));
  EXPECT_EQ(ctx.server->stats().handshakes, 2u);
  EXPECT_EQ(ctx.server->stats().resumed, 1u);
  EXPECT_EQ(ctx.client->stats().resumed, 1u);
}

TEST_P(TlsResume, TicketFromOneLoopResumesOnAnother) {
  auto keys = tls::ticket_keys::make();
  ASSERT_TRUE(keys);
  contexts a("ec", GetParam(), *keys);
  contexts b("ec", GetParam(), *keys);  // another loop's contexts, the same process keys
  bool resumed = true;
  tls::saved_session saved = first_connection(*a.server, *a.client, resumed);
  ASSERT_FALSE(saved.empty());
  EXPECT_TRUE(second_connection(*b.server, *a.client, saved));
  EXPECT_EQ(b.server->stats().resumed, 1u);
}

TEST_P(TlsResume, WithoutSharedKeysAnotherLoopDoesAFullHandshake) {
  contexts a("ec", GetParam());
  contexts b("ec", GetParam());  // OpenSSL's own key per SSL_CTX
  bool resumed = true;
  tls::saved_session saved = first_connection(*a.server, *a.client, resumed);
  ASSERT_FALSE(saved.empty());
  EXPECT_FALSE(second_connection(*b.server, *a.client, saved));
}

TEST_P(TlsResume, PreviousKeyStillOpensTwoRotationsDoNot) {
  auto made = tls::ticket_keys::make();
  ASSERT_TRUE(made);
  std::shared_ptr<tls::ticket_keys> keys = *made;
  contexts ctx("ec", GetParam(), keys);
  bool resumed = true;
  tls::saved_session old1 = first_connection(*ctx.server, *ctx.client, resumed);
  tls::saved_session old2 = first_connection(*ctx.server, *ctx.client, resumed);
  ASSERT_FALSE(old1.empty());
  ASSERT_FALSE(old2.empty());
  ASSERT_TRUE(keys->rotate());
  EXPECT_EQ(keys->generation(), 1u);
  EXPECT_TRUE(second_connection(*ctx.server, *ctx.client, old1));  // one period old: the previous key
  ASSERT_TRUE(keys->rotate());
  EXPECT_FALSE(second_connection(*ctx.server, *ctx.client, old2));  // two rotations old: a full handshake
  EXPECT_EQ(ctx.server->stats().resumed, 1u);
  EXPECT_EQ(ctx.server->stats().handshake_failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsResume, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION));

TEST(TlsTicketKeys, RotationKeepsCurrentAndPrevious) {
  auto made = tls::ticket_keys::make();
  ASSERT_TRUE(made);
  tls::ticket_keys& keys = **made;
  const auto k0 = keys.current();
  tls::ticket_keys::key found;
  bool is_current = false;
  ASSERT_TRUE(keys.find(k0.name.data(), found, is_current));
  EXPECT_TRUE(is_current);
  ASSERT_TRUE(keys.rotate());
  const auto k1 = keys.current();
  EXPECT_NE(k0.name, k1.name);
  ASSERT_TRUE(keys.find(k0.name.data(), found, is_current));
  EXPECT_FALSE(is_current);
  EXPECT_EQ(found.aes, k0.aes);
  ASSERT_TRUE(keys.rotate());
  EXPECT_FALSE(keys.find(k0.name.data(), found, is_current));
  ASSERT_TRUE(keys.find(k1.name.data(), found, is_current));
  EXPECT_FALSE(is_current);
}

// Readers on other threads while one rotates: every key read is whole (its
// name is one the writer made), never a mix of two slots' bytes.
TEST(TlsTicketKeys, ReadersSeeWholeKeysDuringRotation) {
  auto made = tls::ticket_keys::make();
  ASSERT_TRUE(made);
  tls::ticket_keys& keys = **made;
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const auto k = keys.current();
        tls::ticket_keys::key again;
        bool cur = false;
        // A key just read is found by its name with the same secrets
        // (unless two rotations passed meanwhile).
        if (keys.find(k.name.data(), again, cur) && (again.aes != k.aes || again.hmac != k.hmac)) ++torn;
      }
    });
  }
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(keys.rotate());
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(keys.generation(), 2000u);
}

// Moves what a memory BIO holds into a chain, and a chain into a memory BIO.
void bio_to_chain(BIO* b, buffer_chain& c) {
  char buf[4096];
  int n;
  while ((n = BIO_read(b, buf, sizeof buf)) > 0) ASSERT_TRUE(c.write(std::string_view(buf, static_cast<std::size_t>(n))));
}
void chain_to_bio(buffer_chain& c, BIO* b) {
  const std::string s = link::drain(c);
  if (s.empty()) return;
  ASSERT_EQ(BIO_write(b, s.data(), static_cast<int>(s.size())), static_cast<int>(s.size()));
}

TEST(Tls, RenegotiationIsRefusedAndCounted) {
  contexts ctx("ec", TLS1_2_VERSION);
  // A plain OpenSSL client over memory BIOs, allowed to renegotiate.
  SSL* c = SSL_new(ctx.client->native());
  ASSERT_NE(c, nullptr);
  BIO* rb = BIO_new(BIO_s_mem());
  BIO* wb = BIO_new(BIO_s_mem());
  SSL_set_bio(c, rb, wb);
  SSL_set_connect_state(c);
  SSL_clear_options(c, SSL_OP_NO_RENEGOTIATION);
  segment_pool pool(small_segments());
  buffer_chain c2s(&pool), s2c(&pool), plain(&pool);
  tls::session srv;
  ASSERT_TRUE(srv.start(*ctx.server));
  for (int i = 0; i < 10 && SSL_is_init_finished(c) == 0; ++i) {
    SSL_do_handshake(c);
    bio_to_chain(wb, c2s);
    srv.receive(c2s, plain, s2c);
    chain_to_bio(s2c, rb);
  }
  ASSERT_EQ(SSL_is_init_finished(c), 1);
  ASSERT_TRUE(srv.is_open());
  EXPECT_EQ(srv.version(), "TLSv1.2");
  ASSERT_EQ(SSL_renegotiate(c), 1);
  SSL_do_handshake(c);  // writes the new ClientHello
  ERR_clear_error();
  bio_to_chain(wb, c2s);
  ASSERT_FALSE(c2s.empty());
  const tls::state after = srv.receive(c2s, plain, s2c);
  EXPECT_EQ(ctx.server->stats().renegotiations_refused, 1u);
  EXPECT_EQ(ctx.server->stats().handshakes, 1u);
  EXPECT_TRUE(after == tls::state::open || after == tls::state::failed) << static_cast<int>(after);
  EXPECT_FALSE(s2c.empty());  // the refusal (a no_renegotiation alert)
  SSL_free(c);
}

TEST(TlsCheck, ClearErrors) {
  EXPECT_TRUE(tls::check_certificate(pair_of("ec")));
  auto missing = tls::check_certificate({(dir / "nope.crt").string(), (dir / "ec.key").string()});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.err().message.find("nope.crt: cannot read the certificate"), std::string::npos) << missing.err().message;
  auto mismatch = tls::check_certificate({(dir / "ec.crt").string(), (dir / "rsa.key").string()});
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.err().message.find("does not match"), std::string::npos) << mismatch.err().message;
  auto expired = tls::check_certificate({(dir / "expired.crt").string(), (dir / "ec.key").string()});
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.err().message.find("expired"), std::string::npos) << expired.err().message;
  auto garbage = tls::check_certificate({(dir / "ec.key").string(), (dir / "ec.key").string()});
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.err().message.find("no PEM certificate"), std::string::npos) << garbage.err().message;
  tls::context_options so;
  so.certs = {{(dir / "ec.crt").string(), (dir / "rsa.key").string()}};
  auto made = tls::context::make_server(so);
  ASSERT_FALSE(made);
  EXPECT_NE(made.err().message.find("does not match"), std::string::npos);
}

}  // namespace
