#include "sluice/core/http/response_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <climits>
#include <new>

namespace sluice::http {

// The bridge from libhttp-parser's C callbacks to response_parser. Offsets
// are counted from the first byte of the response in the input.
struct response_callbacks {
  static response_parser& self(http_parser* p) noexcept { return *static_cast<response_parser*>(p->data); }
  static http_parser* c(response_parser& r) noexcept {
    return std::launder(reinterpret_cast<http_parser*>(r.c_parser_));
  }
  static constexpr std::uint32_t u32(std::size_t v) noexcept { return static_cast<std::uint32_t>(v); }

  static int too_long(response_parser& r, std::size_t end) noexcept {
    if (end <= r.limits_.max_header_bytes) return 0;
    r.error_reason_ = "response head longer than the limit";
    return -1;
  }

  static int status(http_parser* p, const char* at, std::size_t n) {
    response_parser& r = self(p);
    const std::size_t off = r.offset_of(at);
    if (r.last_ == response_parser::last_data::reason) {
      r.reason_.len += u32(n);
    } else {
      r.reason_ = {u32(off), u32(n)};
    }
    r.last_ = response_parser::last_data::reason;
    return too_long(r, off + n);
  }

  static int header_field(http_parser* p, const char* at, std::size_t n) {
    response_parser& r = self(p);
    if (r.head_done_) return 0;  // trailer fields of a chunked body: passed on, not parsed
    const std::size_t off = r.offset_of(at);
    if (r.last_ == response_parser::last_data::name) {
      r.fields_[r.header_count_ - 1].name.len += u32(n);
    } else {
      if (r.header_count_ == r.fields_.size()) {
        r.error_reason_ = "more response header fields than the limit";
        return -1;
      }
      r.fields_[r.header_count_++] = {{u32(off), u32(n)}, {}};
    }
    r.last_ = response_parser::last_data::name;
    return too_long(r, off + n);
  }

  static int header_value(http_parser* p, const char* at, std::size_t n) {
    response_parser& r = self(p);
    if (r.head_done_) return 0;
    const std::size_t off = r.offset_of(at);
    response_parser::span& v = r.fields_[r.header_count_ - 1].value;
    if (r.last_ == response_parser::last_data::value) {
      v.len = u32(off + n - v.off);  // continued in the next segment (or folded)
    } else {
      v = {u32(off), u32(n)};
    }
    r.last_ = response_parser::last_data::value;
    return too_long(r, off + n);
  }

  static int headers_complete(http_parser* p) {
    response_parser& r = self(p);
    r.head_done_ = true;
    r.last_ = response_parser::last_data::none;
    r.status_code_ = static_cast<int>(p->status_code);
    r.minor_ = p->http_minor;
    if (p->http_major != 1) {
      r.error_reason_ = "response is not HTTP/1.x";
      return -1;
    }
    if (r.status_code_ < 100 || r.status_code_ > 599) {
      r.error_reason_ = "response status outside 100-599";  // RFC 9110 15: invalid
      return -1;
    }
    if (r.status_code_ == 101) {
      r.error_reason_ = "protocol upgrades (101) are not supported";
      return -1;
    }
    // RFC 9112 6.3, in its order: no body whatever the fields say; chunked;
    // Content-Length; until the connection closes.
    using kind = response_parser::framing_kind;
    const bool no_body_status = r.informational() || r.status_code_ == 204 || r.status_code_ == 304;
    r.has_length_ = (p->flags & F_CONTENTLENGTH) != 0;
    r.declared_length_ = r.has_length_ ? p->content_length : 0;
    if (r.head_request_ || no_body_status) {
      r.framing_ = kind::none;
    } else if ((p->flags & F_CHUNKED) != 0) {
      r.framing_ = kind::chunked;
    } else if (r.has_length_) {
      r.framing_ = p->content_length == 0 ? kind::none : kind::length;
      r.body_length_ = p->content_length;
    } else {
      r.framing_ = kind::close;
    }
    // Stop to learn where the head ends: the parser stands on the head's
    // last LF, which it consumes when fed again.
    http_parser_pause(p, 1);
    // 1: "no body" to the C parser. Only chunked bodies go through it; a
    // Content-Length or close-delimited body is split off the input here.
    return r.framing_ == kind::chunked ? 0 : 1;
  }

  static int body(http_parser* p, const char* at, std::size_t n) {
    // Chunk data only (the other bodies skip the C parser). Stop after each
    // piece so it can be split off the input before more framing is parsed.
    response_parser& r = self(p);
    r.piece_off_ = r.offset_of(at);
    r.piece_len_ = n;
    r.piece_ = true;
    http_parser_pause(p, 1);
    return 0;
  }

  static int message_complete(http_parser* p) {
    response_parser& r = self(p);
    r.message_done_ = true;
    r.keep_alive_ = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);  // one response per parse() result
    return 0;
  }

  static const http_parser_settings settings;
};

const http_parser_settings response_callbacks::settings = {
    nullptr,                                // on_message_begin
    nullptr,                                // on_url (requests only)
    &response_callbacks::status,            // on_status
    &response_callbacks::header_field,      // on_header_field
    &response_callbacks::header_value,      // on_header_value
    &response_callbacks::headers_complete,  // on_headers_complete
    &response_callbacks::body,              // on_body: chunk data
    &response_callbacks::message_complete,  // on_message_complete
    nullptr,                                // on_chunk_header
    nullptr,                                // on_chunk_complete
};

response_parser::response_parser(const limits& l) : limits_(l) {
  static_assert(sizeof(http_parser) <= sizeof(c_parser_) && alignof(http_parser) <= 8);
  new (c_parser_) http_parser{};
  fields_.resize(std::max<std::size_t>(limits_.max_headers, 1));
  http_parser_init(response_callbacks::c(*this), HTTP_RESPONSE);
  response_callbacks::c(*this)->data = this;
}

response_parser::~response_parser() = default;

void response_parser::restart() noexcept {
  header_count_ = 0;
  head_ = nullptr;
  head_size_ = 0;
  reason_ = {};
  status_code_ = 0;
  minor_ = 0;
  framing_ = framing_kind::none;
  has_length_ = keep_alive_ = piece_ = false;
  declared_length_ = body_length_ = body_left_ = 0;
  head_done_ = message_done_ = false;
  phase_ = phase::head;
  last_ = last_data::none;
  fed_ = 0;
  error_reason_ = {};
  chunks_.reset();
}

void response_parser::reset() noexcept {
  http_parser* p = response_callbacks::c(*this);
  http_parser_init(p, HTTP_RESPONSE);
  p->data = this;
  restart();
  head_request_ = false;
}

void response_parser::expect(verb request_method) noexcept {
  // Each response is parsed from a fresh C parser: whatever the last one
  // left (an error, the end of a non-persistent connection, a response cut
  // short) cannot leak into this one.
  reset();
  head_request_ = request_method == verb::head;
}

response_parser::status response_parser::fail(std::string_view why) noexcept {
  if (error_reason_.empty()) error_reason_ = why;
  phase_ = phase::failed;
  return status::error;
}

std::optional<std::string_view> response_parser::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < header_count_; ++i) {
    if (iequals(view(fields_[i].name), name)) return header(i).value;
  }
  return std::nullopt;
}

namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

const char* response_parser::check_head(std::string_view head) const noexcept {
  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF; the
  // SP before an empty reason is often left out, and accepted.
  std::string_view line = grammar::first_line(head);
  if (line.empty()) return "malformed status line";  // no LF: lines ended by bare CRs
  line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !is_digit(line[5]) || line[6] != '.' || !is_digit(line[7]) ||
      line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    return "malformed status line";
  }
  for (char c : line.substr(12)) {
    const auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return "a control byte in the status line";
  }
  if (const char* bad = grammar::check_field_lines(head.substr(grammar::first_line(head).size()))) return bad;
  std::size_t codings = 0;
  for (std::size_t i = 0; i < header_count_; ++i) {
    const header_field f = header(i);
    if (!iequals(f.name, "transfer-encoding")) continue;
    if (++codings > 1 || !iequals(f.value, "chunked")) return "a transfer coding other than chunked";
    if (minor_ == 0) return "Transfer-Encoding in an HTTP/1.0 response";
    if (has_length_) return "both Transfer-Encoding and Content-Length";
  }
  return nullptr;
}

response_parser::status response_parser::parse(buffer_chain& in, buffer_chain& out) noexcept {
  switch (phase_) {
    case phase::failed:
      return status::error;
    case phase::bodiless:
      phase_ = phase::done;
      return status::complete;
    case phase::done: {
      // The next response on a persistent connection (after a 1xx, the final
      // one to the same request): same request method.
      const bool head_request = head_request_;
      restart();
      head_request_ = head_request;
      break;
    }
    case phase::length_body: {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, in.size()));
      if (n != 0 && !in.take(n, out)) return fail("out of buffer descriptors");
      body_left_ -= n;
      if (body_left_ == 0) {
        phase_ = phase::done;
        return status::complete;
      }
      return n != 0 ? status::body : status::need_more;
    }
    case phase::close_body: {
      const std::size_t n = in.size();
      if (n == 0) return status::need_more;
      if (!in.take(n, out)) return fail("out of buffer descriptors");
      return status::body;
    }
    case phase::chunked_body:
      return parse_chunked(in, out);
    case phase::head:
      break;
  }
  http_parser* p = response_callbacks::c(*this);
  for (;;) {
    if (fed_ >= in.size()) {
      if (fed_ > limits_.max_header_bytes) return fail("response head longer than the limit");
      return status::need_more;
    }
    const std::string_view piece = in.piece_at(fed_);
    // Right after the head, feed its last LF alone: the C parser then ends
    // a bodiless message there, and consumes no body byte yet.
    const bool feeding_lf = head_done_;
    const std::size_t len = feeding_lf ? 1 : piece.size();
    feed_ptr_ = piece.data();
    feed_base_ = fed_;
    fed_ += http_parser_execute(p, &response_callbacks::settings, piece.data(), len);
    const auto err = static_cast<http_errno>(HTTP_PARSER_ERRNO(p));
    if (err != HPE_OK && err != HPE_PAUSED) {
      return fail(err == HPE_HEADER_OVERFLOW ? "response head longer than the parser accepts"
                                             : http_errno_description(err));
    }
    if (err == HPE_PAUSED) http_parser_pause(p, 0);
    if (!feeding_lf) continue;  // the head is not complete, or its LF is not fed yet
    // The head, LF included, is fed: consume it and hand it out. A head
    // that spans segments is copied once into the pool's scratch memory.
    head_size_ = fed_;
    // The same limit whether the head came at once or in pieces (in
    // pieces, need_more refuses it as soon as it is passed).
    if (head_size_ > limits_.max_header_bytes) return fail("response head longer than the limit");
    auto head = in.next(head_size_);
    if (!head) return fail("out of buffer memory");
    head_ = head->data();
    fed_ = 0;
    if (const char* bad = check_head(*head)) return fail(bad);
    switch (framing_) {
      case framing_kind::none:
        phase_ = phase::bodiless;
        break;
      case framing_kind::length:
        phase_ = phase::length_body;
        body_left_ = body_length_;
        break;
      case framing_kind::chunked:
        phase_ = phase::chunked_body;
        break;
      case framing_kind::close:
        phase_ = phase::close_body;
        keep_alive_ = false;
        break;
    }
    return status::head;
  }
}

bool response_parser::drop_framing(buffer_chain& in, std::size_t n) noexcept {
  if (!chunks_.feed(in, 0, n)) return false;
  (void)in.skip(n);
  return true;
}

response_parser::status response_parser::parse_chunked(buffer_chain& in, buffer_chain& out) noexcept {
  http_parser* p = response_callbacks::c(*this);
  for (;;) {
    if (fed_ >= in.size()) return status::need_more;
    const std::string_view piece = in.piece_at(fed_);
    feed_ptr_ = piece.data();
    feed_base_ = fed_;
    piece_ = false;
    fed_ += http_parser_execute(p, &response_callbacks::settings, piece.data(), piece.size());
    const auto err = static_cast<http_errno>(HTTP_PARSER_ERRNO(p));
    if (err != HPE_OK && err != HPE_PAUSED) return fail(http_errno_description(err));
    if (err == HPE_PAUSED) http_parser_pause(p, 0);
    // What the C parser consumed is chunk framing around at most one piece
    // of data: the framing is checked and dropped, the data handed on.
    if (piece_) {
      const std::size_t after = fed_ - piece_off_ - piece_len_;
      fed_ = 0;
      if (!drop_framing(in, piece_off_)) return fail("malformed chunk framing");
      if (!in.take(piece_len_, out)) return fail("out of buffer descriptors");
      if (!drop_framing(in, after)) return fail("malformed chunk framing");
    } else {
      const std::size_t n = fed_;
      fed_ = 0;
      if (!drop_framing(in, n)) return fail("malformed chunk framing");
    }
    if (message_done_) {
      if (!chunks_.done()) return fail("malformed chunk framing");
      phase_ = phase::done;
      return status::complete;
    }
    if (piece_) return status::body;
  }
}

response_parser::status response_parser::finish(buffer_chain& out) noexcept {
  (void)out;  // every body byte was handed on by parse() already
  if (phase_ == phase::failed) return status::error;
  if (phase_ == phase::done || phase_ == phase::bodiless || phase_ == phase::close_body) {
    keep_alive_ = keep_alive_ && phase_ != phase::close_body;
    phase_ = phase::done;
    return status::complete;
  }
  return fail(phase_ == phase::head && fed_ == 0 ? "connection closed before a response"
                                                 : "connection closed in the middle of a response");
}

}  // namespace sluice::http
