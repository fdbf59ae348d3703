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

http_session::http_session(httpd_context& ctx, connection&) : ctx_(ctx), parser_(ctx.limits) {
  // A 408 written from the deadline's timer would bypass TLS.
  deadline_.set_quiet(ctx.tls);
}

void http_session::reopen(connection&) noexcept {
  parser_.reset();
  done_ = false;
}

void http_session::on_open(connection& c) noexcept { deadline_.start(c, ctx_.header_timeout); }

void http_session::on_close(connection&, close_reason) noexcept {
  end_file();
  deadline_.met();
  parser_.reset();  // drops any partial request's buffers now
}

void http_session::serve(connection& c) noexcept {
  ctx_.writer.tick(c.loop().now());
  for (;;) {
    if (file_fd_ >= 0 && !pump_file(c)) return;  // on_writable brings us back
    if (done_ || !c.is_open()) return;
    // Output above its high-water mark: stop answering; input waits (and
    // reading stops at the input limit) until on_writable.
    if (!c.writable()) return;
    switch (parser_.parse(c.input())) {
      case http::request_parser::status::request:
        deadline_.met();
        respond(c, parser_.current());
        continue;
      case http::request_parser::status::expect_continue:
        deadline_.begun();  // a head came: its body is still due
        if (!c.write(continue_response)) c.close(close_reason::resource_limit);
        continue;
      case http::request_parser::status::need_more:
        deadline_.waiting(c, ctx_.header_timeout);
        return;
      case http::request_parser::status::error:
        deadline_.met();
        done_ = true;
        http::reject(c, parser_.error_status());
        return;
      case http::request_parser::status::head:
      case http::request_parser::status::body:
        return;  // streaming mode only; this parser hands out whole requests
    }
  }
}

void http_session::respond(connection& c, http::request& r) noexcept {
  const after_response after = !r.keep_alive()           ? after_response::close
                               : r.version_minor() == 0 ? after_response::keep_open_http10
                                                        : after_response::keep_open;
  const bool get = r.method() == http::verb::get;
  const bool head = r.method() == http::verb::head;
  bool ok = true;
  const response_writer& writer = ctx_.writer;
  if ((get || head) && ctx_.files == nullptr && r.target() == "/" && after == after_response::keep_open) {
    // The benchmarked path: one copy of a response made once per second.
    ok = c.write(writer.hello(head));
  } else if (r.path() == "/echo") {
    if (r.method() == http::verb::post || r.method() == http::verb::put) {
      // The body goes back as it came: its segments move to the output.
      ok = writer.write_head(c, 200, "application/octet-stream", r.body().size(), after) &&
           c.send(std::move(r.body()));
    } else {
      ok = writer.write_text(c, 405, "Method Not Allowed\n", after, "Allow: POST, PUT\r\n");
    }
  } else if (get || head) {
    if (ctx_.files != nullptr) {
      serve_file(c, r, after);
      return;
    }
    ok = r.path() == "/" ? write_hello(c, head, after) : writer.write_text(c, 404, "Not Found\n", after);
  } else {
    ok = writer.write_text(c, 405, "Method Not Allowed\n", after, "Allow: GET, HEAD\r\n");
  }
  finish_response(c, ok, after);
}

void http_session::finish_response(connection& c, bool queued, after_response after) noexcept {
  if (!queued) {
    // The output refused the response (its limit or buffer memory): the
    // stream cannot go on consistently.
    done_ = true;
    c.close(close_reason::resource_limit);
  } else if (after == after_response::close) {
    done_ = true;
    c.close(close_reason::local);  // after the response is out
  }
}

void http_session::serve_file(connection& c, const http::request& r, after_response after) noexcept {
  static_files::file f;
  const bool head = r.method() == http::verb::head;
  const response_writer& writer = ctx_.writer;
  bool ok = true;
  switch (ctx_.open_files->lookup(r.path(), f, c.loop().now())) {
    case static_files::outcome::found:
      ok = writer.write_head(c, 200, f.content_type, f.size, after);
      if (!ok || head || f.size == 0 || f.content.data() != nullptr) {
        // A small file from the cache goes as one copy of its bytes.
        if (ok && !head && f.content.data() != nullptr) ok = c.write(f.content);
        if (f.owned) ::close(f.fd);
        break;
      }
      file_fd_ = f.fd;
      file_owned_ = f.owned;
      file_offset_ = 0;
      file_left_ = f.size;
      if (after == after_response::close) done_ = true;
      if (!pump_file(c) && file_fd_ >= 0 && !file_owned_) {
        // The rest goes from on_writable, after other lookups may have
        // closed the cache's descriptor: this response keeps its own.
        file_fd_ = open_file_cache::take(f);
        file_owned_ = true;
        if (file_fd_ < 0) c.abort();  // out of descriptors: cannot finish what the head promised
      }
      return;
    case static_files::outcome::not_found:
      // A root without index.html still answers the hello page.
      ok = r.path() == "/" ? write_hello(c, head, after) : writer.write_text(c, 404, "Not Found\n", after);
      break;
    case static_files::outcome::forbidden:
      ok = writer.write_text(c, 403, "Forbidden\n", after);
      break;
    case static_files::outcome::bad_path:
      done_ = true;
      http::reject(c, 400);
      return;
  }
  finish_response(c, ok, after);
}

bool http_session::write_hello(connection& c, bool head_only, after_response after) const noexcept {
  return ctx_.writer.write_head(c, 200, "text/plain", response_writer::hello_body.size(), after) &&
         (head_only || c.write(response_writer::hello_body));
}

bool http_session::pump_file(connection& c) noexcept {
  const std::size_t segment = c.loop().pool().segment_size();
  while (file_left_ > 0) {
    if (!c.writable()) {
      c.flush();
      return false;  // on_writable continues
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(file_left_, segment));
    auto room = c.output().reserve(want);
    if (room.empty()) {
      // Out of buffer memory with a response half sent: nothing else can
      // finish it consistently.
      end_file();
      c.abort();
      return false;
    }
    const std::size_t n = std::min<std::size_t>(room.size(), want);
    const ssize_t got = ::pread(file_fd_, room.data(), n, static_cast<off_t>(file_offset_));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      // The file shrank or failed under us: the promised Content-Length
      // cannot be kept, so the connection is reset rather than lie.
      end_file();
      c.abort();
      return false;
    }
    c.output().commit(static_cast<std::size_t>(got));
    file_offset_ += static_cast<std::uint64_t>(got);
    file_left_ -= static_cast<std::uint64_t>(got);
  }
  c.flush();
  end_file();
  if (done_ && c.is_open()) c.close(close_reason::local);
  return true;
}

void http_session::end_file() noexcept {
  if (file_fd_ >= 0 && file_owned_) ::close(file_fd_);
  file_fd_ = -1;
  file_left_ = 0;
}

}  // namespace sluice::httpd
