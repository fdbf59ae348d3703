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
// One handler per loop (http_handler, a sessions<> handler): it makes an
// http_session for each connection, which holds that connection's parser,
// header deadline and file in progress; what the loop's sessions share (the
// limits, the files, the Date cache) is an httpd_context. Sessions are
// recycled: a parser's field table is allocated once per pool slot, so
// steady-state connections allocate nothing. Owner core only.

#include <cstdint>

#include "response.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/http/request_deadline.hpp"
#include <optional>

#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/session.hpp"
#include "sluice/base/time.hpp"
#include "open_file_cache.hpp"
#include "static_files.hpp"

namespace sluice::httpd {

// What the sessions of one loop share.
struct httpd_context {
  // `files` is null without --root; it must outlive the handler. `cache`:
  // this loop's open-file cache in front of it (--open-file-cache).
  httpd_context(const http::limits& l, const static_files* f, duration header, bool over_tls = false,
                const open_file_cache_options& cache = {})
      : limits(l), files(f), header_timeout(header), tls(over_tls) {
    if (f != nullptr) open_files.emplace(*f, cache);
  }
  http::limits limits;
  const static_files* files;
  std::optional<open_file_cache> open_files;  // with files
  duration header_timeout;
  bool tls;  // served through tls::server_sessions: a late request closes without 408
  response_writer writer;  // the Date cache, refreshed from this loop's clock
};

// One connection of sluice-httpd.
class http_session {
 public:
  // Runs once per pool slot (recycled): it allocates the parser's field
  // table and may throw, which refuses that connection.
  http_session(httpd_context& ctx, connection& c);
  ~http_session() { end_file(); }
  http_session(const http_session&) = delete;
  http_session& operator=(const http_session&) = delete;

  // A new connection in this slot: a fresh connection's state.
  void reopen(connection& c) noexcept;
  void on_open(connection& c) noexcept;
  void on_data(connection& c) noexcept { serve(c); }
  void on_writable(connection& c) noexcept { serve(c); }
  void on_close(connection& c, close_reason why) noexcept;

 private:
  void serve(connection& c) noexcept;
  void respond(connection& c, http::request& r) noexcept;
  void serve_file(connection& c, const http::request& r, after_response after) noexcept;
  // After a response was queued (or refused): closes if the request or the
  // failure demands it.
  void finish_response(connection& c, bool queued, after_response after) noexcept;
  // The hello page with any Connection header (the cached copy covers only
  // HTTP/1.1 keep-alive).
  [[nodiscard]] bool write_hello(connection& c, bool head_only, after_response after) const noexcept;
  // Sends more of the current file; false while it is not finished.
  [[nodiscard]] bool pump_file(connection& c) noexcept;
  void end_file() noexcept;

  httpd_context& ctx_;
  http::request_parser parser_;
  http::request_deadline deadline_;  // the next request must be whole in time
  // A file being sent (fd >= 0): what is left of it.
  int file_fd_ = -1;
  bool file_owned_ = true;  // false: the open-file cache's descriptor, for this call only
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_left_ = 0;
  bool done_ = false;  // closing: answer nothing more
};

// The handler of one loop, made from (limits, files, header timeout).
using http_handler = sessions<http_session, httpd_context>;

}  // namespace sluice::httpd
