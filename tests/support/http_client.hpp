#pragma once
// A deliberately plain HTTP/1.1 client for tests: a blocking socket, requests
// written as raw bytes (malformed ones too), responses read by Content-Length.
// It shares no code with sluice's HTTP parser, so tests check sluice against
// an independent reading of the bytes. Everything waits on poll() with a
// deadline.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/core/endpoint.hpp"

namespace sluice::test {

struct http_reply {
  int status = 0;
  std::string head;  // status line and fields, up to and without the blank line
  std::string body;
  // The value of field `name` (case-insensitive), or "" if absent.
  [[nodiscard]] std::string field(std::string_view name) const;
};

class http_client {
 public:
  explicit http_client(const endpoint& server);
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;
  ~http_client();

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }
  // Sends raw bytes.
  bool send(std::string_view bytes);
  // Reads the next response (a 1xx has no body), or nullopt on EOF, error
  // or timeout. `head_only` for the response to a HEAD request.
  std::optional<http_reply> read_reply(bool head_only = false, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True once the server has closed the connection (EOF after any pending
  // bytes, which are discarded), within the timeout.
  bool closed_by_server(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

// "GET /path HTTP/1.1\r\nHost: test\r\n\r\n" plus any extra header lines.
std::string get_request(std::string_view path, std::string_view extra_headers = {});

}  // namespace sluice::test
