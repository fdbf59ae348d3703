#include "config.hpp"

#include <toml++/toml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "sluice/base/cli.hpp"
#include "sluice/core/http/request.hpp"
#include "sluice_config.hpp"
#if SLUICE_HAVE_TLS
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "sluice/tls/context.hpp"
#endif

namespace sluice::gateway {

std::string_view to_string(proxy_mode m) noexcept { return m == proxy_mode::tcp ? "tcp" : "http"; }

std::string_view to_string(lb_policy p) noexcept {
  switch (p) {
    case lb_policy::round_robin: return "round-robin";
    case lb_policy::least_conn: return "least-conn";
    case lb_policy::source_hash: return "source-hash";
    case lb_policy::consistent_hash: return "consistent-hash";
  }
  return "?";
}

std::string_view to_string(check_kind k) noexcept {
  switch (k) {
    case check_kind::none: return "none";
    case check_kind::tcp: return "tcp";
    case check_kind::http: return "http";
  }
  return "?";
}

result<proxy_mode> parse_mode(std::string_view s) {
  if (s == "tcp") return proxy_mode::tcp;
  if (s == "http") return proxy_mode::http;
  return error{"'" + std::string(s) + "' is not a mode (tcp or http)", {}};
}

result<lb_policy> parse_policy(std::string_view s) {
  for (lb_policy p : {lb_policy::round_robin, lb_policy::least_conn, lb_policy::source_hash, lb_policy::consistent_hash}) {
    if (s == to_string(p)) return p;
  }
  return error{"'" + std::string(s) + "' is not a policy (round-robin, least-conn, source-hash or consistent-hash)", {}};
}

result<hash_key> parse_hash_key(std::string_view s) {
  if (s == "source") return hash_key::source;
  if (s == "host") return hash_key::host;
  if (s == "path") return hash_key::path;
  return error{"'" + std::string(s) + "' is not a hash key (source, host or path)", {}};
}

result<check_kind> parse_check(std::string_view s) {
  for (check_kind k : {check_kind::none, check_kind::tcp, check_kind::http}) {
    if (s == to_string(k)) return k;
  }
  return error{"'" + std::string(s) + "' is not a health check (none, tcp or http)", {}};
}

namespace {

// Reads one TOML document into a config. Each table's keys are checked
// against what it may hold, so a misspelt key is an error, not a default.
class reader {
 public:
  explicit reader(std::string name) : name_(std::move(name)) {}

  result<config> read(const toml::table& root) {
    config c;
    c.source = name_;
    if (!known(root, "", {"admin", "timeouts", "limits", "http", "listener", "pool"})) return err_;
    if (auto* h = root.get("http")) {
      const toml::table* ht = table(*h, "http");
      if (ht == nullptr || !known(*ht, "http.", {"allow_underscores"})) return err_;
      if (auto* v = ht->get("allow_underscores")) {
        auto b = v->value<bool>();
        if (!b) return fail(*v, "http.allow_underscores", "must be true or false");
        c.allow_underscores = *b;
      }
    }
    if (auto* a = root.get("admin")) {
      auto s = text(*a, "admin");
      if (!s) return err_;
      auto ep = endpoint::parse(*s);
      if (!ep) return fail(*a, "admin", ep.err().message);
      c.admin = *ep;
    }
    if (auto* t = root.get("timeouts")) {
      const toml::table* tt = table(*t, "timeouts");
      if (tt == nullptr || !known(*tt, "timeouts.", {"connect", "idle", "header", "response", "handshake", "ticket_rotate"})) {
        return err_;
      }
      if (!opt_duration(*tt, "timeouts.", "connect", c.timeouts.connect, ranges::timeout) ||
          !opt_duration(*tt, "timeouts.", "idle", c.timeouts.idle, ranges::optional_timeout) ||
          !opt_duration(*tt, "timeouts.", "header", c.timeouts.header, ranges::timeout) ||
          !opt_duration(*tt, "timeouts.", "response", c.timeouts.response, ranges::timeout) ||
          !opt_duration(*tt, "timeouts.", "handshake", c.timeouts.handshake, ranges::timeout) ||
          !opt_duration(*tt, "timeouts.", "ticket_rotate", c.timeouts.ticket_rotate, ranges::ticket_rotate)) {
        return err_;
      }
    }
    if (auto* l = root.get("limits")) {
      const toml::table* lt = table(*l, "limits");
      if (lt == nullptr || !known(*lt, "limits.", {"max_request_line", "max_header_bytes", "max_headers", "max_body",
                                                   "high_water", "low_water"})) {
        return err_;
      }
      std::uint64_t body = c.http.max_body;
      if (!opt_size(*lt, "limits.", "max_request_line", c.http.max_request_line, ranges::max_request_line) ||
          !opt_size(*lt, "limits.", "max_header_bytes", c.http.max_header_bytes, ranges::max_header_bytes) ||
          !opt_count(*lt, "limits.", "max_headers", c.http.max_headers, ranges::max_headers) ||
          !opt_size64(*lt, "limits.", "max_body", body, ranges::max_body) ||
          !opt_size(*lt, "limits.", "high_water", c.high_water, ranges::high_water) ||
          !opt_size(*lt, "limits.", "low_water", c.low_water, ranges::low_water)) {
        return err_;
      }
      c.http.max_body = body;
    }
    if (auto* p = root.get("pool")) {
      const toml::array* arr = array_of_tables(*p, "pool");
      if (arr == nullptr) return err_;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const std::string key = "pool[" + std::to_string(i) + "]";
        auto pc = read_pool(*(*arr)[i].as_table(), key);
        if (!pc) return err_;
        c.pools.push_back(std::move(*pc));
      }
    }
    if (auto* l = root.get("listener")) {
      const toml::array* arr = array_of_tables(*l, "listener");
      if (arr == nullptr) return err_;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const std::string key = "listener[" + std::to_string(i) + "]";
        auto lc = read_listener(*(*arr)[i].as_table(), key);
        if (!lc) return err_;
        c.listeners.push_back(std::move(*lc));
      }
    }
    return c;
  }

 private:
  result<pool_config> read_pool(const toml::table& t, const std::string& key) {
    pool_config p;
    p.where = at(t) + key;
    if (!known(t, key + ".", {"name", "upstreams", "balance", "hash_key", "retries", "max_fails", "eject_time",
                              "keepalive", "health_check", "tls", "verify", "ca", "sni", "ciphers",
                              "ciphersuites"})) {
      return err_;
    }
    auto name = required_text(t, key, "name");
    if (!name) return err_;
    p.name = *name;
    const toml::node* ups = t.get("upstreams");
    if (ups == nullptr) return fail(t, key + ".upstreams", "missing (a list of \"HOST:PORT\")");
    const toml::array* list = ups->as_array();
    if (list == nullptr) return fail(*ups, key + ".upstreams", "must be a list of \"HOST:PORT\" strings");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string k = key + ".upstreams[" + std::to_string(i) + "]";
      auto s = text((*list)[i], k);
      if (!s) return err_;
      auto ep = endpoint::parse(*s);
      if (!ep) return fail((*list)[i], k, ep.err().message);
      p.upstreams.push_back(*ep);
      p.upstream_names.push_back(*s);
    }
    std::string word;
    if (!opt_text(t, key, "balance", word)) return err_;
    if (!word.empty()) {
      auto pol = parse_policy(word);
      if (!pol) return fail(*t.get("balance"), key + ".balance", pol.err().message);
      p.policy = *pol;
    }
    word.clear();
    if (!opt_text(t, key, "hash_key", word)) return err_;
    if (!word.empty()) {
      auto hk = parse_hash_key(word);
      if (!hk) return fail(*t.get("hash_key"), key + ".hash_key", hk.err().message);
      p.key = *hk;
    }
    if (!opt_unsigned(t, key + ".", "retries", p.retries, ranges::retries) ||
        !opt_unsigned(t, key + ".", "max_fails", p.max_fails, ranges::max_fails) ||
        !opt_duration(t, key + ".", "eject_time", p.eject_time, ranges::timeout) ||
        !opt_count(t, key + ".", "keepalive", p.keepalive, ranges::upstream_keepalive)) {
      return err_;
    }
    if (!opt_bool(t, key, "tls", p.tls) || !opt_bool(t, key, "verify", p.verify) || !opt_text(t, key, "ca", p.ca) ||
        !opt_text(t, key, "sni", p.sni) || !opt_text(t, key, "ciphers", p.ciphers.ciphers) ||
        !opt_text(t, key, "ciphersuites", p.ciphers.ciphersuites)) {
      return err_;
    }
    if (auto* hc = t.get("health_check")) {
      const std::string hk = key + ".health_check";
      const toml::table* ht = table(*hc, hk);
      if (ht == nullptr || !known(*ht, hk + ".", {"type", "interval", "timeout", "path", "rise", "fall"})) return err_;
      word.clear();
      if (!opt_text(*ht, hk, "type", word)) return err_;
      if (!word.empty()) {
        auto k = parse_check(word);
        if (!k) return fail(*ht->get("type"), hk + ".type", k.err().message);
        p.check.kind = *k;
      }
      if (!opt_duration(*ht, hk + ".", "interval", p.check.interval, ranges::timeout) ||
          !opt_duration(*ht, hk + ".", "timeout", p.check.timeout, ranges::timeout) ||
          !opt_text(*ht, hk, "path", p.check.path) ||
          !opt_unsigned(*ht, hk + ".", "rise", p.check.rise, ranges::rise_fall) ||
          !opt_unsigned(*ht, hk + ".", "fall", p.check.fall, ranges::rise_fall)) {
        return err_;
      }
    }
    return p;
  }

  result<listener_config> read_listener(const toml::table& t, const std::string& key) {
    listener_config l;
    l.where = at(t) + key;
    if (!known(t, key + ".", {"address", "mode", "pool", "route", "tls", "ciphers", "ciphersuites"})) return err_;
    auto addr = required_text(t, key, "address");
    if (!addr) return err_;
    auto ep = endpoint::parse(*addr);
    if (!ep) return fail(*t.get("address"), key + ".address", ep.err().message);
    l.address = *ep;
    l.address_text = *addr;
    std::string word;
    if (!opt_text(t, key, "mode", word)) return err_;
    if (!word.empty()) {
      auto m = parse_mode(word);
      if (!m) return fail(*t.get("mode"), key + ".mode", m.err().message);
      l.mode = *m;
    }
    if (!opt_text(t, key, "pool", l.pool) || !opt_text(t, key, "ciphers", l.ciphers.ciphers) ||
        !opt_text(t, key, "ciphersuites", l.ciphers.ciphersuites)) {
      return err_;
    }
    if (auto* r = t.get("route")) {
      const toml::array* arr = array_of_tables(*r, key + ".route");
      if (arr == nullptr) return err_;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::table& rt = *(*arr)[i].as_table();
        const std::string rk = key + ".route[" + std::to_string(i) + "]";
        route_config rc;
        rc.where = at(rt) + rk;
        if (!known(rt, rk + ".", {"sni", "host", "path_prefix", "pool"})) return err_;
        if (!opt_text(rt, rk, "sni", rc.sni) || !opt_text(rt, rk, "host", rc.host) ||
            !opt_text(rt, rk, "path_prefix", rc.path_prefix)) {
          return err_;
        }
        auto pool = required_text(rt, rk, "pool");
        if (!pool) return err_;
        rc.pool = *pool;
        l.routes.push_back(std::move(rc));
      }
    }
    if (auto* tl = t.get("tls")) {
      const toml::array* arr = array_of_tables(*tl, key + ".tls");
      if (arr == nullptr) return err_;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::table& tt = *(*arr)[i].as_table();
        const std::string tk = key + ".tls[" + std::to_string(i) + "]";
        if (!known(tt, tk + ".", {"cert", "key"})) return err_;
        auto cert = required_text(tt, tk, "cert");
        if (!cert) return err_;
        auto k = required_text(tt, tk, "key");
        if (!k) return err_;
        l.certs.push_back({*cert, *k});
        l.cert_where.push_back(at(tt) + tk);
      }
    }
    return l;
  }

  // ---- helpers: each records the first error in err_ and returns false/nullopt ----

  std::string at(const toml::node& n) const { return name_ + ":" + std::to_string(n.source().begin.line) + ": "; }

  error fail(const toml::node& n, const std::string& key, const std::string& msg) {
    err_ = error{at(n) + key + ": " + msg, {}};
    return err_;
  }

  bool known(const toml::table& t, const std::string& prefix, std::initializer_list<std::string_view> keys) {
    for (auto&& [k, v] : t) {
      if (std::find(keys.begin(), keys.end(), k.str()) != keys.end()) continue;
      std::string allowed;
      for (auto a : keys) allowed += std::string(allowed.empty() ? "" : ", ") + std::string(a);
      err_ = error{name_ + ":" + std::to_string(k.source().begin.line) + ": " + prefix + std::string(k.str()) +
                       ": unknown key (expected one of: " + allowed + ")",
                   {}};
      (void)v;
      return false;
    }
    return true;
  }

  const toml::table* table(const toml::node& n, const std::string& key) {
    if (const toml::table* t = n.as_table()) return t;
    fail(n, key, "must be a table ([" + key + "])");
    return nullptr;
  }

  const toml::array* array_of_tables(const toml::node& n, const std::string& key) {
    const toml::array* a = n.as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      fail(n, key, "must be an array of tables ([[" + key + "]])");
      return nullptr;
    }
    return a;
  }

  std::optional<std::string> text(const toml::node& n, const std::string& key) {
    if (auto s = n.value<std::string>(); s && n.is_string()) return *s;
    fail(n, key, "must be a string");
    return std::nullopt;
  }

  std::optional<std::string> required_text(const toml::table& t, const std::string& key, const char* name) {
    const toml::node* n = t.get(name);
    if (n == nullptr) {
      fail(t, key + "." + name, "missing");
      return std::nullopt;
    }
    return text(*n, key + "." + name);
  }

  bool opt_text(const toml::table& t, const std::string& key, const char* name, std::string& out) {
    const toml::node* n = t.get(name);
    if (n == nullptr) return true;
    auto s = text(*n, key + "." + name);
    if (!s) return false;
    out = *s;
    return true;
  }

  bool opt_bool(const toml::table& t, const std::string& key, const char* name, bool& out) {
    const toml::node* n = t.get(name);
    if (n == nullptr) return true;
    auto b = n->value<bool>();
    if (!b || !n->is_boolean()) {
      fail(*n, key + "." + name, "must be true or false");
      return false;
    }
    out = *b;
    return true;
  }

  // A value read from the file, checked against its range by the check
  // every flag uses (check_range), so a file and a flag refuse the same.
  template <class T, class Range>
  bool in_range(const toml::node& n, const std::string& key, T value, const Range& r) {
    if (auto ok = check_range(value, r); !ok) {
      fail(n, key, ok.err().message);
      return false;
    }
    return true;
  }

  // A duration: a string with a unit ("500ms", "2s") or an integer of seconds.
  bool opt_duration(const toml::table& t, const std::string& prefix, const char* name, duration& out,
                    const duration_range& r) {
    const toml::node* n = t.get(name);
    if (n == nullptr) return true;
    std::string spelled;
    if (n->is_integer()) {
      spelled = std::to_string(*n->value<std::int64_t>());
    } else if (n->is_string()) {
      spelled = *n->value<std::string>();
    } else {
      fail(*n, prefix + name, "must be a duration (\"500ms\", \"2s\") or whole seconds");
      return false;
    }
    auto d = parse_duration(spelled);
    if (!d) {
      fail(*n, prefix + name, d.err().message);
      return false;
    }
    if (!in_range(*n, prefix + name, *d, r)) return false;
    out = *d;
    return true;
  }

  // A size: an integer of bytes or a string with k, m, g.
  bool opt_size64(const toml::table& t, const std::string& prefix, const char* name, std::uint64_t& out,
                  const number_range& r) {
    const toml::node* n = t.get(name);
    if (n == nullptr) return true;
    std::uint64_t v = 0;
    if (n->is_integer()) {
      const std::int64_t i = *n->value<std::int64_t>();
      if (i < 0) {
        fail(*n, prefix + name, "must not be negative");
        return false;
      }
      v = static_cast<std::uint64_t>(i);
    } else if (n->is_string()) {
      auto parsed = parse_size(*n->value<std::string>());
      if (!parsed) {
        fail(*n, prefix + name, parsed.err().message);
        return false;
      }
      v = *parsed;
    } else {
      fail(*n, prefix + name, "must be a size (bytes, or \"64k\", \"1m\")");
      return false;
    }
    if (!in_range(*n, prefix + name, v, r)) return false;
    out = v;
    return true;
  }

  bool opt_size(const toml::table& t, const std::string& prefix, const char* name, std::size_t& out,
                const number_range& r) {
    std::uint64_t v = out;
    if (!opt_size64(t, prefix, name, v, r)) return false;
    out = static_cast<std::size_t>(v);
    return true;
  }

  bool opt_count(const toml::table& t, const std::string& prefix, const char* name, std::size_t& out,
                 const number_range& r) {
    const toml::node* n = t.get(name);
    if (n == nullptr) return true;
    if (!n->is_integer() || *n->value<std::int64_t>() < 0) {
      fail(*n, prefix + name, "must be a whole number, 0 or more");
      return false;
    }
    const auto v = static_cast<std::uint64_t>(*n->value<std::int64_t>());
    if (!in_range(*n, prefix + name, v, r)) return false;
    out = static_cast<std::size_t>(v);
    return true;
  }

  bool opt_unsigned(const toml::table& t, const std::string& prefix, const char* name, unsigned& out,
                    const number_range& r) {
    std::size_t v = out;
    if (!opt_count(t, prefix, name, v, r)) return false;
    out = static_cast<unsigned>(v);
    return true;
  }

  std::string name_;
  error err_{"", {}};
};

// What a parse error says, with its line when it has one (a file that
// cannot be read at all has none).
error parse_failure(const toml::parse_error& e, const std::string& name) {
  const auto line = e.source().begin.line;
  if (line == 0) return error{name + ": " + std::string(e.description()), {}};
  return error{name + ":" + std::to_string(line) + ": " + std::string(e.description()), {}};
}

result<config> from_document(const toml::table& doc, const std::string& name) {
  reader r(name);
  auto c = r.read(doc);
  if (!c) return c;
  if (auto v = validate(*c); !v) return v.err();
  return c;
}

// The key a message names: "FILE:LINE: pool[0].upstreams[1]" for what came
// from a file, the flag alone ("--upstream") for what came from flags.
std::string key_of(const std::string& where, const std::string& sub) {
  return where.rfind("--", 0) == 0 ? where : where + "." + sub;
}

// Whether two listening addresses would take the same connections: one
// port (not 0) and one address, or a wildcard address of the same family.
bool same_socket(const endpoint& a, const endpoint& b) {
  if (a.port() == 0 || a.port() != b.port() || a.family() != b.family()) return false;
  if (a == b) return true;
  endpoint any_a = a, any_b = b;
  any_a.set_port(0);
  any_b.set_port(0);
  const endpoint any = a.is_v6() ? endpoint::parse("[::]:0").value() : endpoint::ipv4(0, 0);
  return any_a == any || any_b == any;
}

// The host of "HOST:PORT" when it is a name, "" for an IP address.
std::string host_name_of(const std::string& written) {
  if (written.empty() || written.front() == '[') return {};  // [IPv6]:PORT
  const std::string host = written.substr(0, written.rfind(':'));
  in_addr v4{};
  if (host.empty() || host == "*" || ::inet_pton(AF_INET, host.c_str(), &v4) == 1) return {};
  return host;
}

bool host_is_valid(std::string_view h) {
  return std::all_of(h.begin(), h.end(), [](char ch) { return ch > ' ' && ch != '/' && ch < 127; });
}

}  // namespace

result<config> load_text(std::string_view text, const std::string& name) {
  try {
    return from_document(toml::parse(text, name), name);
  } catch (const toml::parse_error& e) {
    return parse_failure(e, name);
  }
}

result<config> load_file(const std::string& path) {
  std::error_code ec;
  const auto kind = std::filesystem::status(path, ec).type();
  if (kind == std::filesystem::file_type::directory) return error{path + ": is a directory, not a TOML file", {}};
  try {
    return from_document(toml::parse_file(path), path);
  } catch (const toml::parse_error& e) {
    return parse_failure(e, path);
  }
}

result<void> validate(config& c) {
  auto bad = [](const std::string& where, const std::string& msg) { return error{where + ": " + msg, {}}; };
  if (c.pools.empty()) return error{c.source + ": no upstream pool (add a [[pool]], or give --upstream)", {}};
  if (c.listeners.empty()) return error{c.source + ": no listener (add a [[listener]], or give --listen)", {}};
  std::set<std::string> names;
  for (pool_config& p : c.pools) {
    if (p.name.empty()) return bad(p.where + ".name", "must not be empty");
    if (!names.insert(p.name).second) return bad(p.where + ".name", "a second pool called '" + p.name + "'");
    if (p.upstreams.empty()) return bad(p.where + ".upstreams", "a pool needs at least one upstream");
    if (p.upstreams.size() > max_upstreams_per_pool) {
      return bad(p.where + ".upstreams", "at most " + std::to_string(max_upstreams_per_pool) + " upstreams per pool");
    }
    if (p.key != hash_key::source && p.policy != lb_policy::consistent_hash) {
      return bad(p.where + ".hash_key", "only consistent-hash uses a hash key");
    }
    for (std::size_t i = 0; i < p.upstreams.size(); ++i) {
      const std::string& u = p.upstream_names[i];
      const std::string at = key_of(p.where, "upstreams[" + std::to_string(i) + "]");
      if (p.upstreams[i].port() == 0) return bad(at, "'" + u + "': port 0 cannot be connected to");
      for (std::size_t j = 0; j < i; ++j) {
        if (p.upstreams[j] == p.upstreams[i]) {
          const std::string& first = p.upstream_names[j];
          return bad(at, "'" + u + "' is in the pool twice" + (first == u ? "" : " (as '" + first + "' too)"));
        }
      }
    }
    if (p.check.kind != check_kind::none) {
      if (p.check.path.empty() || p.check.path.front() != '/') {
        return bad(p.where + ".health_check.path", "must start with '/'");
      }
    }
    if (!p.tls && (!p.ca.empty() || !p.sni.empty() || !p.ciphers.empty())) {
      const std::string k = !p.ca.empty() ? "ca" : !p.sni.empty() ? "sni" : !p.ciphers.ciphers.empty() ? "ciphers" : "ciphersuites";
      const bool flags = p.where.rfind("--", 0) == 0;
      return bad(flags ? "--upstream-" + (k == "ca" || k == "sni" ? k : "tls-" + k) : key_of(p.where, k),
                 "needs tls = true (--upstream-tls)");
    }
    if (p.tls) {
      if (!SLUICE_HAVE_TLS) return bad(key_of(p.where, "tls"), "this build has no TLS (OpenSSL 3 was not found)");
      if (p.verify && p.ca.empty()) {
        return bad(key_of(p.where, "ca"), "verifying the upstreams needs a CA file (ca = FILE, --upstream-ca), "
                                          "or verify = false (--upstream-insecure)");
      }
      if (!host_is_valid(p.sni)) return bad(key_of(p.where, "sni"), "'" + p.sni + "' is not a host name");
      if (p.check.kind == check_kind::http) {
        return bad(key_of(p.where, "health_check.type"), "http health checks do not speak TLS: use tcp with tls = true");
      }
      p.tls_names.clear();
      for (const std::string& u : p.upstream_names) p.tls_names.push_back(p.sni.empty() ? host_name_of(u) : p.sni);
    }
  }
  auto find_pool = [&](const std::string& name) -> std::size_t {
    for (std::size_t i = 0; i < c.pools.size(); ++i) {
      if (c.pools[i].name == name) return i;
    }
    return SIZE_MAX;
  };
  for (listener_config& l : c.listeners) {
    if (!l.pool.empty()) {
      l.pool_index = find_pool(l.pool);
      if (l.pool_index == SIZE_MAX) return bad(l.where + ".pool", "no pool called '" + l.pool + "'");
    }
    if (l.tls() && !SLUICE_HAVE_TLS) {
      return bad(key_of(l.where, "tls"), "this build has no TLS (OpenSSL 3 was not found)");
    }
    if (!l.tls() && !l.ciphers.empty()) {
      const std::string k = !l.ciphers.ciphers.empty() ? "ciphers" : "ciphersuites";
      return bad(l.where.rfind("--", 0) == 0 ? "--tls-" + k : key_of(l.where, k),
                 "needs a certificate (tls, --tls-cert): this listener speaks plaintext");
    }
    if (l.mode == proxy_mode::tcp) {
      if (l.pool.empty()) return bad(l.where + ".pool", "a tcp listener needs a pool");
      if (c.pools[l.pool_index].key != hash_key::source) {
        return bad(l.where + ".pool", "pool '" + l.pool + "' hashes by host or path, which a tcp listener cannot see");
      }
    } else if (l.pool.empty() && l.routes.empty()) {
      return bad(l.where, "an http listener needs a pool or at least one route");
    }
    for (route_config& r : l.routes) {
      r.pool_index = find_pool(r.pool);
      if (r.pool_index == SIZE_MAX) return bad(r.where + ".pool", "no pool called '" + r.pool + "'");
      if (r.path_prefix.empty() || r.path_prefix.front() != '/') return bad(r.where + ".path_prefix", "must start with '/'");
      if (!host_is_valid(r.host)) return bad(r.where + ".host", "'" + r.host + "' is not a host name");
      if (!host_is_valid(r.sni)) return bad(r.where + ".sni", "'" + r.sni + "' is not a host name");
      if (!r.sni.empty() && !l.tls()) return bad(r.where + ".sni", "routing by SNI needs TLS on the listener ([[" +
                                                     l.where.substr(l.where.rfind(' ') + 1) + ".tls]])");
      if (l.mode == proxy_mode::tcp) {
        // A tcp listener sees no host or path: only the TLS server name.
        if (r.sni.empty() || !r.host.empty() || r.path_prefix != "/") {
          return bad(r.where, "a tcp listener routes by sni only (mode = \"http\" routes by host and path)");
        }
        if (c.pools[r.pool_index].key != hash_key::source) {
          return bad(r.where + ".pool", "pool '" + r.pool + "' hashes by host or path, which a tcp listener cannot see");
        }
      }
    }
  }
  // Two listeners on one address would share its connections (each loop's
  // socket has SO_REUSEPORT), and the admin endpoint on a listener's
  // address would take some of its clients: refuse both. Port 0 (any free
  // port) never collides.
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (same_socket(c.listeners[j].address, c.listeners[i].address)) {
        const listener_config& other = c.listeners[j];
        const std::string name = other.where.rfind("--", 0) == 0 ? "--listen=" + other.address_text
                                                                 : other.where.substr(other.where.rfind(' ') + 1);
        return bad(key_of(c.listeners[i].where, "address"),
                   c.listeners[i].address.to_string() + " takes the connections of " + name + " too");
      }
    }
    if (c.admin && same_socket(*c.admin, c.listeners[i].address)) {
      return bad(key_of(c.listeners[i].where, "address"), c.listeners[i].address.to_string() + " is also the admin address");
    }
  }
  if (c.low_water > c.high_water) return error{c.source + ": limits.low_water must not exceed limits.high_water", {}};
  if (c.http.max_request_line > c.http.max_header_bytes) {
    return error{c.source + ": limits.max_request_line must not exceed limits.max_header_bytes (the line is part of the head)",
                 {}};
  }
  return {};
}

std::string describe(const config& c) {
  std::string out;
  for (const listener_config& l : c.listeners) {
    out += "listener " + l.address.to_string() + " mode " + std::string(to_string(l.mode));
    if (!l.pool.empty()) out += " pool " + l.pool;
    for (std::size_t i = 0; i < l.certs.size(); ++i) out += (i == 0 ? " tls " : ", ") + l.certs[i].cert;
    out += "\n";
    for (const route_config& r : l.routes) {
      out += "  route" + (r.sni.empty() ? std::string() : " sni " + r.sni) + " host " +
             (r.host.empty() ? std::string("*") : r.host) + " path " + r.path_prefix + " -> " + r.pool + "\n";
    }
  }
  for (const pool_config& p : c.pools) {
    out += "pool " + p.name + " (" + std::string(to_string(p.policy)) + ", health check " +
           std::string(to_string(p.check.kind)) + "):";
    for (std::size_t i = 0; i < p.upstreams.size(); ++i) {
      // A host name shows the address it was resolved to, once, at start-up.
      const std::string address = p.upstreams[i].to_string();
      out += " " + p.upstream_names[i] + (p.upstream_names[i] == address ? "" : " (" + address + ")");
    }
    if (p.tls) {
      out += "; tls" + (p.verify ? " verify ca " + p.ca : std::string(" without verification")) +
             (p.sni.empty() ? std::string() : " sni " + p.sni);
    }
    out += "\n";
  }
  if (c.admin) out += "admin " + c.admin->to_string() + "\n";
  return out;
}

#if SLUICE_HAVE_TLS
namespace {

// A CA file: readable, holding at least one PEM certificate, the first one
// not expired. The message names the file and what is wrong.
result<void> check_ca_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return error::from_errno(errno, path + ": cannot read the CA file");
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  ERR_clear_error();
  if (cert == nullptr) return error{path + ": no PEM certificate in the CA file", {}};
  const bool expired = X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0;
  X509_free(cert);
  if (expired) return error{path + ": the CA certificate has expired", {}};
  return {};
}

// The cipher list and suites OpenSSL must accept (it refuses a list that
// names no cipher it knows), named by the key or flag that gave them.
result<void> check_ciphers(const tls_cipher_config& c, const std::string& where, const std::string& flag_prefix) {
  if (c.empty()) return {};
  const bool flag = where.rfind("--", 0) == 0;
  for (const bool suites : {false, true}) {
    tls::context_options o;
    o.alpn.clear();
    (suites ? o.ciphersuites : o.cipher_list) = suites ? c.ciphersuites : c.ciphers;
    if ((suites ? o.ciphersuites : o.cipher_list).empty()) continue;
    if (auto made = tls::context::make_client(o); !made) {
      const std::string name = suites ? "ciphersuites" : "ciphers";
      return error{(flag ? flag_prefix + name : key_of(where, name)) + ": " + made.err().message, {}};
    }
  }
  return {};
}

}  // namespace
#endif

result<void> check_tls_files(const config& c) {
#if SLUICE_HAVE_TLS
  for (const listener_config& l : c.listeners) {
    for (std::size_t i = 0; i < l.certs.size(); ++i) {
      if (auto ok = tls::check_certificate({l.certs[i].cert, l.certs[i].key}); !ok) {
        return error{l.cert_where[i] + ": " + ok.err().message, {}};
      }
    }
    if (auto ok = check_ciphers(l.ciphers, l.where, "--tls-"); !ok) return ok;
  }
  for (const pool_config& p : c.pools) {
    if (auto ok = check_ciphers(p.ciphers, p.where, "--upstream-tls-"); !ok) return ok;
    if (!p.tls || p.ca.empty()) continue;
    const std::string where = p.where.rfind("--", 0) == 0 ? std::string("--upstream-ca") : p.where + ".ca";
    if (auto ok = check_ca_file(p.ca); !ok) return error{where + ": " + ok.err().message, {}};
  }
  return {};
#else
  for (const listener_config& l : c.listeners) {
    if (l.tls()) return error{l.where + ": this build has no TLS (OpenSSL 3 was not found)", {}};
  }
  for (const pool_config& p : c.pools) {
    if (p.tls) return error{p.where + ": this build has no TLS (OpenSSL 3 was not found)", {}};
  }
  return {};
#endif
}

}  // namespace sluice::gateway
