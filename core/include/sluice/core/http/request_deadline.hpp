#pragma once
// How long a server waits for a request (slow clients, slowloris): the first
// request within `timeout` of the connection's opening, each later one within
// `timeout` of its first byte, however slowly the rest trickles in. A
// keep-alive connection idle between requests is not its concern (the loop's
// idle timeout is), so that a client's connection pool can keep it.
// On expiry, a connection that sent part of a request gets 408 and closes
// (http::reject: counted in requests_rejected); one that sent nothing is
// closed quietly (idle_timeout). sluice-httpd and the gateway's admin
// endpoint use it.
//
//   struct session { http::request_parser parser; http::request_deadline deadline; };
//   on_open:     s.deadline.start(c, timeout);
//   need_more:   s.deadline.waiting(c, timeout);
//   a request, or an error answered: s.deadline.met();
//   on_close:    s.deadline.met();
//
// Owner core only; no allocation. The object must not move while armed.

#include "sluice/core/connection.hpp"
#include "sluice/base/time.hpp"
#include "sluice/core/timer_wheel.hpp"

namespace sluice::http {

// The request deadline of one connection (see the file comment): one per
// session, next to its request_parser.
class request_deadline {
 public:
  request_deadline() noexcept { timer_.bind<&request_deadline::expired>(this); }
  request_deadline(const request_deadline&) = delete;
  request_deadline& operator=(const request_deadline&) = delete;

  // The connection opened: its first request is due within `timeout`.
  void start(connection& c, duration timeout) noexcept;
  // The parser needs more: if the input holds part of a request, that request
  // is due within `timeout` of when it began.
  void waiting(connection& c, duration timeout) noexcept;
  // On expiry, close quietly (read_timeout) instead of answering 408: for a
  // connection whose raw output cannot carry a response outside the
  // session's callbacks (TLS, see tls/server_sessions.hpp).
  void set_quiet(bool quiet) noexcept { quiet_ = quiet; }
  // Part of a request came that the input no longer shows (a head whose body
  // is still due, after 100 Continue).
  void begun() noexcept { partial_ = true; }
  // The request is complete, refused, or the connection closed.
  void met() noexcept {
    timer_.cancel();
    partial_ = false;
  }

 private:
  void arm(connection& c, duration timeout) noexcept;
  void expired() noexcept;

  timer timer_;
  loop_base* loop_ = nullptr;
  connection_handle conn_;
  bool partial_ = false;  // part of the request due has come
  bool quiet_ = false;    // no 408 on expiry (set_quiet)
};

}  // namespace sluice::http
