#include "response.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "sluice/core/connection.hpp"
#include "sluice/core/http/status.hpp"

namespace sluice::httpd {

response_writer::response_writer() { refresh(steady_now()); }

void response_writer::refresh(time_point now) noexcept {
  const auto wall = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(wall);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  // IMF-fixdate (RFC 9110 5.6.7); strftime in the C locale (never changed here).
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  std::copy_n(buf.data(), date_.size(), date_.data());
  const int n = std::snprintf(hello_.data(), hello_.size(),
                              "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: %.29s\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %zu\r\n\r\n%.*s",
                              date_.data(), hello_body.size(), static_cast<int>(hello_body.size()), hello_body.data());
  hello_size_ = static_cast<std::size_t>(n);
  hello_head_size_ = hello_size_ - hello_body.size();
  // Refresh again when the wall clock's second turns.
  const auto into_second = wall - std::chrono::floor<std::chrono::seconds>(wall);
  next_refresh_ = now + (std::chrono::seconds(1) - std::chrono::duration_cast<duration>(into_second));
}

bool response_writer::write_head(connection& c, int status, std::string_view content_type, std::uint64_t length,
                                 after_response after, std::string_view extra) const noexcept {
  const std::string_view phrase = http::reason_phrase(status);
  const char* connection_line = after == after_response::close              ? "Connection: close\r\n"
                                : after == after_response::keep_open_http10 ? "Connection: keep-alive\r\n"
                                                                            : "";
  std::array<char, 1024> buf{};
  const int n = std::snprintf(buf.data(), buf.size(),
                              "HTTP/1.1 %d %.*s\r\nServer: sluice\r\nDate: %.29s\r\nContent-Type: %.*s\r\n"
                              "Content-Length: %llu\r\n%s%.*s\r\n",
                              status, static_cast<int>(phrase.size()), phrase.data(), date_.data(),
                              static_cast<int>(content_type.size()), content_type.data(),
                              static_cast<unsigned long long>(length), connection_line,
                              static_cast<int>(extra.size()), extra.data());
  if (n < 0 || static_cast<std::size_t>(n) >= buf.size()) return false;
  return c.write(std::string_view(buf.data(), static_cast<std::size_t>(n)));
}

bool response_writer::write_text(connection& c, int status, std::string_view body, after_response after,
                                 std::string_view extra) const noexcept {
  return write_head(c, status, "text/plain", body.size(), after, extra) && c.write(body);
}

}  // namespace sluice::httpd
