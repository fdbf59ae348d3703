#pragma once
// sluice-httpd's connection handler: parses requests with http::request_parser
// (pipelined ones in order), answers them into the connection's output and
// lets the loop send everything one read produced with one write.
//
// Routes:
//   GET|HEAD /          "Hello, World!" (13 bytes, text/plain); with --root,
//                       the root's index.html when it has one
//   GET|HEAD /PATH      with --root: the file under the root (404, 403)
//   POST|PUT /echo      the request body, sent back without copying (other
//                       methods: 405; /echo is never a file, even with --root)
//   anything else       404, or 405 with Allow
// Malformed requests and requests over a limit get 400/413/414/431 and that
// connection closes (http::reject); other connections are untouched.
//
// Header timeout (--header-timeout, default 10s): whenever a connection waits
// for a request (from its opening, and after each request it sent), the
// request must have arrived whole within that time, or the connection ends:
// with 408 if part of a request came, quietly if nothing did (an idle
// keep-alive connection). sluice-httpd reads whole requests, so a body counts
// too. A slow client (slowloris) thus holds a connection for a bounded time.
//
// Files are read with pread(2) on the loop thread into the output chain, a
// few segments at a time while the output is below its high-water mark, so
// a large file streams without holding it in memory and later pipelined
// requests wait their turn.
//
// One handler per loop; it owns a free list of per-connection sessions (a
// parser each), so steady-state connections allocate nothing. Owner core only.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "response.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/http/request_deadline.hpp"
#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "static_files.hpp"

namespace sluice::httpd {

class http_handler final : public handler {
 public:
  // `files` is null without --root; it must outlive the handler.
  http_handler(const http::limits& limits, const static_files* files, duration header_timeout)
      : limits_(limits), files_(files), header_timeout_(header_timeout) {}
  ~http_handler() override;

  void on_open(connection& c) noexcept override;
  void on_data(connection& c) noexcept override;
  void on_writable(connection& c) noexcept override { serve(c); }
  void on_close(connection& c, close_reason why) noexcept override;

 private:
  struct session {
    explicit session(const http::limits& l) : parser(l) {}
    http::request_parser parser;
    http::request_deadline deadline;  // the next request must be whole in time
    // A file being sent (fd >= 0): what is left of it.
    int file_fd = -1;
    std::uint64_t file_offset = 0;
    std::uint64_t file_left = 0;
    bool done = false;  // closing: answer nothing more
  };

  void serve(connection& c) noexcept;
  // The header timer fired: 408 (part of a request came) or a quiet close.
  void respond(connection& c, session& s, http::request& r) noexcept;
  void serve_file(connection& c, session& s, const http::request& r, after_response after) noexcept;
  // After a response was queued (or refused): closes if the request or the
  // failure demands it.
  void finish_response(connection& c, session& s, bool queued, after_response after) noexcept;
  // The hello page with any Connection header (the cached copy covers only
  // HTTP/1.1 keep-alive).
  [[nodiscard]] bool write_hello(connection& c, bool head_only, after_response after) const noexcept;
  // Sends more of the current file; false while it is not finished.
  [[nodiscard]] bool pump_file(connection& c, session& s) noexcept;
  void end_file(session& s) noexcept;
  session* acquire();

  http::limits limits_;
  const static_files* files_;
  duration header_timeout_;
  response_writer writer_;
  std::vector<std::unique_ptr<session>> sessions_;  // all ever made, for ownership
  std::vector<session*> free_;
};

}  // namespace sluice::httpd
