#pragma once
// HTTP status codes: reason phrases, and the complete responses a server
// sends when it refuses a request and closes the connection (400, 408, 413,
// 414, 431, 501, 503, 505), shared by sluice-httpd and the gateway.

#include <string_view>

namespace sluice {
class connection;
}

namespace sluice::http {

// "OK", "Not Found", ...; "Unknown" for codes without a phrase here.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

// A complete response for an error that ends the connection: status line,
// Content-Type, Content-Length, "Connection: close" and a one-line body.
// Static storage (send it with append_static, no copy). Statuses without a
// canned response get the 400 one.
[[nodiscard]] std::string_view closing_response(int status) noexcept;

// Refuses the request on c: queues closing_response(status), counts it in
// the loop's requests_rejected and closes c (protocol_error) once the
// response is out. Owner core only.
void reject(connection& c, int status) noexcept;

}  // namespace sluice::http
