#include "sluice/core/http/request_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cassert>
#include <new>

namespace sluice::http {

// The bridge between libhttp-parser's C callbacks and request_parser. Every
// callback returns 0 to go on; a nonzero return stops the C parser with an
// error after request_parser::fail() recorded the HTTP status.
namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

struct parser_callbacks {
  static request_parser& self(http_parser* p) noexcept { return *static_cast<request_parser*>(p->data); }
  static http_parser* c(request_parser& r) noexcept {
    return std::launder(reinterpret_cast<http_parser*>(r.c_parser_));
  }
  static constexpr std::uint32_t u32(std::size_t v) noexcept { return static_cast<std::uint32_t>(v); }

  static int url(http_parser* p, const char* at, std::size_t n) {
    request_parser& r = self(p);
    const std::size_t off = r.offset_of(at);
    if (r.last_ == request_parser::last_data::url) {
      r.req_.target_.len += u32(n);  // the rest of a target split across segments
    } else {
      r.req_.target_ = {u32(off), u32(n)};
    }
    r.last_ = request_parser::last_data::url;
    if (off + n > r.limits_.max_request_line) return r.fail(414, "request line longer than the limit");
    return 0;
  }

  static int header_field(http_parser* p, const char* at, std::size_t n) {
    request_parser& r = self(p);
    if (!r.in_head_) return 0;  // a chunked body's trailer fields are not handed out
    const std::size_t off = r.offset_of(at);
    if (!r.line_done_) {
      r.line_done_ = true;
      // The first field starts right after the request line and its CRLF.
      if (off > r.limits_.max_request_line + 2) return r.fail(414, "request line longer than the limit");
    }
    request& q = r.req_;
    if (r.last_ == request_parser::last_data::name) {
      q.fields_[q.header_count_ - 1].name.len += u32(n);
    } else {
      if (q.header_count_ == q.fields_.size()) return r.fail(431, "more header fields than the limit");
      q.fields_[q.header_count_++] = {{u32(off), u32(n)}, {}};
    }
    r.last_ = request_parser::last_data::name;
    if (off + n > r.limits_.max_header_bytes) return r.fail(431, "request head longer than the limit");
    return 0;
  }

  static int header_value(http_parser* p, const char* at, std::size_t n) {
    request_parser& r = self(p);
    if (!r.in_head_) return 0;
    const std::size_t off = r.offset_of(at);
    request::span& v = r.req_.fields_[r.req_.header_count_ - 1].value;
    if (r.last_ == request_parser::last_data::value) {
      // Split across segments, the pieces touch; a gap is obs-fold (a value
      // continued on the next line), which RFC 9112 lets a server refuse.
      if (off != v.off + v.len) return r.fail(400, "obsolete line folding in a header field");
      v.len += u32(n);
    } else {
      v = {u32(off), u32(n)};
    }
    r.last_ = request_parser::last_data::value;
    if (off + n > r.limits_.max_header_bytes) return r.fail(431, "request head longer than the limit");
    return 0;
  }

  static int headers_complete(http_parser* p) {
    request_parser& r = self(p);
    request& q = r.req_;
    r.in_head_ = false;
    r.line_done_ = true;
    r.last_ = request_parser::last_data::none;
    q.method_ = to_verb(p->method);
    q.method_name_ = http_method_str(static_cast<http_method>(p->method));
    q.major_ = p->http_major;
    q.minor_ = p->http_minor;
    if ((p->flags & F_CHUNKED) != 0) {
      q.chunked_ = true;
      // Stop here to learn where the head ends: the C parser gives no
      // position to this callback. Execution returns before the head's
      // final LF, which it consumes when fed again.
      r.event_ = request_parser::event::head_done;
      http_parser_pause(p, 1);
      return 0;
    }
    if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > 0) {
      if (p->content_length > r.limits_.max_body) return r.fail(413, "request body larger than the limit");
      q.content_length_ = p->content_length;
      r.body_left_ = p->content_length;
      // 1 = "no body" to the C parser: the message completes here, and
      // request_parser splits the body off the input itself, zero copy.
      return 1;
    }
    return 0;
  }

  static int chunk_header(http_parser* p) {
    request_parser& r = self(p);
    // p->content_length is this chunk's size.
    if (p->content_length > r.limits_.max_body - std::min(r.limits_.max_body, r.body_size_)) {
      return r.fail(413, "request body larger than the limit");
    }
    return 0;
  }

  static int body(http_parser* p, const char* at, std::size_t n) {
    request_parser& r = self(p);
    // Only chunked bodies reach here (Content-Length bodies skip the C
    // parser). Stop after each piece so it can be split off the input before
    // more framing is parsed.
    r.piece_off_ = r.offset_of(at);
    r.piece_len_ = n;
    r.event_ = request_parser::event::body_piece;
    http_parser_pause(p, 1);
    return 0;
  }

  static int message_complete(http_parser* p) {
    request_parser& r = self(p);
    r.req_.keep_alive_ = http_should_keep_alive(p) != 0;
    r.event_ = request_parser::event::message_done;
    // One request per parse() call: the next pipelined one waits.
    http_parser_pause(p, 1);
    return 0;
  }

  static verb to_verb(unsigned m) noexcept {
    switch (m) {
      case HTTP_GET: return verb::get;
      case HTTP_HEAD: return verb::head;
      case HTTP_POST: return verb::post;
      case HTTP_PUT: return verb::put;
      case HTTP_DELETE: return verb::delete_;
      case HTTP_OPTIONS: return verb::options;
      case HTTP_PATCH: return verb::patch;
      case HTTP_CONNECT: return verb::connect;
      case HTTP_TRACE: return verb::trace;
      default: return verb::other;
    }
  }

  static const http_parser_settings settings;
};

const http_parser_settings parser_callbacks::settings = {
    nullptr,                             // on_message_begin
    &parser_callbacks::url,              // on_url
    nullptr,                             // on_status (responses only)
    &parser_callbacks::header_field,     // on_header_field
    &parser_callbacks::header_value,     // on_header_value
    &parser_callbacks::headers_complete, // on_headers_complete
    &parser_callbacks::body,             // on_body
    &parser_callbacks::message_complete, // on_message_complete
    &parser_callbacks::chunk_header,     // on_chunk_header
    nullptr,                             // on_chunk_complete
};

request_parser::request_parser(const http::limits& l, body_mode mode) : limits_(l), stream_(mode == body_mode::stream) {
  static_assert(sizeof(http_parser) <= sizeof(c_parser_) && alignof(http_parser) <= 8);
  new (c_parser_) http_parser{};
  req_.fields_.resize(std::max<std::size_t>(limits_.max_headers, 1));
  reset();
}

request_parser::~request_parser() = default;

void request_parser::reset() noexcept {
  http_parser* p = parser_callbacks::c(*this);
  http_parser_init(p, HTTP_REQUEST);
  p->data = this;
  next_request();
  fed_ = 0;
  requests_ = 0;
  error_status_ = 0;
  error_reason_ = {};
}

void request_parser::next_request() noexcept {
  req_.head_ = nullptr;
  req_.head_size_ = 0;
  req_.method_ = verb::other;
  req_.method_name_ = {};
  req_.target_ = {};
  req_.major_ = req_.minor_ = 0;
  req_.keep_alive_ = false;
  req_.chunked_ = false;
  req_.content_length_ = 0;
  req_.header_count_ = 0;
  req_.body_.clear();
  head_.clear();
  phase_ = phase::head;
  event_ = event::none;
  last_ = last_data::none;
  line_done_ = false;
  in_head_ = true;
  head_moved_ = false;
  head_checked_ = false;
  expect_continue_ = false;
  continue_reported_ = false;
  head_reported_ = false;
  framing_.reset();
  body_left_ = 0;
  body_size_ = 0;
}

int request_parser::fail(int http_status, std::string_view why) noexcept {
  if (error_status_ == 0) {
    error_status_ = http_status;
    error_reason_ = why;
  }
  phase_ = phase::failed;
  return -1;
}

request_parser::status request_parser::failed_from_parser() noexcept {
  if (error_status_ != 0) {  // a callback refused (a limit, a rule of ours)
    phase_ = phase::failed;
    return status::error;
  }
  const auto err = static_cast<http_errno>(parser_callbacks::c(*this)->http_errno);
  // libhttp-parser's own cap on a head (80 KiB) counts like our head limit.
  if (err == HPE_HEADER_OVERFLOW) return failed(431, "request head longer than the parser accepts");
  return failed(400, http_errno_description(err));
}

request_parser::status request_parser::parse(buffer_chain& in) noexcept {
  if (phase_ == phase::failed) return status::error;
  if (phase_ == phase::delivered) next_request();
  http_parser* p = parser_callbacks::c(*this);
  for (;;) {
    if (phase_ == phase::fixed_body || phase_ == phase::chunked_body) {
      // The head is complete and checked, a body follows: say so once each.
      if (stream_ && !head_reported_) {
        head_reported_ = true;
        return status::head;
      }
      if (expect_continue_ && !continue_reported_) {
        continue_reported_ = true;
        return status::expect_continue;
      }
    }
    if (phase_ == phase::fixed_body) return take_fixed_body(in);
    if (fed_ >= in.size()) return partial_head_checks();
    // Feed the next contiguous piece; the C parser keeps its state between
    // pieces, so a request split anywhere parses the same.
    const std::string_view piece = in.piece_at(fed_);
    feed_ptr_ = piece.data();
    feed_base_ = fed_;
    event_ = event::none;
    fed_ += http_parser_execute(p, &parser_callbacks::settings, piece.data(), piece.size());
    const auto err = static_cast<http_errno>(p->http_errno);
    if (err == HPE_OK) {
      // The whole piece parsed, nothing to act on yet. Inside a chunked body
      // what was parsed is framing (size lines, extensions, trailers): drop
      // it now, so that endless framing cannot fill the input.
      if (phase_ == phase::chunked_body && fed_ != 0) {
        if (!head_moved_ && !move_head(in)) return status::error;
        if (!check_framing(in, 0, fed_)) return status::error;
        (void)in.skip(fed_);
        fed_ = 0;
      }
      continue;
    }
    if (err != HPE_PAUSED) return failed_from_parser();
    http_parser_pause(p, 0);
    switch (event_) {
      case event::head_done: {
        // Chunked: the head ends with the LF the parser has not consumed yet.
        req_.head_size_ = fed_ + 1;
        phase_ = phase::chunked_body;
        auto head = in.peek(req_.head_size_);
        if (!head) return failed(503, "out of buffer memory");
        if (!check_head(*head)) return status::error;
        break;  // the loop's top reports head and expect_continue
      }
      case event::body_piece:
        if (!move_body_piece(in)) return status::error;
        if (stream_) return status::body;
        break;
      case event::message_done:
        if (body_left_ != 0) {
          // A Content-Length body follows the head, which ends here.
          req_.head_size_ = fed_;
          auto head = in.peek(req_.head_size_);
          if (!head) return failed(503, "out of buffer memory");
          if (!check_head(*head)) return status::error;
          phase_ = phase::fixed_body;
          break;
        }
        if (req_.head_size_ == 0) req_.head_size_ = fed_;  // no body: the message is the head
        return deliver(in);
      case event::none:
        return failed(400, "parser paused without a reason");
    }
  }
}

request_parser::status request_parser::partial_head_checks() noexcept {
  if (phase_ == phase::head) {
    // Refuse as soon as a limit is passed, not when the head finally ends.
    // Until the line is known to be done, up to 3 bytes after it (CR LF CR
    // of a head without fields) may have been fed: more than max + 4 bytes
    // means the line itself is over the limit.
    if (!line_done_ && fed_ > limits_.max_request_line + 4) return failed(414, "request line longer than the limit");
    if (fed_ > limits_.max_header_bytes) return failed(431, "request head longer than the limit");
  }
  return status::need_more;
}

bool request_parser::check_head(std::string_view head) noexcept {
  if (head_checked_) return true;
  head_checked_ = true;
  if (head.size() > limits_.max_header_bytes) return fail(431, "request head longer than the limit"), false;
  // Without fields the head is the request line and two CRLFs.
  if (req_.header_count_ == 0 && head.size() > limits_.max_request_line + 4) {
    return fail(414, "request line longer than the limit"), false;
  }
  if (req_.major_ != 1) return fail(505, "only HTTP/1.x is served"), false;
  req_.head_ = head.data();
  // Debian builds libhttp-parser without HTTP_PARSER_STRICT, which accepts
  // "HTTX/1.1" and field names with spaces ("Transfer-Encoding : chunked",
  // read as chunked: a request smuggling vector). RFC 9112 requires a 400
  // for both, so check what the lenient build lets through.
  const std::size_t line_end = std::size_t{req_.target_.off} + req_.target_.len;
  const std::string_view version = head.substr(std::min(line_end, head.size()), 9);
  if (version.size() != 9 || version.substr(0, 6) != " HTTP/" || !is_digit(version[6]) || version[7] != '.' ||
      !is_digit(version[8])) {
    return fail(400, "malformed HTTP version in the request line"), false;
  }
  const std::string_view line = grammar::first_line(head);
  const std::string_view line_end_bytes = line.substr(std::min(line_end + 9, line.size()));
  if (line_end_bytes != "\r\n" && line_end_bytes != "\n") return fail(400, "malformed request line"), false;
  if (!grammar::valid_target(req_.target())) return fail(400, "control or non-ASCII bytes in the request target"), false;
  if (const char* bad = grammar::check_field_lines(head.substr(line.size()))) return fail(400, bad), false;
  grammar::absolute_form absolute;
  if (grammar::split_absolute_form(req_.target(), absolute) && !grammar::valid_host(absolute.authority)) {
    return fail(400, "malformed host in an absolute-form target"), false;
  }
  if (req_.chunked_) {
    // RFC 9112 6.1: Transfer-Encoding is HTTP/1.1 only (an HTTP/1.0 hop
    // would frame by the connection's end instead); and the only coding
    // sluice decodes, and so re-frames, is chunked alone.
    if (req_.minor_ == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request"), false;
    std::size_t codings = 0;
    for (std::size_t i = 0; i < req_.header_count_; ++i) {
      const request::header_field f = req_.header(i);
      if (iequals(f.name, "transfer-encoding") && (++codings > 1 || !iequals(f.value, "chunked"))) {
        return fail(501, "a transfer coding other than chunked"), false;
      }
    }
  }
  std::size_t hosts = 0;
  for (std::size_t i = 0; i < req_.header_count_; ++i) {
    const request::header_field f = req_.header(i);
    if (iequals(f.name, "host")) {
      ++hosts;
      if (!grammar::valid_host(f.value)) return fail(400, "empty or malformed Host field"), false;
    } else if (iequals(f.name, "expect") && req_.has_body() && iequals(f.value, "100-continue")) {
      expect_continue_ = true;
    }
  }
  // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host field.
  if (req_.minor_ >= 1 && hosts != 1) {
    return fail(400, hosts == 0 ? "HTTP/1.1 request without a Host field" : "more than one Host field"), false;
  }
  if (hosts > 1) return fail(400, "more than one Host field"), false;
  return true;
}

bool request_parser::check_framing(const buffer_chain& in, std::size_t from, std::size_t n) noexcept {
  if (framing_.feed(in, from, n)) return true;
  return fail(400, "malformed chunk framing (RFC 9112 7.1)"), false;
}

bool request_parser::move_head(buffer_chain& in) noexcept {
  // The head must outlive this callback (the body follows later): split it
  // off the input, zero copy.
  if (!in.take(req_.head_size_, head_)) return fail(503, "out of buffer descriptors"), false;
  fed_ -= req_.head_size_;
  head_moved_ = true;
  return true;
}

bool request_parser::move_body_piece(buffer_chain& in) noexcept {
  if (!head_moved_) {
    if (!move_head(in)) return false;
    piece_off_ -= req_.head_size_;
  }
  // Everything the C parser consumed is either this piece or chunk framing
  // around it (the size line before, the CRLF after).
  assert(piece_off_ + piece_len_ <= fed_);
  if (!check_framing(in, 0, piece_off_) ||
      !check_framing(in, piece_off_ + piece_len_, fed_ - piece_off_ - piece_len_)) {
    return false;
  }
  (void)in.skip(piece_off_);
  if (!in.take(piece_len_, req_.body_)) return fail(503, "out of buffer descriptors"), false;
  (void)in.skip(fed_ - piece_off_ - piece_len_);
  fed_ = 0;
  body_size_ += piece_len_;
  return true;
}

request_parser::status request_parser::take_fixed_body(buffer_chain& in) noexcept {
  if (!head_moved_ && !move_head(in)) return status::error;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, in.size()));
  if (n != 0) {
    if (!in.take(n, req_.body_)) return failed(503, "out of buffer descriptors");
    body_left_ -= n;
    body_size_ += n;
  }
  if (body_left_ != 0) return stream_ && n != 0 ? status::body : status::need_more;
  return deliver(in);
}

request_parser::status request_parser::deliver(buffer_chain& in) noexcept {
  if (head_moved_) {
    // A chunked body's last framing (final chunk, trailers).
    if (!check_framing(in, 0, fed_)) return status::error;
    (void)in.skip(fed_);
    auto head = head_.peek(req_.head_size_);
    if (!head) return failed(503, "out of buffer memory");
    req_.head_ = head->data();
  } else {
    auto head = in.next(req_.head_size_);
    if (!head) return failed(503, "out of buffer memory");
    req_.head_ = head->data();
    if (!check_head(*head)) return status::error;
    // A chunked request without data: its framing.
    if (req_.chunked_ && !check_framing(in, 0, fed_ - req_.head_size_)) return status::error;
    (void)in.skip(fed_ - req_.head_size_);
  }
  if (req_.chunked_ && !framing_.done()) return failed(400, "malformed chunk framing");
  fed_ = 0;
  phase_ = phase::delivered;
  ++requests_;
  return status::request;
}

}  // namespace sluice::http
