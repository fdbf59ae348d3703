#pragma once
// How sluice-gateway writes the heads and framing it forwards. One rule, both
// directions: framing (Content-Length, Transfer-Encoding, chunk sizes) and
// Host are never forwarded as received; they are written from what our own
// parser decided, so the next hop cannot read a message boundary that our
// parser did not see. Hop-by-hop fields (RFC 9110 7.6.1) and every field that
// any Connection field line names are dropped, but dropping never touches
// framing or Host (they are written anew whatever Connection says).
//
// Request: METHOD SP origin-form-target SP HTTP/1.x; Host from the
// absolute-form target's authority (RFC 9112 3.2.2) or the Host field; the
// end-to-end fields; Content-Length or Transfer-Encoding: chunked as the
// parser framed the body (a chunked body is re-chunked piece by piece:
// chunk()); X-Forwarded-For; Connection: keep-alive for HTTP/1.0. Field names
// with '_' are dropped unless allowed (a '_' and a '-' name would map to the
// same CGI variable upstream, as nginx's underscores_in_headers says).
//
// Response: HTTP/1.1 SP code SP reason; the end-to-end fields; the framing
// from response_parser::framing(): Content-Length, or chunked (re-chunked) for
// an HTTP/1.1 client, or none with Connection: close when the body runs until
// close (or is chunked for an HTTP/1.0 client); Connection as decided.
//
// Pure functions over parsed messages: the fuzz suite drives them.

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/core/http/request.hpp"
#include "sluice/core/http/response_parser.hpp"

namespace sluice::gateway {

// The host a request is for: the authority of an absolute-form target, else
// the Host field (empty when neither: HTTP/1.0 without Host). With the port.
[[nodiscard]] std::string_view request_authority(const http::request& req) noexcept;
// The host without its port (IPv6 brackets kept), for routing.
[[nodiscard]] std::string_view host_only(std::string_view authority) noexcept;

struct request_head_options {
  bool allow_underscores = false;
  std::string_view client_address;  // appended to X-Forwarded-For
};
// Writes (replaces) `out` with the request head the upstream gets.
void write_request_head(std::string& out, const http::request& req, const request_head_options& o);

// How a response goes to the client.
struct response_framing {
  bool chunked = false;  // re-chunk the decoded body
  bool close = false;    // the connection closes after it (the body may run until then)
};
// What the response in `r` needs: `client_http10` cannot take chunked;
// `close_wanted` closes after it anyway.
[[nodiscard]] response_framing frame_response(const http::response_parser& r, bool client_http10,
                                              bool close_wanted) noexcept;
// Writes (replaces) `out` with the response head the client gets.
void write_response_head(std::string& out, const http::response_parser& r, response_framing f, bool client_http10);

// Appends `v` in decimal.
void append_decimal(std::string& out, std::uint64_t v);

// The bytes around one piece of a re-chunked body: "SIZE\r\n" before it and
// "\r\n" after; with `last`, the last chunk ("0\r\n\r\n") after that. A piece
// of 0 bytes has no head and no CRLF of its own.
struct chunk_frame {
  char buf[20];
  std::uint8_t head_len = 0;
  std::string_view tail;  // static bytes
  [[nodiscard]] std::string_view head() const noexcept { return {buf, head_len}; }
};
[[nodiscard]] chunk_frame frame_chunk(std::size_t piece_size, bool last) noexcept;

}  // namespace sluice::gateway
