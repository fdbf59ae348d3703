#pragma once
// How much of a request an HTTP/1.1 parser accepts before it answers with an
// error status and the connection is closed. Safe defaults; apps set them
// from flags (sluice-httpd: --max-request-line, --max-header-bytes,
// --max-headers, --max-body).

#include <cstddef>
#include <cstdint>

namespace sluice::http {

// The limits one request_parser enforces (see the file comment); a plain value,
// copied into the parser.
struct limits {
  // Bytes of the request line ("GET /path HTTP/1.1"): longer is 414.
  std::size_t max_request_line = 8 * 1024;
  // Bytes of the whole head (request line and header fields): more is 431.
  // libhttp-parser stops any head at 80 KiB on its own (also 431).
  std::size_t max_header_bytes = 32 * 1024;
  // Number of header fields: more is 431.
  std::size_t max_headers = 100;
  // Bytes of a request body (Content-Length or the sum of all chunks): more is 413.
  std::uint64_t max_body = 1024 * 1024;
};

}  // namespace sluice::http
