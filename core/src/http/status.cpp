#include "sluice/core/http/status.hpp"

#include "sluice/core/connection.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::http {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {

// Body lengths are counted by hand: each body is the phrase and a newline.
#define SLUICE_CLOSING(code, phrase, length)                                                         \
  "HTTP/1.1 " #code " " phrase "\r\nContent-Type: text/plain\r\nContent-Length: " #length            \
  "\r\nConnection: close\r\n\r\n" phrase "\n"

constexpr std::string_view closing_400 = SLUICE_CLOSING(400, "Bad Request", 12);
constexpr std::string_view closing_408 = SLUICE_CLOSING(408, "Request Timeout", 16);
constexpr std::string_view closing_413 = SLUICE_CLOSING(413, "Content Too Large", 18);
constexpr std::string_view closing_414 = SLUICE_CLOSING(414, "URI Too Long", 13);
constexpr std::string_view closing_431 = SLUICE_CLOSING(431, "Request Header Fields Too Large", 32);
constexpr std::string_view closing_503 = SLUICE_CLOSING(503, "Service Unavailable", 20);
constexpr std::string_view closing_501 = SLUICE_CLOSING(501, "Not Implemented", 16);
constexpr std::string_view closing_505 = SLUICE_CLOSING(505, "HTTP Version Not Supported", 27);
#undef SLUICE_CLOSING

// The hand-counted lengths above must match the bodies.
constexpr bool length_matches(std::string_view r) {
  const auto at = r.find("Content-Length: ") + 16;
  std::size_t n = 0;
  for (std::size_t i = at; r[i] != '\r'; ++i) n = n * 10 + static_cast<std::size_t>(r[i] - '0');
  return r.size() - (r.find("\r\n\r\n") + 4) == n;
}
static_assert(length_matches(closing_400) && length_matches(closing_408) && length_matches(closing_413) && length_matches(closing_414) &&
              length_matches(closing_431) && length_matches(closing_501) && length_matches(closing_503) &&
              length_matches(closing_505));

}  // namespace

std::string_view closing_response(int status) noexcept {
  switch (status) {
    case 408: return closing_408;
    case 413: return closing_413;
    case 414: return closing_414;
    case 431: return closing_431;
    case 501: return closing_501;
    case 503: return closing_503;
    case 505: return closing_505;
    default: return closing_400;
  }
}

void reject(connection& c, int status) noexcept {
  c.loop().stats().requests_rejected.add();
  // Static bytes, referenced not copied; over the output limit the response
  // is dropped (counted by the connection) and the close still happens.
  if (c.output().append_static(closing_response(status))) c.flush();
  c.close(close_reason::protocol_error);
}

}  // namespace sluice::http
