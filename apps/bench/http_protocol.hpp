#pragma once
// `sluice-bench http`: GET --path with keep-alive (and --pipeline requests
// in flight per connection); each response is framed by libhttp-parser
// (status line, headers, Content-Length or chunked body) and checked: the
// status must be --expect-status (200) and, with --expect-body, the body
// must be exactly that.

#include <http_parser.h>

#include <string>

#include "protocol.hpp"
#include "settings.hpp"
#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"

namespace sluice::bench {

class http_protocol {
 public:
  struct conn_state {
    http_parser parser{};
    const http_protocol* owner = nullptr;
    std::uint64_t body_seen = 0;
    bool wrong = false;        // the current response failed a check
    const char* why = nullptr;  // which check
  };

  explicit http_protocol(const settings& s);

  void open(conn_state& st) noexcept;
  bool send(connection& c, conn_state&, std::uint32_t, std::uint64_t) noexcept { return c.write(request_); }
  reply_result receive(buffer_chain& in, conn_state& st, std::uint32_t conn, std::uint64_t seq,
                       std::string& why) noexcept;

 private:
  friend struct http_callbacks;
  std::string request_;
  unsigned expect_status_;
  bool check_body_;
  std::string expect_body_;
};

}  // namespace sluice::bench
