#pragma once
// An HTTP/1.1 response parser for the client side of a connection (a proxy's
// upstream), built on libhttp-parser like request_parser: the C library does
// the grammar of the head and decodes chunked bodies; this class feeds it the
// input segment by segment, checks strictly what the C library's lenient
// build lets through (grammar.hpp: the status line, field lines, chunk
// framing), decides the framing (RFC 9112 6.3: none for HEAD, 1xx, 204 and
// 304; chunked; Content-Length; until close), enforces the head limits and
// says where each response ends.
//
//   http::response_parser rp;                        // one per exchange or connection
//   rp.expect(http::verb::get);                      // before each response
//   switch (rp.parse(up.input(), body)) {
//     case status::head:      forward_head(rp);  ... // fields valid until the handler returns
//     case status::body:      down.send(std::move(body));
//     case status::complete:  down.send(std::move(body)); done();
//     ...
//   }
//
// Bytes: the head is consumed from the input when it is complete; the body is
// handed on decoded (the content alone: chunk framing and trailers are
// checked and dropped), moved zero copy from the input into the caller's
// chain, so a body of any size passes through a bounded buffer. A proxy
// writes the framing of what it forwards itself, from framing() and
// content_length(), never the received framing fields. Bytes after the end of
// a response stay in the input (the next response).
//
// Errors (status::error, error_reason()): anything libhttp-parser refuses;
// a status line other than "HTTP/1.x SP 3DIGIT [SP reason]" with a reason of
// visible bytes; field names that are not tokens (a space before the colon),
// obs-fold, bare CRs, control bytes in values; a Transfer-Encoding other than
// exactly "chunked", or in an HTTP/1.0 response, or next to a Content-Length;
// chunk framing other than RFC 9112 7.1's.
//
// Owner core only. Allocation: the field table, once, at construction.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/http/grammar.hpp"
#include "sluice/core/http/head_span.hpp"
#include "sluice/core/http/limits.hpp"
#include "sluice/core/http/request.hpp"

namespace sluice::http {

// An HTTP/1.x response parser for one upstream connection (see the file
// comment): a proxy's view of responses, with the body handed on as it arrives.
// Owner core only.
class response_parser {
 public:
  // What parse() found.
  enum class status : std::uint8_t {
    head,       // the head is complete (status_code(), fields); its bytes were consumed
    body,       // body bytes, as sent, were appended to `out`
    complete,   // the response ended; its last body bytes (if any) were appended to `out`
    need_more,  // everything buffered was parsed
    error,      // malformed or over a limit: error_reason(); the connection is unusable
  };
  // A header field as views of the head (valid until the handler returns).
  struct header_field {
    std::string_view name;  // the field name as sent (compare case-insensitively)
    std::string_view value;  // without surrounding spaces or tabs
  };

  // Uses max_header_bytes and max_headers of `l`.
  explicit response_parser(const limits& l = {});
  ~response_parser();
  response_parser(const response_parser&) = delete;
  response_parser& operator=(const response_parser&) = delete;

  // How the body of the current response (after status::head) is delimited.
  enum class framing_kind : std::uint8_t {
    none,     // no body: HEAD, 1xx, 204, 304, or Content-Length: 0
    length,   // content_length() bytes
    chunked,  // chunked on the wire (handed on decoded)
    close,    // until the connection closes
  };

  // Before each response: the method of the request it answers (a response to
  // HEAD has no body whatever its fields say). Also restarts a parser that
  // failed or saw the end of a non-persistent connection.
  void expect(verb request_method) noexcept;
  // Back to a fresh connection's state, whatever it was in the middle of:
  // call it for each new connection (a parser reused after a connection
  // ended mid-response must not read the next one's bytes as the old body).
  void reset() noexcept;
  // Parses what `in` holds; moves body bytes into `out`. Call it again after
  // each head or body (more may be buffered), and after each on_data.
  [[nodiscard]] status parse(buffer_chain& in, buffer_chain& out) noexcept;
  // The peer closed its side: completes a response read until close;
  // anything else was cut short (error).
  [[nodiscard]] status finish(buffer_chain& out) noexcept;

  // ---- the head (after status::head, until the handler returns) -------------
  // The status code (200, 404, ...).
  [[nodiscard]] int status_code() const noexcept { return status_code_; }
  // The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
  [[nodiscard]] unsigned version_minor() const noexcept { return minor_; }
  // The reason phrase as sent ("OK"), possibly empty.
  [[nodiscard]] std::string_view reason() const noexcept { return view(reason_); }
  // Header fields, in the order sent.
  [[nodiscard]] std::size_t header_count() const noexcept { return header_count_; }
  // The i-th header field (i < header_count()), its value trimmed.
  [[nodiscard]] header_field header(std::size_t i) const noexcept {
    return {view(fields_[i].name), grammar::trim_ows(view(fields_[i].value))};
  }
  // The first field called `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;
  // Bytes of the head on the wire (status line, fields, final CRLF).
  [[nodiscard]] std::size_t head_size() const noexcept { return head_size_; }
  // 1xx: another response follows for the same request.
  [[nodiscard]] bool informational() const noexcept { return status_code_ >= 100 && status_code_ < 200; }
  // The body is chunked on the wire (handed on decoded).
  [[nodiscard]] bool chunked() const noexcept { return framing_ == framing_kind::chunked; }
  // The body runs until the connection closes (finish() completes it).
  [[nodiscard]] bool until_close() const noexcept { return framing_ == framing_kind::close; }
  // The response has no body (HEAD, 1xx, 204, 304, Content-Length: 0).
  [[nodiscard]] bool bodiless() const noexcept { return framing_ == framing_kind::none; }
  // How the body is delimited (see framing_kind).
  [[nodiscard]] framing_kind framing() const noexcept { return framing_; }
  // The body's length with framing_kind::length.
  [[nodiscard]] std::uint64_t content_length() const noexcept { return body_length_; }
  // The Content-Length the head declared, also where it frames nothing (a
  // response to HEAD, a 304), or nullopt.
  [[nodiscard]] std::optional<std::uint64_t> declared_length() const noexcept {
    if (!has_length_) return std::nullopt;
    return declared_length_;
  }
  // After status::complete: may the connection carry another exchange?
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
  // After status::error: why, in words (for a log).
  [[nodiscard]] std::string_view error_reason() const noexcept { return error_reason_; }

 private:
  friend struct response_callbacks;
  // bodiless: the head was handed out and the message ended with it (the
  // next parse() says complete). length_body and close_body are split off
  // the input here; chunked_body goes through the C parser.
  enum class phase : std::uint8_t { head, length_body, chunked_body, close_body, bodiless, done, failed };
  enum class last_data : std::uint8_t { none, reason, name, value };
  using span = head_span;
  using field_span = head_field;
  [[nodiscard]] std::string_view view(span s) const noexcept { return s.in(head_); }
  [[nodiscard]] std::size_t offset_of(const char* at) const noexcept {
    return feed_base_ + static_cast<std::size_t>(at - feed_ptr_);
  }
  status fail(std::string_view why) noexcept;
  void restart() noexcept;
  // The checks of a complete head that libhttp-parser does not make; the
  // reason, or nullptr.
  [[nodiscard]] const char* check_head(std::string_view head) const noexcept;
  status parse_chunked(buffer_chain& in, buffer_chain& out) noexcept;
  [[nodiscard]] bool drop_framing(buffer_chain& in, std::size_t n) noexcept;

  // libhttp-parser's `http_parser`, opaque here (see request_parser.hpp).
  alignas(8) unsigned char c_parser_[64];

  limits limits_;
  std::vector<field_span> fields_;  // sized once to limits::max_headers
  std::size_t header_count_ = 0;
  const char* head_ = nullptr;
  std::size_t head_size_ = 0;
  span reason_;
  int status_code_ = 0;
  unsigned minor_ = 0;
  bool head_request_ = false;
  framing_kind framing_ = framing_kind::none;
  bool has_length_ = false;
  bool keep_alive_ = false;
  bool piece_ = false;           // a chunk data piece was seen (set in its callback)
  std::uint64_t declared_length_ = 0;
  std::uint64_t body_length_ = 0;
  std::uint64_t body_left_ = 0;  // length_body bytes still to take
  std::size_t piece_off_ = 0;    // the chunk data piece, by input offset
  std::size_t piece_len_ = 0;
  grammar::chunk_framing chunks_;
  bool head_done_ = false;     // the C parser passed the head (set in its callback)
  bool message_done_ = false;  // the C parser ended the message (set in its callback)
  phase phase_ = phase::head;
  last_data last_ = last_data::none;
  std::size_t fed_ = 0;        // unconsumed input bytes the C parser has seen
  const char* feed_ptr_ = nullptr;
  std::size_t feed_base_ = 0;
  std::string_view error_reason_;
};

}  // namespace sluice::http
