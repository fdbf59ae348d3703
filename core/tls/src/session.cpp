#include "sluice/tls/session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

namespace sluice::tls {

// The BIO between OpenSSL and the session's chains: reads take the peer's
// records from in_, writes append records to out_. It never blocks: an empty
// input is "retry", and output always fits (or buffer memory ran out).
struct session_bio {
  static int read(BIO* b, char* buf, int len) {
    BIO_clear_retry_flags(b);
    auto* s = static_cast<session*>(BIO_get_data(b));
    if (s->in_ == nullptr || s->in_->empty() || len <= 0) {
      BIO_set_retry_read(b);
      return -1;
    }
    const std::size_t n = s->in_->copy_out(buf, static_cast<std::size_t>(len));
    s->in_->skip(n);
    return static_cast<int>(n);
  }
  static int write(BIO* b, const char* buf, int len) {
    BIO_clear_retry_flags(b);
    auto* s = static_cast<session*>(BIO_get_data(b));
    if (len <= 0) return 0;
    if (s->out_ == nullptr || !s->out_->write(std::string_view(buf, static_cast<std::size_t>(len)))) {
      s->out_of_memory_ = true;
      return -1;
    }
    return len;
  }
  static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }
  static int destroy(BIO*) { return 1; }
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice buffer chain");
      BIO_meth_set_read(made, read);
      BIO_meth_set_write(made, write);
      BIO_meth_set_ctrl(made, ctrl);
      BIO_meth_set_create(made, create);
      BIO_meth_set_destroy(made, destroy);
      return made;
    }();
    return m;
  }
};

namespace {

// Counts a TLS 1.2 renegotiation the peer started (OpenSSL refuses it:
// SSL_OP_NO_RENEGOTIATION).
void info_callback(const SSL* ssl, int where, int) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0 || SSL_version(ssl) >= TLS1_3_VERSION) return;
  auto* s = static_cast<session*>(SSL_get_app_data(ssl));
  if (s != nullptr && s->current() == state::open && s->owner() != nullptr) ++s->owner()->stats().renegotiations_refused;
}

// Keeps the session's chain pointers set for one call only.
struct io_scope {
  io_scope(buffer_chain*& in_slot, buffer_chain*& out_slot, buffer_chain* in, buffer_chain* out) noexcept
      : in_slot_(in_slot), out_slot_(out_slot) {
    in_slot_ = in;
    out_slot_ = out;
  }
  ~io_scope() {
    in_slot_ = nullptr;
    out_slot_ = nullptr;
  }
  buffer_chain*& in_slot_;
  buffer_chain*& out_slot_;
};

}  // namespace

saved_session& saved_session::operator=(saved_session&& other) noexcept {
  if (this != &other) {
    if (s_ != nullptr) SSL_SESSION_free(s_);
    s_ = other.s_;
    other.s_ = nullptr;
  }
  return *this;
}

saved_session::~saved_session() {
  if (s_ != nullptr) SSL_SESSION_free(s_);
}

bool session::start(context& ctx, buffer_chain* out, std::string_view server_name,
                    const saved_session* resume) noexcept {
  reset();
  ssl_ = SSL_new(ctx.native());
  if (ssl_ == nullptr) return false;
  BIO* b = BIO_new(session_bio::method());
  if (b == nullptr) {
    reset();
    return false;
  }
  BIO_set_data(b, this);
  SSL_set_bio(ssl_, b, b);
  SSL_set_app_data(ssl_, this);
  SSL_set_info_callback(ssl_, info_callback);
  ctx_ = &ctx;
  state_ = state::handshaking;
  error_ = close_reason::none;
  out_of_memory_ = false;
  peer_notified_ = false;
  if (ctx.server()) {
    SSL_set_accept_state(ssl_);
    return true;
  }
  SSL_set_connect_state(ssl_);
  if (!server_name.empty()) {
    std::string name(server_name);  // once per connection: OpenSSL wants a C string
    SSL_set_tlsext_host_name(ssl_, name.c_str());
  }
  const std::string& wire = ctx.alpn_wire();
  if (!wire.empty()) {
    SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  // Before the hello is written: it carries the ticket.
  if (resume != nullptr && !resume->empty()) SSL_set_session(ssl_, resume->native());
  if (out != nullptr) {
    io_scope io(in_, out_, nullptr, out);
    after_io(SSL_do_handshake(ssl_));
    return state_ != state::failed;
  }
  return true;
}

void session::reset() noexcept {
  if (ssl_ != nullptr) {
    // SSL_free marks the SSL_SESSION unresumable unless a shutdown was
    // sent, and a saved_session shares that object: a connection that ended
    // without close_notify (a reset, an idle close) must not spoil the
    // client's saved ticket. A failed or unfinished handshake still does.
    if (state_ == state::open || state_ == state::peer_closed) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN);
    SSL_free(ssl_);  // frees the BIO too
  }
  ssl_ = nullptr;
  ctx_ = nullptr;
  state_ = state::idle;
  error_ = close_reason::none;
  out_of_memory_ = false;
  peer_notified_ = false;
  ERR_clear_error();
}

state session::fail(close_reason why) noexcept {
  if (state_ == state::failed) return state_;
  if (ctx_ != nullptr) {
    auto& st = ctx_->stats();
    if (why == close_reason::resource_limit) ++st.out_of_memory;
    (state_ == state::handshaking ? st.handshake_failures : st.record_errors) += 1;
  }
  state_ = state::failed;
  error_ = why;
  ERR_clear_error();
  return state_;
}

void session::check_handshake() noexcept {
  if (state_ != state::handshaking || !SSL_is_init_finished(ssl_)) return;
  state_ = state::open;
  auto& st = ctx_->stats();
  ++st.handshakes;
  if (SSL_session_reused(ssl_) != 0) ++st.resumed;
  (SSL_version(ssl_) >= TLS1_3_VERSION ? st.tls13 : st.tls12) += 1;
}

// After an OpenSSL call that returned `ret`: the state it leaves.
state session::after_io(int ret) noexcept {
  check_handshake();
  if (ret > 0) return state_;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return state_;
    case SSL_ERROR_ZERO_RETURN:
      if (!peer_notified_) {
        peer_notified_ = true;
        ++ctx_->stats().close_notify_received;
      }
      if (state_ != state::closed) state_ = state::peer_closed;
      return state_;
    case SSL_ERROR_SYSCALL:
      return fail(out_of_memory_ ? close_reason::resource_limit : close_reason::protocol_error);
    default:
      return fail(out_of_memory_ ? close_reason::resource_limit : close_reason::protocol_error);
  }
}

state session::receive(buffer_chain& in, buffer_chain& plain, buffer_chain& out) noexcept {
  if (ssl_ == nullptr || state_ == state::failed || state_ == state::peer_closed || peer_notified_) return state_;
  io_scope io(in_, out_, &in, &out);
  for (;;) {
    if (in.empty() && state_ != state::handshaking) break;
    if (state_ == state::handshaking) {
      const int r = SSL_do_handshake(ssl_);
      if (r <= 0) return after_io(r);
      check_handshake();
      continue;
    }
    auto room = plain.reserve(1);
    if (room.empty()) return fail(close_reason::resource_limit);
    std::size_t got = 0;
    if (SSL_read_ex(ssl_, room.data(), room.size(), &got) == 1) {
      plain.commit(got);
      continue;
    }
    const int err = SSL_get_error(ssl_, 0);
    const state s = after_io(0);
    if (err != SSL_ERROR_WANT_READ || s != state::open) return s;
    break;
  }
  // A record may be buffered inside OpenSSL past what the input shows.
  while (state_ == state::open && SSL_pending(ssl_) > 0) {
    auto room = plain.reserve(1);
    if (room.empty()) return fail(close_reason::resource_limit);
    std::size_t got = 0;
    if (SSL_read_ex(ssl_, room.data(), room.size(), &got) != 1) return after_io(0);
    plain.commit(got);
  }
  return state_;
}

bool session::send(buffer_chain& plain, buffer_chain& out) noexcept {
  if (state_ == state::failed || state_ == state::closed) return false;
  if (state_ != state::open && state_ != state::peer_closed) return true;
  io_scope io(in_, out_, nullptr, &out);
  // Small pieces are gathered into one record (a response head and its body
  // in different segments); large ones are sealed from where they lie.
  constexpr std::size_t record = 16 * 1024;
  char gather[record];
  while (!plain.empty()) {
    std::string_view piece = plain.piece_at(0);
    if (piece.size() < record && plain.size() > piece.size()) {
      const std::size_t n = plain.copy_out(gather, sizeof gather);
      piece = std::string_view(gather, n);
    }
    std::size_t written = 0;
    if (SSL_write_ex(ssl_, piece.data(), piece.size(), &written) != 1) {
      after_io(0);
      if (state_ != state::failed) fail(out_of_memory_ ? close_reason::resource_limit : close_reason::protocol_error);
      return false;
    }
    plain.skip(written);
  }
  plain.release();
  return true;
}

void session::close(buffer_chain& out) noexcept {
  if (ssl_ == nullptr || (state_ != state::open && state_ != state::peer_closed)) return;
  io_scope io(in_, out_, nullptr, &out);
  SSL_shutdown(ssl_);
  ERR_clear_error();
  ++ctx_->stats().close_notify_sent;
  state_ = state::closed;
}

void session::transport_closed() noexcept {
  if (ctx_ == nullptr) return;
  if (state_ == state::open || state_ == state::handshaking) ++ctx_->stats().truncated;
}

void session::connection_closed(close_reason why) noexcept {
  if (ctx_ == nullptr || state_ != state::handshaking) return;
  if (why == close_reason::read_timeout || why == close_reason::idle_timeout || why == close_reason::write_timeout) {
    ++ctx_->stats().handshake_timeouts;
  }
}

std::string_view session::version() const noexcept {
  if (ssl_ == nullptr || state_ == state::handshaking || state_ == state::idle) return {};
  return SSL_get_version(ssl_);
}

std::string_view session::alpn() const noexcept {
  if (ssl_ == nullptr) return {};
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(p), len);
}

bool session::resumed() const noexcept { return ssl_ != nullptr && SSL_session_reused(ssl_) != 0; }

saved_session session::save() const noexcept {
  if (ssl_ == nullptr || ctx_ == nullptr || ctx_->server()) return {};
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (s != nullptr && SSL_SESSION_is_resumable(s) == 0) {
    SSL_SESSION_free(s);
    s = nullptr;
  }
  return saved_session(s);
}

std::string_view session::server_name() const noexcept {
  if (ssl_ == nullptr) return {};
  const char* n = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return n == nullptr ? std::string_view{} : std::string_view(n);
}

}  // namespace sluice::tls
