#pragma once
// Writing HTTP/1.1 responses for sluice-httpd: the status line and headers
// of any response, and the complete "Hello, World!" response kept ready with
// the current Date, so the benchmarked path is one copy of ~130 bytes.
//
// One response_writer per loop (its Date cache is refreshed from that loop's
// clock); owner core only.

#include <array>
#include <cstdint>
#include <string_view>

#include "sluice/base/time.hpp"

namespace sluice {
class connection;
}

namespace sluice::httpd {

// What the connection does after this response.
enum class after_response : std::uint8_t {
  keep_open,         // HTTP/1.1 default: no Connection header
  keep_open_http10,  // HTTP/1.0 that asked for keep-alive: "Connection: keep-alive"
  close,             // "Connection: close", then the server closes
};

class response_writer {
 public:
  static constexpr std::string_view hello_body = "Hello, World!";

  response_writer();

  // Refreshes the Date header (and the cached hello response) when the
  // second has changed. `now` is the loop's time; cheap when it has not.
  void tick(time_point now) noexcept {
    if (now >= next_refresh_) refresh(now);
  }

  // The complete 200 response to GET / (head_only: to HEAD /), HTTP/1.1
  // keep-alive. Valid until the next tick().
  [[nodiscard]] std::string_view hello(bool head_only) const noexcept {
    return head_only ? std::string_view(hello_.data(), hello_head_size_)
                     : std::string_view(hello_.data(), hello_size_);
  }

  // Writes a status line and headers into c's output (Server, Date,
  // Content-Type, Content-Length, Connection as `after` says, then `extra`,
  // which is whole header lines with their CRLFs). False if the output
  // refused it (limit, memory): the caller closes the connection.
  [[nodiscard]] bool write_head(connection& c, int status, std::string_view content_type, std::uint64_t length,
                                after_response after, std::string_view extra = {}) const noexcept;
  // A head plus a short text body.
  [[nodiscard]] bool write_text(connection& c, int status, std::string_view body, after_response after,
                                std::string_view extra = {}) const noexcept;

  [[nodiscard]] std::string_view date() const noexcept { return {date_.data(), date_.size()}; }

 private:
  void refresh(time_point now) noexcept;

  std::array<char, 29> date_{};  // "Sun, 06 Nov 1994 08:49:37 GMT"
  std::array<char, 256> hello_{};
  std::size_t hello_size_ = 0;
  std::size_t hello_head_size_ = 0;
  time_point next_refresh_{};
};

}  // namespace sluice::httpd
