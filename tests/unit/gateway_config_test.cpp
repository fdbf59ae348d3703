// sluice-gateway's configuration: a complete TOML file read back field by
// field, and every kind of mistake refused with the file, the line and the
// key that is wrong.

#include "config.hpp"
#include "sluice_config.hpp"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

const char* full = R"(
admin = "127.0.0.1:9901"

[timeouts]
connect = "2s"
idle = 30
header = "500ms"
response = "5s"

[limits]
max_request_line = "4k"
max_header_bytes = 16384
max_headers = 50
max_body = "10m"
high_water = "128k"
low_water = "32k"

[[pool]]
name = "web"
upstreams = ["127.0.0.1:8081", "127.0.0.1:8082"]
balance = "least-conn"
retries = 1
max_fails = 5
eject_time = "3s"
keepalive = 8
[pool.health_check]
type = "http"
interval = "250ms"
timeout = "100ms"
path = "/healthz"
rise = 3
fall = 1

[[pool]]
name = "api"
upstreams = ["127.0.0.1:9000"]
balance = "consistent-hash"
hash_key = "path"

[[listener]]
address = "127.0.0.1:8080"
mode = "http"
pool = "web"
[[listener.route]]
host = "api.example"
path_prefix = "/v1/"
pool = "api"

[[listener]]
address = "127.0.0.1:7000"
mode = "tcp"
pool = "web"
)";

TEST(gateway_config, a_complete_file_reads_back) {
  auto c = load_text(full, "gw.toml");
  ASSERT_TRUE(c) << c.err().message;
  ASSERT_TRUE(c->admin.has_value());
  EXPECT_EQ(c->admin->to_string(), "127.0.0.1:9901");
  EXPECT_EQ(c->timeouts.connect, 2s);
  EXPECT_EQ(c->timeouts.idle, 30s);
  EXPECT_EQ(c->timeouts.header, 500ms);
  EXPECT_EQ(c->timeouts.response, 5s);
  EXPECT_EQ(c->http.max_request_line, 4096u);
  EXPECT_EQ(c->http.max_header_bytes, 16384u);
  EXPECT_EQ(c->http.max_headers, 50u);
  EXPECT_EQ(c->http.max_body, 10u << 20);
  EXPECT_EQ(c->high_water, 128u * 1024);
  EXPECT_EQ(c->low_water, 32u * 1024);
  ASSERT_EQ(c->pools.size(), 2u);
  const pool_config& web = c->pools[0];
  EXPECT_EQ(web.name, "web");
  ASSERT_EQ(web.upstreams.size(), 2u);
  EXPECT_EQ(web.upstreams[1].to_string(), "127.0.0.1:8082");
  EXPECT_EQ(web.policy, lb_policy::least_conn);
  EXPECT_EQ(web.retries, 1u);
  EXPECT_EQ(web.max_fails, 5u);
  EXPECT_EQ(web.eject_time, 3s);
  EXPECT_EQ(web.keepalive, 8u);
  EXPECT_EQ(web.check.kind, check_kind::http);
  EXPECT_EQ(web.check.interval, 250ms);
  EXPECT_EQ(web.check.timeout, 100ms);
  EXPECT_EQ(web.check.path, "/healthz");
  EXPECT_EQ(web.check.rise, 3u);
  EXPECT_EQ(web.check.fall, 1u);
  EXPECT_EQ(c->pools[1].policy, lb_policy::consistent_hash);
  EXPECT_EQ(c->pools[1].key, hash_key::path);
  ASSERT_EQ(c->listeners.size(), 2u);
  const listener_config& h = c->listeners[0];
  EXPECT_EQ(h.mode, proxy_mode::http);
  EXPECT_EQ(h.pool_index, 0u);
  ASSERT_EQ(h.routes.size(), 1u);
  EXPECT_EQ(h.routes[0].host, "api.example");
  EXPECT_EQ(h.routes[0].path_prefix, "/v1/");
  EXPECT_EQ(h.routes[0].pool_index, 1u);
  EXPECT_EQ(c->listeners[1].mode, proxy_mode::tcp);
  EXPECT_NE(describe(*c).find("route host api.example path /v1/ -> api"), std::string::npos) << describe(*c);
}

// The error for `text`, which must be refused.
std::string refusal(const std::string& text) {
  auto c = load_text(text, "gw.toml");
  EXPECT_FALSE(c) << "accepted:\n" << text;
  return c ? std::string() : c.err().message;
}

// For messages whose end comes from elsewhere (an address or duration parser).
::testing::AssertionResult starts_with(const std::string& msg, const std::string& prefix) {
  if (msg.compare(0, prefix.size(), prefix) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << msg << "' does not start with '" << prefix << "'";
}

const std::string pool_ok = "[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\"]\n";
const std::string listener_ok = "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"p\"\n";

TEST(gateway_config, errors_name_the_file_line_and_key) {
  // Line numbers count from 1; pool_ok takes lines 1-3, listener_ok 4-6.
  EXPECT_EQ(refusal("bogus = 1\n" + pool_ok + listener_ok),
            "gw.toml:1: bogus: unknown key (expected one of: admin, timeouts, limits, http, listener, pool)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "bogus = 1\n"),
            "gw.toml:7: listener[0].bogus: unknown key (expected one of: address, mode, pool, route, tls, ciphers, ciphersuites)")
      << "a key after [[listener]] belongs to it";
  EXPECT_TRUE(starts_with(refusal("[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\", \"nohost\"]\n" + listener_ok),
                          "gw.toml:3: pool[0].upstreams[1]: "));
  EXPECT_TRUE(starts_with(refusal(pool_ok + listener_ok + "[timeouts]\nidle = \"soon\"\n"), "gw.toml:8: timeouts.idle: "));
  EXPECT_EQ(refusal(pool_ok + "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"nope\"\n"),
            "gw.toml:4: listener[0].pool: no pool called 'nope'");
  EXPECT_EQ(refusal(pool_ok + pool_ok + listener_ok), "gw.toml:4: pool[1].name: a second pool called 'p'");
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\nupstreams = []\n" + listener_ok),
            "gw.toml:1: pool[0].upstreams: a pool needs at least one upstream");
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\n" + listener_ok), "gw.toml:1: pool[0].upstreams: missing (a list of \"HOST:PORT\")");
  EXPECT_EQ(refusal(pool_ok + "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\n"),
            "gw.toml:4: listener[0].pool: a tcp listener needs a pool");
  EXPECT_EQ(refusal(pool_ok + "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"udp\"\npool = \"p\"\n"),
            "gw.toml:6: listener[0].mode: 'udp' is not a mode (tcp or http)");
  EXPECT_EQ(refusal(pool_ok + "hash_key = \"host\"\n" + listener_ok),
            "gw.toml:1: pool[0].hash_key: only consistent-hash uses a hash key");
  EXPECT_TRUE(starts_with(refusal(pool_ok + "balance = \"random\"\n" + listener_ok),
                          "gw.toml:4: pool[0].balance: 'random' is not a policy"));
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[[listener.route]]\npool = \"p\"\npath_prefix = \"x\"\n"),
            "gw.toml:7: listener[0].route[0].path_prefix: must start with '/'");
  EXPECT_EQ(refusal(pool_ok + "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n"
                              "[[listener.route]]\npool = \"p\"\n"),
            "gw.toml:8: listener[0].route[0]: a tcp listener routes by sni only (mode = \"http\" routes by host and path)");
  EXPECT_TRUE(starts_with(refusal(pool_ok + "[pool.health_check]\ntype = \"icmp\"\n" + listener_ok),
                          "gw.toml:5: pool[0].health_check.type: 'icmp'"));
  EXPECT_EQ(refusal(pool_ok + "retries = \"two\"\n" + listener_ok), "gw.toml:4: pool[0].retries: must be a whole number, 0 or more");
  EXPECT_EQ(refusal(pool_ok), "gw.toml: no listener (add a [[listener]], or give --listen)");
  EXPECT_EQ(refusal(listener_ok), "gw.toml: no upstream pool (add a [[pool]], or give --upstream)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nhigh_water = \"64k\"\nlow_water = \"128k\"\n"),
            "gw.toml: limits.low_water must not exceed limits.high_water");
}

// Issue 15, item 3: limits.max_headers = 4294967296 passed the check, then the
// first connection's parser allocation aborted the process. Every size,
// count and duration of the file is checked against the same range as its
// flag, with the file, the line, the key and the range in the message.
TEST(gateway_config, values_out_of_range_are_refused_with_their_range) {
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nmax_headers = 4294967296\n"),
            "gw.toml:8: limits.max_headers: 4294967296 is out of range (1 to 1000)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nmax_header_bytes = 0\n"),
            "gw.toml:8: limits.max_header_bytes: 0 is out of range (64 to 80k)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nmax_body = \"99999999999999999g\"\n"),
            "gw.toml:8: limits.max_body: '99999999999999999g' is too large");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nmax_body = \"2048g\"\n"),
            "gw.toml:8: limits.max_body: 2048g is out of range (0 to 1024g)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[timeouts]\nheader = \"99999999h\"\n"),
            "gw.toml:8: timeouts.header: '99999999h' is beyond the clock's range");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[timeouts]\nresponse = \"25h\"\n"),
            "gw.toml:8: timeouts.response: 25h is out of range (1ms to 24h)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[timeouts]\nconnect = 0\n"),
            "gw.toml:8: timeouts.connect: 0 is out of range (1ms to 24h)");
  EXPECT_TRUE(load_text(pool_ok + listener_ok + "[timeouts]\nidle = 0\n", "gw.toml")) << "0 turns the idle timeout off";
  EXPECT_EQ(refusal(pool_ok + "retries = 99999999999\n" + listener_ok),
            "gw.toml:4: pool[0].retries: 99999999999 is out of range (0 to 63)");
  EXPECT_EQ(refusal(pool_ok + "max_fails = 0\n" + listener_ok), "gw.toml:4: pool[0].max_fails: 0 is out of range (1 to 1000)");
  EXPECT_EQ(refusal(pool_ok + "[pool.health_check]\nrise = 0\n" + listener_ok),
            "gw.toml:5: pool[0].health_check.rise: 0 is out of range (1 to 1000)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[limits]\nmax_request_line = \"32k\"\nmax_header_bytes = \"16k\"\n"),
            "gw.toml: limits.max_request_line must not exceed limits.max_header_bytes (the line is part of the head)");
  // The edges themselves are accepted.
  EXPECT_TRUE(load_text(pool_ok + "retries = 63\n" + listener_ok + "[limits]\nmax_headers = 1000\nmax_header_bytes = "
                        "\"80k\"\nmax_body = \"1024g\"\n[timeouts]\nresponse = \"24h\"\n",
                        "gw.toml"));
}

// Issue 19: TLS termination per listener (certificate pairs, routes by SNI),
// origination per pool (tls, verify, ca, sni) and the handshake timeout.
TEST(gateway_config, tls_options_read_back) {
  auto c = load_text(
      "[timeouts]\nhandshake = \"3s\"\n"
      "[[pool]]\nname = \"web\"\nupstreams = [\"127.0.0.1:1\"]\n"
      "[[pool]]\nname = \"sec\"\nupstreams = [\"127.0.0.1:2\"]\ntls = true\nca = \"ca.pem\"\nsni = \"app.internal\"\n"
      "[[pool]]\nname = \"lax\"\nupstreams = [\"127.0.0.1:3\"]\ntls = true\nverify = false\n"
      "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"web\"\n"
      "tls = [{ cert = \"a.crt\", key = \"a.key\" }, { cert = \"b.crt\", key = \"b.key\" }]\n"
      "[[listener.route]]\nsni = \"b.example\"\npath_prefix = \"/api\"\npool = \"sec\"\n"
      "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"web\"\n"
      "[[listener.tls]]\ncert = \"c.crt\"\nkey = \"c.key\"\n"
      "[[listener.route]]\nsni = \"c.example\"\npool = \"lax\"\n",
      "gw.toml");
  ASSERT_TRUE(c) << c.err().message;
  EXPECT_EQ(c->timeouts.handshake, std::chrono::seconds(3));
  EXPECT_EQ(c->timeouts.ticket_rotate, std::chrono::hours(1));  // the default, as sluice-httpd's --tls-ticket-rotate
  auto rotated = load_text(pool_ok + listener_ok + "[timeouts]\nticket_rotate = \"30m\"\n", "gw.toml");
  ASSERT_TRUE(rotated) << rotated.err().message;
  EXPECT_EQ(rotated->timeouts.ticket_rotate, std::chrono::minutes(30));
  ASSERT_EQ(c->listeners[0].certs.size(), 2u);
  EXPECT_EQ(c->listeners[0].certs[1].cert, "b.crt");
  EXPECT_EQ(c->listeners[0].certs[1].key, "b.key");
  EXPECT_EQ(c->listeners[0].routes[0].sni, "b.example");
  EXPECT_EQ(c->listeners[0].routes[0].pool_index, 1u);
  EXPECT_TRUE(c->listeners[1].tls());
  EXPECT_EQ(c->listeners[1].routes[0].pool_index, 2u);
  EXPECT_FALSE(c->pools[0].tls);
  EXPECT_TRUE(c->pools[1].tls);
  EXPECT_TRUE(c->pools[1].verify);
  EXPECT_EQ(c->pools[1].ca, "ca.pem");
  EXPECT_EQ(c->pools[1].sni, "app.internal");
  EXPECT_FALSE(c->pools[2].verify);
  // The TLS name of each upstream: sni when given, else the host name as
  // written (none for an address).
  EXPECT_EQ(c->pools[1].tls_names, std::vector<std::string>{"app.internal"});
  EXPECT_EQ(c->pools[2].tls_names, std::vector<std::string>{""});
  auto named = load_text("[[pool]]\nname = \"p\"\nupstreams = [\"localhost:1\", \"127.0.0.1:2\", \"[::1]:3\"]\n"
                         "tls = true\nverify = false\n" + listener_ok, "gw.toml");
  ASSERT_TRUE(named) << named.err().message;
  EXPECT_EQ(named->pools[0].tls_names, (std::vector<std::string>{"localhost", "", ""}));
  const std::string d = describe(*c);
  EXPECT_NE(d.find("tls a.crt, b.crt"), std::string::npos) << d;
  EXPECT_NE(d.find("route sni b.example"), std::string::npos) << d;
  EXPECT_NE(d.find("tls verify ca ca.pem sni app.internal"), std::string::npos) << d;
  EXPECT_NE(d.find("tls without verification"), std::string::npos) << d;
  // The files are checked apart (check_tls_files), with the key named.
  auto files = check_tls_files(*c);
  ASSERT_FALSE(files);
  EXPECT_TRUE(starts_with(files.err().message, "gw.toml:20: listener[0].tls[0]: a.crt: cannot read the certificate"))
      << files.err().message;
}

TEST(gateway_config, cipher_lists_per_listener_and_pool_are_read_and_checked_by_openssl) {
  const std::string text = "[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\"]\ntls = true\nverify = false\n"
                           "ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"\nciphersuites = \"TLS_AES_128_GCM_SHA256\"\n"
                           "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"p\"\n"
                           "ciphers = \"ECDHE-ECDSA-AES256-GCM-SHA384\"\nciphersuites = \"TLS_CHACHA20_POLY1305_SHA256\"\n"
                           "[[listener.tls]]\ncert = \"a.crt\"\nkey = \"a.key\"\n";
  auto c = load_text(text, "gw.toml");
  ASSERT_TRUE(c) << c.err().message;
  EXPECT_EQ(c->pools[0].ciphers.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(c->pools[0].ciphers.ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(c->listeners[0].ciphers.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
  EXPECT_EQ(c->listeners[0].ciphers.ciphersuites, "TLS_CHACHA20_POLY1305_SHA256");
  // Without TLS on that side a cipher list means nothing: refused.
  EXPECT_EQ(refusal(pool_ok + "ciphers = \"HIGH\"\n" + listener_ok),
            "gw.toml:1: pool[0].ciphers: needs tls = true (--upstream-tls)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "ciphersuites = \"TLS_AES_128_GCM_SHA256\"\n"),
            "gw.toml:4: listener[0].ciphersuites: needs a certificate (tls, --tls-cert): this listener speaks plaintext");
#if SLUICE_HAVE_TLS
  // A list OpenSSL refuses is found with the files, naming the key.
  auto bad_pool = load_text("[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\"]\ntls = true\nverify = false\n"
                            "ciphersuites = \"TLS_NO_SUCH_SUITE\"\n" + listener_ok, "gw.toml");
  ASSERT_TRUE(bad_pool) << bad_pool.err().message;
  auto refused = check_tls_files(*bad_pool);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(starts_with(refused.err().message, "gw.toml:1: pool[0].ciphersuites: TLS 1.3 cipher suites "
                                                 "'TLS_NO_SUCH_SUITE': "))
      << refused.err().message;
#endif
}

TEST(gateway_config, tls_errors_name_the_key) {
  const std::string tls_listener = "[[listener]]\naddress = \"127.0.0.1:0\"\npool = \"p\"\n"
                                   "[[listener.tls]]\ncert = \"a.crt\"\nkey = \"a.key\"\n";
  EXPECT_EQ(refusal(pool_ok + "tls = true\n" + listener_ok),
            "gw.toml:1: pool[0].ca: verifying the upstreams needs a CA file (ca = FILE, --upstream-ca), or verify = "
            "false (--upstream-insecure)");
  EXPECT_EQ(refusal(pool_ok + "ca = \"ca.pem\"\n" + listener_ok), "gw.toml:1: pool[0].ca: needs tls = true (--upstream-tls)");
  EXPECT_EQ(refusal(pool_ok + "tls = \"yes\"\n" + listener_ok), "gw.toml:4: pool[0].tls: must be true or false");
  EXPECT_EQ(refusal(pool_ok + "tls = true\nverify = false\n[pool.health_check]\ntype = \"http\"\n" + listener_ok),
            "gw.toml:1: pool[0].health_check.type: http health checks do not speak TLS: use tcp with tls = true");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[[listener.route]]\nsni = \"a.example\"\npool = \"p\"\n"),
            "gw.toml:7: listener[0].route[0].sni: routing by SNI needs TLS on the listener ([[listener[0].tls]])");
  EXPECT_EQ(refusal(pool_ok + tls_listener + "[[listener.tls]]\ncert = \"b.crt\"\n"),
            "gw.toml:10: listener[0].tls[1].key: missing");
  EXPECT_EQ(refusal(pool_ok + tls_listener + "[[listener.tls]]\ncert = \"b.crt\"\nkey = \"b.key\"\nchain = 1\n"),
            "gw.toml:13: listener[0].tls[1].chain: unknown key (expected one of: cert, key)");
  EXPECT_EQ(refusal(pool_ok + "[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"p\"\n"
                              "[[listener.tls]]\ncert = \"a.crt\"\nkey = \"a.key\"\n"
                              "[[listener.route]]\nsni = \"a.example\"\nhost = \"a.example\"\npool = \"p\"\n"),
            "gw.toml:11: listener[0].route[0]: a tcp listener routes by sni only (mode = \"http\" routes by host and path)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[timeouts]\nhandshake = 0\n"),
            "gw.toml:8: timeouts.handshake: 0 is out of range (1ms to 24h)");
  EXPECT_EQ(refusal(pool_ok + listener_ok + "[timeouts]\nticket_rotate = \"500ms\"\n"),
            "gw.toml:8: timeouts.ticket_rotate: 500ms is out of range (1s to 168h)");
}

// Issue 15, item 9: upstreams that cannot be connected to, or twice in one
// pool; two listeners (or a listener and the admin endpoint) on one address.
TEST(gateway_config, bad_upstreams_and_colliding_addresses_are_refused) {
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:0\"]\n" + listener_ok),
            "gw.toml:1: pool[0].upstreams[0]: '127.0.0.1:0': port 0 cannot be connected to");
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\nupstreams = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:1\"]\n" +
                    listener_ok),
            "gw.toml:1: pool[0].upstreams[2]: '127.0.0.1:1' is in the pool twice");
  // A host name is resolved when the file is read, and compared by its
  // address (whichever address localhost has here).
  const std::string localhost = endpoint::parse("localhost:80").value().to_string();
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\nupstreams = [\"" + localhost + "\", \"localhost:80\"]\n" + listener_ok),
            "gw.toml:1: pool[0].upstreams[1]: 'localhost:80' is in the pool twice (as '" + localhost + "' too)");
  const std::string two = "[[listener]]\naddress = \"127.0.0.1:8080\"\npool = \"p\"\n"
                          "[[listener]]\naddress = \"0.0.0.0:8080\"\npool = \"p\"\n";
  EXPECT_EQ(refusal(pool_ok + two), "gw.toml:7: listener[1].address: 0.0.0.0:8080 takes the connections of listener[0] too");
  EXPECT_EQ(refusal("admin = \"127.0.0.1:8080\"\n" + pool_ok + "[[listener]]\naddress = \"127.0.0.1:8080\"\npool = \"p\"\n"),
            "gw.toml:5: listener[0].address: 127.0.0.1:8080 is also the admin address");
  // Port 0 (any free port) never collides; other ports do not either.
  EXPECT_TRUE(load_text(pool_ok + listener_ok + listener_ok, "gw.toml"));
  EXPECT_TRUE(load_text("admin = \"127.0.0.1:8081\"\n" + pool_ok + "[[listener]]\naddress = \"127.0.0.1:8080\"\npool = "
                        "\"p\"\n[[listener]]\naddress = \"127.0.0.2:8080\"\npool = \"p\"\n",
                        "gw.toml"));
}

TEST(gateway_config, a_directory_is_not_a_config_file) {
  auto c = load_file("/tmp");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().message, "/tmp: is a directory, not a TOML file");
}

TEST(gateway_config, syntax_errors_give_their_line) {
  const std::string msg = refusal(pool_ok + "name = \n");
  EXPECT_EQ(msg.substr(0, 10), "gw.toml:4:") << msg;
}

TEST(gateway_config, a_missing_file_says_so) {
  auto c = load_file("/nonexistent/gw.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().message.substr(0, 21), "/nonexistent/gw.toml:") << c.err().message;
}

TEST(gateway_config, too_many_upstreams_are_refused) {
  std::string ups;
  for (int i = 0; i < 65; ++i) ups += std::string(i ? ", " : "") + "\"127.0.0.1:" + std::to_string(1000 + i) + "\"";
  EXPECT_EQ(refusal("[[pool]]\nname = \"p\"\nupstreams = [" + ups + "]\n" + listener_ok),
            "gw.toml:1: pool[0].upstreams: at most 64 upstreams per pool");
}

}  // namespace
}  // namespace sluice::gateway
