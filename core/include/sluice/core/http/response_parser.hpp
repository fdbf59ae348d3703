#pragma once
// An HTTP/1.1 response parser for the client side of a connection (a proxy's
// upstream), built on libhttp-parser like request_parser: the C library does
// the grammar and the framing (Content-Length, chunked, read until close, no
// body for HEAD, 1xx, 204 and 304); this class feeds it the input segment by
// segment, enforces the head limits and says where each response ends.
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
// handed on as it was sent (chunk framing included, nothing decoded), moved
// zero copy from the input into the caller's chain, so a body of any size
// passes through a bounded buffer and a proxy forwards it unchanged. Bytes
// after the end of a response stay in the input (the next response).
//
// Owner core only. Allocation: the field table, once, at construction.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/http/head_span.hpp"
#include "sluice/core/http/limits.hpp"
#include "sluice/core/http/request.hpp"

namespace sluice::http {

class response_parser {
 public:
  enum class status : std::uint8_t {
    head,       // the head is complete (status_code(), fields); its bytes were consumed
    body,       // body bytes, as sent, were appended to `out`
    complete,   // the response ended; its last body bytes (if any) were appended to `out`
    need_more,  // everything buffered was parsed
    error,      // malformed or over a limit: error_reason(); the connection is unusable
  };
  struct header_field {
    std::string_view name;
    std::string_view value;
  };

  // Uses max_header_bytes and max_headers of `l`.
  explicit response_parser(const limits& l = {});
  ~response_parser();
  response_parser(const response_parser&) = delete;
  response_parser& operator=(const response_parser&) = delete;

  // Before each response: the method of the request it answers (a response to
  // HEAD has no body whatever its fields say). Also restarts a parser that
  // failed or saw the end of a non-persistent connection.
  void expect(verb request_method) noexcept;
  // Parses what `in` holds; moves body bytes into `out`. Call it again after
  // each head or body (more may be buffered), and after each on_data.
  [[nodiscard]] status parse(buffer_chain& in, buffer_chain& out) noexcept;
  // The peer closed its side: completes a response read until close;
  // anything else was cut short (error).
  [[nodiscard]] status finish(buffer_chain& out) noexcept;

  // ---- the head (after status::head, until the handler returns) -------------
  [[nodiscard]] int status_code() const noexcept { return status_code_; }
  [[nodiscard]] unsigned version_minor() const noexcept { return minor_; }
  [[nodiscard]] std::string_view reason() const noexcept { return view(reason_); }
  [[nodiscard]] std::size_t header_count() const noexcept { return header_count_; }
  [[nodiscard]] header_field header(std::size_t i) const noexcept {
    return {view(fields_[i].name), view(fields_[i].value)};
  }
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;
  [[nodiscard]] std::size_t head_size() const noexcept { return head_size_; }
  // 1xx: another response follows for the same request.
  [[nodiscard]] bool informational() const noexcept { return status_code_ >= 100 && status_code_ < 200; }
  // The body is chunked / runs until the connection closes / is absent.
  [[nodiscard]] bool chunked() const noexcept { return chunked_; }
  [[nodiscard]] bool until_close() const noexcept { return until_close_; }
  [[nodiscard]] bool bodiless() const noexcept { return bodiless_; }
  // After status::complete: may the connection carry another exchange?
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }
  [[nodiscard]] std::string_view error_reason() const noexcept { return error_reason_; }

 private:
  friend struct response_callbacks;
  // bodiless: the head was handed out and the message ended with it (the
  // next parse() says complete).
  enum class phase : std::uint8_t { head, body, bodiless, done, failed };
  enum class last_data : std::uint8_t { none, reason, name, value };
  using span = head_span;
  using field_span = head_field;
  [[nodiscard]] std::string_view view(span s) const noexcept { return s.in(head_); }
  [[nodiscard]] std::size_t offset_of(const char* at) const noexcept {
    return feed_base_ + static_cast<std::size_t>(at - feed_ptr_);
  }
  status fail(std::string_view why) noexcept;
  void restart() noexcept;

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
  bool chunked_ = false;
  bool until_close_ = false;
  bool bodiless_ = false;
  bool keep_alive_ = false;
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
