#pragma once
// An HTTP/1.1 request parser over a connection's input chain, built on
// libhttp-parser (Debian's libhttp-parser-dev): the C library does the
// grammar (request line, header syntax, Content-Length and chunked framing,
// keep-alive rules); this class feeds it the input segment by segment,
// without copying, enforces sluice's limits and hands out one request at a
// time, so pipelined requests are answered in order.
//
//   http::request_parser parser(limits);            // one per connection
//   void on_data(connection& c) noexcept override {
//     for (;;) {
//       switch (parser.parse(c.input())) {
//         case http::request_parser::status::request:
//           respond(c, parser.current());           // views valid until on_data returns
//           continue;
//         case http::request_parser::status::expect_continue:
//           (void)c.write("HTTP/1.1 100 Continue\r\n\r\n");
//           continue;
//         case http::request_parser::status::need_more:
//           return;
//         case http::request_parser::status::error:
//           http::reject(c, parser.error_status());  // 400/413/414/431/503, then close
//           return;
//       }
//     }
//   }
//
// Bytes: a request's head stays in the input until the request is complete
// (then consumed); a Content-Length body is split off the input with take()
// as it arrives, a chunked body piece by piece, so neither counts against
// the input limit and neither is copied. The only copy is of a head that
// spans two segments, made once when the request is handed out.
//
// Errors: malformed syntax is 400: anything libhttp-parser rejects, and what
// its lenient build lets through that RFC 9112 forbids (grammar.hpp: field
// names that are not tokens, obs-fold, bare CRs, control or non-ASCII bytes
// in the target, chunk framing other than CRLF-terminated size lines and
// CRLF after each chunk's data), a missing, repeated, empty or malformed
// Host in HTTP/1.1, Transfer-Encoding on an HTTP/1.0 request; a
// Transfer-Encoding other than exactly "chunked" is 501; the limits give
// 414 (request line), 431 (head bytes, field count), 413 (body). After an
// error the parser stays failed: answer and close the connection.
//
// Streaming (body_mode::stream, for proxies): a request with a body is
// handed out in pieces instead of whole, so a body of any size passes
// through a bounded buffer. parse() returns `head` once the head is complete
// (current()'s fields are valid until the handler returns), then `body`
// whenever more decoded body bytes were appended to current().body() (move
// them out), and `request` when the body has ended (body() may hold its last
// bytes). A request without a body comes as `request` alone, as in whole mode.
// max_body still applies (413), to the sum of the pieces.
//
// One parser per connection; owner core only. Allocation: the field table,
// once, at construction (reuse parsers across connections with reset()).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/http/grammar.hpp"
#include "sluice/core/http/limits.hpp"
#include "sluice/core/http/request.hpp"

namespace sluice::http {

// An HTTP/1.x request parser for one connection (see the file comment):
// libhttp-parser underneath, strict checks on top, limits enforced before
// anything is buffered. Owner core only.
class request_parser {
 public:
  // What parse() found.
  enum class status : std::uint8_t {
    request,          // current() is a complete request; its bytes are consumed
    need_more,        // everything buffered was parsed; call again after on_data
    expect_continue,  // the head asked "Expect: 100-continue" before sending its body
    error,            // error_status() says which; close the connection
    head,             // streaming: the head of a request with a body is complete
    body,             // streaming: more of the body was appended to current().body()
  };
  // How requests with a body are handed out.
  enum class body_mode : std::uint8_t {
    whole,   // a request is handed out once its body is complete
    stream,  // head first, then the body in pieces (see above)
  };

  // A parser with these limits and body mode; allocates its field table
  // (limits::max_headers entries) once, here.
  explicit request_parser(const limits& l = {}, body_mode mode = body_mode::whole);
  ~request_parser();
  request_parser(const request_parser&) = delete;
  request_parser& operator=(const request_parser&) = delete;

  // Parses what `in` holds. Call it again after each `request` (the next
  // pipelined one may be complete already) and after each on_data.
  [[nodiscard]] status parse(buffer_chain& in) noexcept;
  // The request after parse() returned status::request.
  [[nodiscard]] request& current() noexcept { return req_; }
  // The request after parse() returned status::request (or head, body).
  [[nodiscard]] const request& current() const noexcept { return req_; }
  // After status::error: the HTTP status to answer with, and why in words.
  [[nodiscard]] int error_status() const noexcept { return error_status_; }
  // Why the request was refused, in words (for a log).
  [[nodiscard]] std::string_view error_reason() const noexcept { return error_reason_; }
  // Requests handed out so far.
  [[nodiscard]] std::uint64_t requests() const noexcept { return requests_; }
  // The limits it was made with.
  [[nodiscard]] const http::limits& settings() const noexcept { return limits_; }
  // Back to a fresh connection's state (drops any partial request).
  void reset() noexcept;

 private:
  // What the C parser's callbacks saw during one execute call.
  enum class event : std::uint8_t { none, head_done, body_piece, message_done };
  enum class phase : std::uint8_t { head, fixed_body, chunked_body, delivered, failed };
  enum class last_data : std::uint8_t { none, url, name, value };

  // The C parser's callbacks (request_parser.cpp) update this object.
  friend struct parser_callbacks;

  void next_request() noexcept;
  // Input offset of a byte the C parser points at, in the piece being fed.
  [[nodiscard]] std::size_t offset_of(const char* at) const noexcept {
    return feed_base_ + static_cast<std::size_t>(at - feed_ptr_);
  }
  int fail(int http_status, std::string_view why) noexcept;
  status failed(int http_status, std::string_view why) noexcept {
    (void)fail(http_status, why);
    return status::error;
  }
  status failed_from_parser() noexcept;
  // Checks a complete head (size limit, version, Host, Expect) once.
  [[nodiscard]] bool check_head(std::string_view head) noexcept;
  [[nodiscard]] bool move_head(buffer_chain& in) noexcept;
  [[nodiscard]] bool move_body_piece(buffer_chain& in) noexcept;
  // Chunk framing the C parser consumed (`n` input bytes at `from`), checked
  // strictly before it is dropped.
  [[nodiscard]] bool check_framing(const buffer_chain& in, std::size_t from, std::size_t n) noexcept;
  status take_fixed_body(buffer_chain& in) noexcept;
  status deliver(buffer_chain& in) noexcept;
  status partial_head_checks() noexcept;

  // libhttp-parser's `http_parser`, kept opaque so that this header does not
  // pull the C library's global names into every includer (the .cpp
  // static_asserts the size).
  alignas(8) unsigned char c_parser_[64];

  http::limits limits_;
  request req_;
  buffer_chain head_;  // the head, once a body follows it (it must outlive the callback)
  grammar::chunk_framing framing_;  // a chunked body's framing, checked as it is dropped

  phase phase_ = phase::head;
  event event_ = event::none;
  last_data last_ = last_data::none;
  bool line_done_ = false;       // the request line has ended
  bool in_head_ = true;          // callbacks belong to the head (not to chunked trailers)
  bool head_moved_ = false;      // the head moved from the input into head_
  bool head_checked_ = false;
  bool expect_continue_ = false;
  bool continue_reported_ = false;
  bool head_reported_ = false;   // streaming: status::head was returned
  bool stream_ = false;
  std::size_t fed_ = 0;          // unconsumed input bytes the C parser has seen
  const char* feed_ptr_ = nullptr;  // the piece being fed, and its input offset
  std::size_t feed_base_ = 0;
  std::size_t piece_off_ = 0;    // a chunked body piece, by input offset
  std::size_t piece_len_ = 0;
  std::uint64_t body_left_ = 0;  // Content-Length bytes still to take
  std::uint64_t body_size_ = 0;  // body bytes taken so far
  std::uint64_t requests_ = 0;
  int error_status_ = 0;
  std::string_view error_reason_;
};

}  // namespace sluice::http
