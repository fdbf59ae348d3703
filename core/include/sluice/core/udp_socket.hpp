#pragma once
// A bound UDP socket on one loop. Received datagrams go to its datagram_handler;
// send_to() queues a datagram that the loop sends in its flush phase (one
// sendmmsg for the iteration's replies on kernel transports, one burst on the
// user-space stack).
//
// Owner core only; owned by its loop.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/endpoint.hpp"

namespace sluice {

class datagram_handler;
class loop_base;

// A UDP socket bound on one loop (see the file comment). Made by
// loop_base::udp_bind, which returns a pointer valid until the loop dies.
class udp_socket {
 public:
  // Datagrams that can wait in one iteration's send queue; send_to beyond that
  // fails (counted as dropped).
  static constexpr std::size_t max_queued = 256;
  // Bytes of copied payloads one iteration's send queue holds.
  static constexpr std::size_t tx_arena_bytes = 256 * 1024;

  // Made by transports in udp_bind, with the loop that owns it and the handler
  // its datagrams go to. Allocates its queue and arena (a failed allocation
  // makes every send_to fail).
  udp_socket(loop_base& loop, datagram_handler& h) noexcept;
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;

  // Queues one datagram (payload copied). False, and counted as dropped, when
  // the iteration's queue or its byte arena is full, or the socket is closed.
  [[nodiscard]] bool send_to(const endpoint& to, std::string_view payload) noexcept;
  // Queues one datagram whose payload is a chain, moved in. Where the
  // transport takes chains (the user-space stack: io.takes_chains) nothing is
  // copied, and an echo of a received chain goes out in the buffer it came in;
  // elsewhere the bytes are copied into the arena now. False (the chain is
  // dropped and counted) when the queue or the arena is full.
  [[nodiscard]] bool send_to(const endpoint& to, buffer_chain&& payload) noexcept;
  // The address bound (port 0 resolved).
  [[nodiscard]] const endpoint& local() const noexcept { return io.local; }
  // The loop that owns it.
  [[nodiscard]] loop_base& loop() const noexcept { return *loop_; }
  // The handler received datagrams go to.
  [[nodiscard]] datagram_handler& get_handler() const noexcept { return *handler_; }

  // ---- for transports ----
  // A datagram waiting in the send queue.
  struct queued {
    endpoint to;  // destination
    std::uint32_t offset;  // into arena(), or chain_offset: the payload is queued_chain(i)
    std::uint32_t size;  // payload bytes
  };
  // queued::offset of a datagram whose payload is a chain (queued_chain(i)).
  static constexpr std::uint32_t chain_offset = UINT32_MAX;
  // Datagrams in the send queue.
  [[nodiscard]] std::size_t queued_count() const noexcept { return queued_n_; }
  // The i-th queued datagram (i < queued_count()).
  [[nodiscard]] const queued& queued_at(std::size_t i) const noexcept { return queue_[i]; }
  // Where copied payloads lie (queued::offset indexes it).
  [[nodiscard]] const std::byte* arena() const noexcept { return arena_.get(); }
  // The payload of queued datagram i when its offset is chain_offset.
  [[nodiscard]] buffer_chain& queued_chain(std::size_t i) noexcept { return chains_[i]; }
  // Forgets the first n queued datagrams (sent or dropped).
  void dequeue(std::size_t n) noexcept;
  // The transport's state for this socket. For transports only.
  struct io_state {
    int fd = -1;                 // the socket (-1: none, or not a kernel socket)
    endpoint local;              // the address bound
    bool closed = false;         // close_udp() was called
    bool in_flush_list = false;  // queued in the loop's UDP flush list for this iteration
    // The transport sends chains as they are (set at bind, before any send).
    bool takes_chains = false;
  };
  // This socket's transport state (see io_state).
  io_state io;

 private:
  // Room for a payload of n bytes at the arena's end, or nullptr (counted).
  [[nodiscard]] std::byte* reserve(std::size_t n) noexcept;

  loop_base* loop_;
  datagram_handler* handler_;
  std::unique_ptr<queued[]> queue_;
  std::unique_ptr<std::byte[]> arena_;
  // One slot per queue entry, used only by chain entries.
  std::unique_ptr<buffer_chain[]> chains_;
  std::size_t queued_n_ = 0;
  std::size_t arena_used_ = 0;
};

}  // namespace sluice
