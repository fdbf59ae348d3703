#include "http_handler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sluice/core/http/status.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::httpd {

namespace {
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

http_handler::~http_handler() {
  for (auto& s : sessions_) end_file(*s);
}

http_handler::session* http_handler::acquire() {
  if (free_.empty()) {
    // A new high-water mark of open connections on this loop: the only
    // allocation, and a parser comes with it.
    sessions_.push_back(std::make_unique<session>(limits_));
    return sessions_.back().get();
  }
  session* s = free_.back();
  free_.pop_back();
  return s;
}

void http_handler::on_open(connection& c) noexcept {
  session* s = nullptr;
  try {
    // free_ may need room for this session later: reserve it now, so that
    // on_close never allocates.
    free_.reserve(sessions_.size() + 1);
    s = acquire();
  } catch (...) {
    c.close(close_reason::resource_limit);
    return;
  }
  s->parser.reset();
  s->done = false;
  c.set_context(s);
  s->deadline.start(c, header_timeout_);
}

void http_handler::on_close(connection& c, close_reason) noexcept {
  auto* s = c.context_as<session>();
  if (s == nullptr) return;
  end_file(*s);
  s->deadline.met();
  s->parser.reset();  // drops any partial request's buffers now
  free_.push_back(s);  // capacity reserved in on_open
  c.set_context(nullptr);
}

void http_handler::on_data(connection& c) noexcept { serve(c); }

void http_handler::serve(connection& c) noexcept {
  auto* s = c.context_as<session>();
  if (s == nullptr) return;
  writer_.tick(c.loop().now());
  for (;;) {
    if (s->file_fd >= 0 && !pump_file(c, *s)) return;  // on_writable brings us back
    if (s->done || !c.is_open()) return;
    // Output above its high-water mark: stop answering; input waits (and
    // reading stops at the input limit) until on_writable.
    if (!c.writable()) return;
    switch (s->parser.parse(c.input())) {
      case http::request_parser::status::request:
        s->deadline.met();
        respond(c, *s, s->parser.current());
        continue;
      case http::request_parser::status::expect_continue:
        s->deadline.begun();  // a head came: its body is still due
        if (!c.write(continue_response)) c.close(close_reason::resource_limit);
        continue;
      case http::request_parser::status::need_more:
        s->deadline.waiting(c, header_timeout_);
        return;
      case http::request_parser::status::error:
        s->deadline.met();
        s->done = true;
        http::reject(c, s->parser.error_status());
        return;
      case http::request_parser::status::head:
      case http::request_parser::status::body:
        return;  // streaming mode only; this parser hands out whole requests
    }
  }
}

void http_handler::respond(connection& c, session& s, http::request& r) noexcept {
  const after_response after = !r.keep_alive()           ? after_response::close
                               : r.version_minor() == 0 ? after_response::keep_open_http10
                                                        : after_response::keep_open;
  const bool get = r.method() == http::verb::get;
  const bool head = r.method() == http::verb::head;
  bool ok = true;
  if ((get || head) && files_ == nullptr && r.target() == "/" && after == after_response::keep_open) {
    // The benchmarked path: one copy of a response made once per second.
    ok = c.write(writer_.hello(head));
  } else if (r.path() == "/echo") {
    if (r.method() == http::verb::post || r.method() == http::verb::put) {
      // The body goes back as it came: its segments move to the output.
      ok = writer_.write_head(c, 200, "application/octet-stream", r.body().size(), after) &&
           c.send(std::move(r.body()));
    } else {
      ok = writer_.write_text(c, 405, "Method Not Allowed\n", after, "Allow: POST, PUT\r\n");
    }
  } else if (get || head) {
    if (files_ != nullptr) {
      serve_file(c, s, r, after);
      return;
    }
    ok = r.path() == "/" ? write_hello(c, head, after) : writer_.write_text(c, 404, "Not Found\n", after);
  } else {
    ok = writer_.write_text(c, 405, "Method Not Allowed\n", after, "Allow: GET, HEAD\r\n");
  }
  finish_response(c, s, ok, after);
}

void http_handler::finish_response(connection& c, session& s, bool queued, after_response after) noexcept {
  if (!queued) {
    // The output refused the response (its limit or buffer memory): the
    // stream cannot go on consistently.
    s.done = true;
    c.close(close_reason::resource_limit);
  } else if (after == after_response::close) {
    s.done = true;
    c.close(close_reason::local);  // after the response is out
  }
}

void http_handler::serve_file(connection& c, session& s, const http::request& r, after_response after) noexcept {
  static_files::file f;
  const bool head = r.method() == http::verb::head;
  bool ok = true;
  switch (files_->lookup(r.path(), f)) {
    case static_files::outcome::found:
      ok = writer_.write_head(c, 200, f.content_type, f.size, after);
      if (!ok || head || f.size == 0) {
        ::close(f.fd);
        break;
      }
      s.file_fd = f.fd;
      s.file_offset = 0;
      s.file_left = f.size;
      if (after == after_response::close) s.done = true;
      (void)pump_file(c, s);  // the rest from on_writable
      return;
    case static_files::outcome::not_found:
      // A root without index.html still answers the hello page.
      ok = r.path() == "/" ? write_hello(c, head, after) : writer_.write_text(c, 404, "Not Found\n", after);
      break;
    case static_files::outcome::forbidden:
      ok = writer_.write_text(c, 403, "Forbidden\n", after);
      break;
    case static_files::outcome::bad_path:
      s.done = true;
      http::reject(c, 400);
      return;
  }
  finish_response(c, s, ok, after);
}

bool http_handler::write_hello(connection& c, bool head_only, after_response after) const noexcept {
  return writer_.write_head(c, 200, "text/plain", response_writer::hello_body.size(), after) &&
         (head_only || c.write(response_writer::hello_body));
}

bool http_handler::pump_file(connection& c, session& s) noexcept {
  const std::size_t segment = c.loop().pool().segment_size();
  while (s.file_left > 0) {
    if (!c.writable()) {
      c.flush();
      return false;  // on_writable continues
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(s.file_left, segment));
    auto room = c.output().reserve(want);
    if (room.empty()) {
      // Out of buffer memory with a response half sent: nothing else can
      // finish it consistently.
      end_file(s);
      c.abort();
      return false;
    }
    const std::size_t n = std::min<std::size_t>(room.size(), want);
    const ssize_t got = ::pread(s.file_fd, room.data(), n, static_cast<off_t>(s.file_offset));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      // The file shrank or failed under us: the promised Content-Length
      // cannot be kept, so the connection is reset rather than lie.
      end_file(s);
      c.abort();
      return false;
    }
    c.output().commit(static_cast<std::size_t>(got));
    s.file_offset += static_cast<std::uint64_t>(got);
    s.file_left -= static_cast<std::uint64_t>(got);
  }
  c.flush();
  end_file(s);
  if (s.done && c.is_open()) c.close(close_reason::local);
  return true;
}

void http_handler::end_file(session& s) noexcept {
  if (s.file_fd >= 0) ::close(s.file_fd);
  s.file_fd = -1;
  s.file_left = 0;
}

}  // namespace sluice::httpd
