#include "http_rewrite.hpp"

#include <algorithm>
#include <charconv>

#include "sluice/core/http/grammar.hpp"

namespace sluice::gateway {

using http::iequals;

namespace {

// Hop-by-hop fields (RFC 9110 7.6.1): they describe one connection, never
// go to the other side.
bool hop_by_hop(std::string_view name) noexcept {
  return iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "proxy-connection") ||
         iequals(name, "te") || iequals(name, "upgrade") || iequals(name, "proxy-authenticate") ||
         iequals(name, "proxy-authorization");
}

// Framing and Host: written from the parse, never copied.
bool written_by_us(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "host");
}

// Is `name` one of the comma-separated tokens of a Connection field value?
bool named_in(std::string_view connection, std::string_view name) noexcept {
  while (!connection.empty()) {
    const std::size_t comma = connection.find(',');
    std::string_view token = connection.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (iequals(token, name)) return true;
    if (comma == std::string_view::npos) break;
    connection.remove_prefix(comma + 1);
  }
  return false;
}

// The end-to-end fields of `m` (request or response), as "Name: value\r\n"
// lines: not hop-by-hop, not written by us, not skipped, not named by any of
// its Connection field lines.
template <class Message, class Skip>
void append_end_to_end(std::string& out, const Message& m, Skip&& skip) {
  // Where the Connection lines are (usually none: then nothing is scanned twice).
  std::size_t first = m.header_count(), last = 0;
  for (std::size_t i = 0; i < m.header_count(); ++i) {
    if (iequals(m.header(i).name, "connection")) {
      first = std::min(first, i);
      last = i;
    }
  }
  auto named = [&](std::string_view name) {
    for (std::size_t i = first; i <= last && i < m.header_count(); ++i) {
      const auto f = m.header(i);
      if (iequals(f.name, "connection") && named_in(f.value, name)) return true;
    }
    return false;
  };
  for (std::size_t i = 0; i < m.header_count(); ++i) {
    const auto f = m.header(i);
    if (hop_by_hop(f.name) || written_by_us(f.name) || skip(f.name) || named(f.name)) continue;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
}

}  // namespace

void append_decimal(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

std::string_view request_authority(const http::request& req) noexcept {
  http::grammar::absolute_form a;
  if (http::grammar::split_absolute_form(req.target(), a)) return a.authority;
  return req.find("host").value_or("");
}

std::string_view host_only(std::string_view authority) noexcept {
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t end = authority.find(']');
    return end == std::string_view::npos ? authority : authority.substr(0, end + 1);
  }
  return authority.substr(0, authority.find(':'));
}

void write_request_head(std::string& out, const http::request& req, const request_head_options& o) {
  out.clear();
  out.append(req.method_name()).append(" ");
  http::grammar::absolute_form a;
  if (http::grammar::split_absolute_form(req.target(), a)) {
    // Origin form: the path, "/" when the target has none ("http://h?q").
    if (a.origin.empty() || a.origin.front() != '/') out.append("/");
    out.append(a.origin);
  } else {
    out.append(req.target());
  }
  out.append(" HTTP/1.");
  append_decimal(out, req.version_minor());
  out.append("\r\n");
  if (const std::string_view host = request_authority(req); !host.empty()) out.append("Host: ").append(host).append("\r\n");
  append_end_to_end(out, req, [&o](std::string_view name) {
    return iequals(name, "x-forwarded-for") || (!o.allow_underscores && name.find('_') != std::string_view::npos);
  });
  if (req.chunked()) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (req.has_body() || req.find("content-length")) {
    out.append("Content-Length: ");
    append_decimal(out, req.content_length());
    out.append("\r\n");
  }
  // Every X-Forwarded-For the client sent, in order, as one field, then the
  // client's own address.
  out.append("X-Forwarded-For: ");
  for (std::size_t i = 0; i < req.header_count(); ++i) {
    const auto f = req.header(i);
    if (iequals(f.name, "x-forwarded-for")) out.append(f.value).append(", ");
  }
  out.append(o.client_address).append("\r\n");
  if (req.version_minor() == 0) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

response_framing frame_response(const http::response_parser& r, bool client_http10, bool close_wanted) noexcept {
  using kind = http::response_parser::framing_kind;
  response_framing f;
  f.chunked = r.framing() == kind::chunked && !client_http10;
  // A body that only the connection's end delimits: until close upstream, or
  // chunked upstream to a client that cannot take chunked.
  f.close = close_wanted || r.framing() == kind::close || (r.framing() == kind::chunked && client_http10);
  return f;
}

void write_response_head(std::string& out, const http::response_parser& r, response_framing f, bool client_http10) {
  using kind = http::response_parser::framing_kind;
  out.assign("HTTP/1.1 ");
  append_decimal(out, static_cast<std::uint64_t>(r.status_code()));
  out.append(" ").append(r.reason()).append("\r\n");
  append_end_to_end(out, r, [](std::string_view) { return false; });
  if (r.informational()) {
    out.append("\r\n");
    return;
  }
  if (f.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (r.framing() == kind::length || (r.framing() == kind::none && r.status_code() != 204 && r.declared_length())) {
    // A body of this length, or (HEAD, 304) the length a GET would get.
    out.append("Content-Length: ");
    append_decimal(out, r.framing() == kind::length ? r.content_length() : *r.declared_length());
    out.append("\r\n");
  }
  if (f.close) {
    out.append("Connection: close\r\n");
  } else if (client_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

chunk_frame frame_chunk(std::size_t piece_size, bool last) noexcept {
  chunk_frame c;
  if (piece_size != 0) {
    auto r = std::to_chars(c.buf, c.buf + 16, piece_size, 16);
    *r.ptr++ = '\r';
    *r.ptr++ = '\n';
    c.head_len = static_cast<std::uint8_t>(r.ptr - c.buf);
  }
  c.tail = last ? std::string_view(piece_size == 0 ? "0\r\n\r\n" : "\r\n0\r\n\r\n")
                : std::string_view(piece_size == 0 ? "" : "\r\n");
  return c;
}

}  // namespace sluice::gateway
