#pragma once
// `sluice-bench echo`: messages of --size pseudo-random bytes; the reply is
// the same bytes, checked byte for byte.

#include <cstring>
#include <string>
#include <vector>

#include "payload.hpp"
#include "protocol.hpp"
#include "settings.hpp"

namespace sluice::bench {

class echo_protocol {
 public:
  struct conn_state {};

  explicit echo_protocol(const settings& s) : size_(s.size), expected_(s.size) {}

  void open(conn_state&) noexcept {}

  bool send(connection& c, conn_state&, std::uint32_t conn, std::uint64_t seq) noexcept {
    return write_message(c, expected_, size_, conn, seq);
  }

  reply_result receive(buffer_chain& in, conn_state&, std::uint32_t conn, std::uint64_t seq, std::string& why) noexcept {
    if (in.size() < size_) return {};
    auto got = in.next(size_);
    if (!got) return {reply::broken, 0};
    fill_message(expected_.data(), size_, conn, seq);
    if (std::memcmp(got->data(), expected_.data(), size_) != 0) {
      why = "echoed bytes differ from the bytes sent";
      return {reply::mismatch, size_};
    }
    return {reply::ok, size_};
  }

 private:
  std::size_t size_;
  std::vector<std::byte> expected_;
};

}  // namespace sluice::bench
