#include "http_protocol.hpp"

#include <cstring>

namespace sluice::bench {

// libhttp-parser callbacks for one response at a time: checks as the parts
// arrive, and a pause at the end of each response so receive() returns it.
struct http_callbacks {
  using state = http_protocol::conn_state;
  static state& of(http_parser* p) { return *static_cast<state*>(p->data); }
  static void wrong(state& st, const char* why) {
    if (!st.wrong) st.why = why;
    st.wrong = true;
  }

  static int headers_complete(http_parser* p) {
    state& st = of(p);
    if (p->status_code != st.owner->expect_status_) wrong(st, "unexpected status code");
    if (st.owner->check_body_ && (p->flags & F_CONTENTLENGTH) != 0 &&
        p->content_length != st.owner->expect_body_.size()) {
      wrong(st, "Content-Length differs from the expected body's");
    }
    return 0;
  }
  static int body(http_parser* p, const char* at, std::size_t n) {
    state& st = of(p);
    if (st.owner->check_body_) {
      const std::string& want = st.owner->expect_body_;
      if (st.body_seen + n > want.size() || std::memcmp(at, want.data() + st.body_seen, n) != 0) {
        wrong(st, "body differs from --expect-body");
      }
    }
    st.body_seen += n;
    return 0;
  }
  static int message_complete(http_parser* p) {
    state& st = of(p);
    if (st.owner->check_body_ && st.body_seen != st.owner->expect_body_.size()) wrong(st, "body shorter than expected");
    http_parser_pause(p, 1);
    return 0;
  }
  static const http_parser_settings settings;
};

const http_parser_settings http_callbacks::settings = {
    nullptr,                          // on_message_begin
    nullptr,                          // on_url
    nullptr,                          // on_status
    nullptr,                          // on_header_field
    nullptr,                          // on_header_value
    &http_callbacks::headers_complete, // on_headers_complete
    &http_callbacks::body,            // on_body
    &http_callbacks::message_complete, // on_message_complete
    nullptr,                          // on_chunk_header
    nullptr,                          // on_chunk_complete
};

http_protocol::http_protocol(const settings& s)
    : expect_status_(s.expect_status), check_body_(s.check_body), expect_body_(s.expect_body) {
  request_ = "GET " + s.path + " HTTP/1.1\r\nHost: " + s.target_text + "\r\n\r\n";
}

void http_protocol::open(conn_state& st) noexcept {
  http_parser_init(&st.parser, HTTP_RESPONSE);
  st.parser.data = &st;
  st.owner = this;
  st.body_seen = 0;
  st.wrong = false;
  st.why = nullptr;
}

reply_result http_protocol::receive(buffer_chain& in, conn_state& st, std::uint32_t, std::uint64_t,
                                    std::string& why) noexcept {
  std::size_t bytes = 0;
  while (!in.empty()) {
    std::string_view piece;
    in.for_each_piece([&piece](std::string_view p) {
      piece = p;
      return false;
    });
    const std::size_t n = http_parser_execute(&st.parser, &http_callbacks::settings, piece.data(), piece.size());
    (void)in.skip(n);
    bytes += n;
    const auto err = static_cast<http_errno>(st.parser.http_errno);
    if (err == HPE_PAUSED) {
      http_parser_pause(&st.parser, 0);
      const bool wrong = st.wrong;
      if (wrong) why = st.why;
      st.body_seen = 0;
      st.wrong = false;
      return {wrong ? reply::mismatch : reply::ok, bytes};
    }
    if (err != HPE_OK) {
      why = std::string("response cannot be parsed: ") + http_errno_description(err);
      return {reply::broken, bytes};
    }
  }
  return {reply::none, bytes};
}

}  // namespace sluice::bench
