#include "tls_link.hpp"

#if SLUICE_HAVE_TLS

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "sluice/core/loop_base.hpp"

namespace sluice::gateway {

namespace {

// The first byte of every TLS record that may open a connection: a
// handshake record (content type 22).
constexpr char handshake_record = 0x16;

}  // namespace

void tls_link::begin(connection& c, tls_side_stats& st, bool server) noexcept {
  st_ = &st;
  loop_ = &c.loop();
  conn_ = c.handle();
  counted_ = false;
  // A server checks that the client's first bytes are a handshake record; a
  // client gets answers to what it sent, which OpenSSL checks.
  first_byte_ = server;
  link_.set_pool(&loop_->pool());
}

bool tls_link::start_server(tls::context& ctx, connection& c, tls_side_stats& st, duration deadline) noexcept {
  begin(c, st, true);
  resume_ = nullptr;
  if (!tls_.start(ctx)) {
    count_failure(tls_failure::memory);
    c.close(close_reason::resource_limit);
    return false;
  }
  loop_->timers().arm_after(timer_, deadline);
  return true;
}

bool tls_link::start_client(tls::context& ctx, connection& c, tls_side_stats& st, duration deadline,
                            const std::string& name, bool check_name, tls::saved_session* resume) noexcept {
  begin(c, st, false);
  resume_ = resume;
  if (!tls_.start(ctx, nullptr, name, resume) || (check_name && !name.empty() && SSL_set1_host(tls_.native(), name.c_str()) != 1)) {
    count_failure(tls_failure::memory);
    c.close(close_reason::resource_limit);
    return false;
  }
  loop_->timers().arm_after(timer_, deadline);
  (void)pump(c);  // writes the hello
  return c.is_open();
}

bool tls_link::pump(connection& c) noexcept {
  if (!active() || !c.is_open()) return false;
  if (buffer_chain& records = link_.records_in(c); first_byte_ && !records.empty()) {
    first_byte_ = false;
    char b = 0;
    (void)records.copy_out(&b, 1);
    if (b != handshake_record) {
      // Plaintext (an HTTP client on the TLS port) or garbage: a clean
      // close, no answer.
      count_failure(tls_failure::not_tls);
      c.close(close_reason::protocol_error);
      return false;
    }
  }
  const bool done = link_.pump(c);
  // TLS 1.3 tickets come after the handshake, in records read here.
  if (resume_ != nullptr && active() && (tls_.current() == tls::state::open || tls_.current() == tls::state::peer_closed)) {
    save_session();
  }
  return done;
}

void tls_link::handshake_done(connection&) noexcept {
  timer_.cancel();
  counted_ = true;
  st_->handshakes.add();
  if (tls_.resumed()) st_->resumed.add();
  (SSL_version(tls_.native()) >= TLS1_3_VERSION ? st_->tls13 : st_->tls12).add();
}

void tls_link::transport_closed(connection&) noexcept {
  if (!active()) return;
  tls_.transport_closed();
  if (!counted_) {
    count_failure(tls_failure::truncated);
    timer_.cancel();
  }
}

void tls_link::on_close(close_reason why) noexcept {
  if (!active()) return;
  if (!counted_) {
    switch (why) {
      case close_reason::read_timeout:
      case close_reason::idle_timeout:
      case close_reason::write_timeout:
        count_failure(tls_failure::timeout);
        break;
      case close_reason::peer_closed:
      case close_reason::peer_reset:
        count_failure(tls_failure::truncated);
        break;
      case close_reason::resource_limit:
        count_failure(tls_failure::memory);
        break;
      default:
        count_failure(tls_failure::other);
        break;
    }
  }
  timer_.cancel();
  if (resume_ != nullptr && (tls_.current() == tls::state::open || tls_.current() == tls::state::peer_closed)) {
    save_session();  // a connection closed before a pump saw its session resumable
  }
  resume_ = nullptr;
  link_.reset();
  st_ = nullptr;
}

void tls_link::save_session() noexcept {
  tls::saved_session s = tls_.save();
  if (s.empty()) return;
  // A resumed TLS 1.3 connection holds the session it was offered until the
  // server's fresh ticket replaces it (a new SSL_SESSION): wait for that one,
  // since a server may take each ticket once only.
  if (tls_.resumed() && s.native() == resume_->native() && SSL_version(tls_.native()) >= TLS1_3_VERSION) return;
  *resume_ = std::move(s);
  resume_ = nullptr;
}

void tls_link::count_failure(tls_failure why) noexcept {
  if (counted_ || st_ == nullptr) return;
  counted_ = true;
  st_->failures[static_cast<std::size_t>(why)].add();
}

void tls_link::failed(connection&) noexcept {
  timer_.cancel();
  if (tls_.error() == close_reason::resource_limit) {
    count_failure(tls_failure::memory);
  } else if (counted_) {
    st_->failures[static_cast<std::size_t>(tls_failure::record)].add();
  } else if (!tls_.owner()->server() && SSL_get_verify_result(tls_.native()) != X509_V_OK) {
    count_failure(tls_failure::verify);
  } else {
    count_failure(tls_failure::handshake);
  }
}

void tls_link::expired() noexcept {
  connection* c = loop_ != nullptr ? loop_->get(conn_) : nullptr;
  if (c == nullptr || !handshaking()) return;
  count_failure(tls_failure::timeout);
  c->close(close_reason::read_timeout);
}

}  // namespace sluice::gateway

#endif
