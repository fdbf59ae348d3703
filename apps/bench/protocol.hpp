#pragma once
// What a sluice-bench mode plugs into the shared worker (worker.hpp): how to
// send message `seq` of a connection, and how to recognise and check its
// reply. A protocol is a class with
//
//   struct conn_state { ... };          // per connection
//   void open(conn_state&) noexcept;    // a connection (re)starts
//   bool send(connection&, conn_state&, std::uint32_t conn, std::uint64_t seq) noexcept;
//   reply_result receive(buffer_chain& in, conn_state&, std::uint32_t conn, std::uint64_t seq,
//                        std::string& why) noexcept;
//
// receive() consumes at most one reply from `in`; `why` is filled only when
// the reply is wrong (mismatch) or the stream cannot be read any more
// (broken: the worker closes that connection and counts it).
//
// A protocol object belongs to one worker (one loop); owner core only.

#include <cstddef>
#include <cstdint>

namespace sluice::bench {

enum class reply : std::uint8_t {
  none,      // no complete reply yet
  ok,        // the reply is complete and right
  mismatch,  // the reply is complete and wrong (bytes, status, length)
  broken,    // the reply cannot be framed: the connection is closed
};

struct reply_result {
  reply kind = reply::none;
  std::size_t bytes = 0;  // bytes of the reply on the wire, for MB/s
};

}  // namespace sluice::bench
