#pragma once
// One parsed HTTP/1.x request, as request_parser hands it out.
//
// The method, target and header fields are views of the request's head
// bytes: into the input segment that holds the head, or into one copy when
// the head spans segments. They stay valid until the handler that got the
// request returns (or until the parser's next parse() call, whichever is
// first): copy what must live longer. The body is a buffer chain that owns
// its bytes (zero copy: the input segments, shared); move it out to keep it.
//
// Owned by its request_parser; owner core only.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/http/head_span.hpp"

namespace sluice::http {

// The request method, for the common ones; `other` for any other (method_name()
// has it). delete_ is DELETE.
enum class verb : std::uint8_t { get, head, post, put, delete_, options, patch, connect, trace, other };

struct parser_callbacks;

// A parsed request (see the file comment): views of its head, and its body.
class request {
 public:
  // A header field as views of the head (valid as the request's other views
  // are).
  struct header_field {
    std::string_view name;  // the field name as sent (compare case-insensitively)
    std::string_view value;  // without surrounding spaces or tabs
  };

  // The method (verb::other: see method_name()).
  [[nodiscard]] verb method() const noexcept { return method_; }
  // The method as sent ("GET", "PROPFIND", ...).
  [[nodiscard]] std::string_view method_name() const noexcept { return method_name_; }
  // The request target as sent: "/a/b?x=1", "http://host/a", "*".
  [[nodiscard]] std::string_view target() const noexcept { return view(target_); }
  // The target's path ("/a/b"; the path part of an absolute-form target),
  // still percent-encoded; empty for "*" or an authority-form target.
  [[nodiscard]] std::string_view path() const noexcept;
  // The target's query without the '?', or empty.
  [[nodiscard]] std::string_view query() const noexcept;
  // The HTTP version: 1 for HTTP/1.x.
  [[nodiscard]] unsigned version_major() const noexcept { return major_; }
  // The minor version: 0 or 1.
  [[nodiscard]] unsigned version_minor() const noexcept { return minor_; }
  // May the connection carry another request after this one's response?
  // (HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "keep-alive".)
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }

  // Header fields, in the order sent (a repeated field appears once per line).
  [[nodiscard]] std::size_t header_count() const noexcept { return header_count_; }
  // The i-th header field (i < header_count()).
  [[nodiscard]] header_field header(std::size_t i) const noexcept;
  // The first field called `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;

  // True when the request had a body (Content-Length > 0 or chunked).
  [[nodiscard]] bool has_body() const noexcept { return chunked_ || content_length_ > 0; }
  // The body came chunked (its framing already removed from body()).
  [[nodiscard]] bool chunked() const noexcept { return chunked_; }
  // The Content-Length of a body that is not chunked (0 without one).
  [[nodiscard]] std::uint64_t content_length() const noexcept { return content_length_; }
  // The decoded body (chunk framing removed); empty without one.
  [[nodiscard]] buffer_chain& body() noexcept { return body_; }
  // The decoded body (chunk framing removed); empty without one.
  [[nodiscard]] const buffer_chain& body() const noexcept { return body_; }
  // Bytes of the head on the wire (request line, fields, final CRLF).
  [[nodiscard]] std::size_t head_size() const noexcept { return head_size_; }

 private:
  friend class request_parser;
  friend struct parser_callbacks;
  using span = head_span;
  using field_span = head_field;
  [[nodiscard]] std::string_view view(span s) const noexcept { return s.in(head_); }

  const char* head_ = nullptr;
  std::size_t head_size_ = 0;
  verb method_ = verb::other;
  std::string_view method_name_;
  span target_;
  std::uint16_t major_ = 0;
  std::uint16_t minor_ = 0;
  bool keep_alive_ = false;
  bool chunked_ = false;
  std::uint64_t content_length_ = 0;
  std::vector<field_span> fields_;  // sized once to limits::max_headers
  std::size_t header_count_ = 0;
  buffer_chain body_;
};

// Case-insensitive ASCII comparison, as header names and tokens need. Inline:
// a proxy compares every field name with several names per message.
[[nodiscard]] inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + ('a' - 'A')) : a[i];
    const char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + ('a' - 'A')) : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace sluice::http
