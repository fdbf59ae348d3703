// http_hello: an HTTP/1.1 server that answers GET / with a small text body
// (404 for anything else), keep-alive and pipelining included.
//
//   $ http_hello --listen=127.0.0.1:8080 &
//   $ curl http://127.0.0.1:8080/
//   Hello from sluice
#include <cstdio>
#include <string_view>

#include "sluice/core/http/request_parser.hpp"
#include "sluice/core/http/status.hpp"
#include "sluice/core/session.hpp"
#include "sluice/runtime/app_options.hpp"

namespace http = sluice::http;

// One parser per connection: it holds a request that arrives in pieces. Its
// field table is allocated when a session is first made (that may throw);
// reopen() recycles the session for the next connection without allocating.
struct http_session {
  explicit http_session(sluice::connection&) {}
  void reopen(sluice::connection&) noexcept { parser.reset(); }
  // Kept after its connection: give back the loop's buffers the parser holds.
  void on_close(sluice::connection&, sluice::close_reason) noexcept { parser.reset(); }

  void on_data(sluice::connection& c) noexcept {
    for (;;) {  // pipelined requests are answered in order
      switch (parser.parse(c.input())) {
        case http::request_parser::status::request:
          if (!respond(c, parser.current())) return;  // closing
          continue;
        case http::request_parser::status::expect_continue:
          (void)c.write("HTTP/1.1 100 Continue\r\n\r\n");
          continue;
        case http::request_parser::status::error:  // 400, 413, 431, ...: answer, then close
          return http::reject(c, parser.error_status());
        default:  // need_more: wait for the next on_data
          return;
      }
    }
  }

  // Queues the response (sent when on_data returns); false if the connection closes.
  static bool respond(sluice::connection& c, const http::request& r) noexcept {
    const bool hello = r.method() == http::verb::get && r.path() == "/";
    const std::string_view body = hello ? "Hello from sluice\n" : "Not found\n";
    char head[160];
    const int n = std::snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                                "Connection: %s\r\n\r\n", hello ? "200 OK" : "404 Not Found", body.size(),
                                r.keep_alive() ? "keep-alive" : "close");
    if (c.write({head, std::size_t(n)}) && c.write(body) && r.keep_alive()) return true;
    c.close();  // after the response has gone out
    return false;
  }

  http::request_parser parser;
};

int main(int argc, char** argv) {
  sluice::cli args("http_hello", "Answers GET / over HTTP/1.1.");
  sluice::app_options app;
  app.declare(args, "127.0.0.1:8080");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;

  sluice::runtime rt(app.runtime);
  for (const auto& at : app.listen) rt.listen(at, sluice::session_factory<http_session>());
  rt.on_serving([&] {  // every loop is up and every port 0 resolved
    for (const auto& at : rt.bound()) std::printf("http_hello listening on %s\n", at.to_string().c_str());
    std::fflush(stdout);
  });
  return rt.run("http_hello");
}
