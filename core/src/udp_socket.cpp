#include "sluice/core/udp_socket.hpp"

#include <cstring>
#include <new>

#include "sluice/core/loop_base.hpp"

namespace sluice {

udp_socket::udp_socket(loop_base& loop, datagram_handler& h) noexcept
    : loop_(&loop),
      handler_(&h),
      queue_(new (std::nothrow) queued[max_queued]),
      arena_(new (std::nothrow) std::byte[tx_arena_bytes]) {}

bool udp_socket::send_to(const endpoint& to, std::string_view payload) noexcept {
  if (io.closed || !queue_ || !arena_ || queued_n_ == max_queued ||
      arena_used_ + payload.size() > tx_arena_bytes) {
    loop_->stats().datagrams_dropped.add();
    return false;
  }
  std::memcpy(arena_.get() + arena_used_, payload.data(), payload.size());
  queue_[queued_n_++] = queued{to, static_cast<std::uint32_t>(arena_used_), static_cast<std::uint32_t>(payload.size())};
  arena_used_ += payload.size();
  loop_->udp_queued(*this);
  return true;
}

void udp_socket::dequeue(std::size_t n) noexcept {
  if (n >= queued_n_) {
    queued_n_ = 0;
    arena_used_ = 0;
    return;
  }
  // Rare (a partial sendmmsg): keep the tail in order.
  std::memmove(queue_.get(), queue_.get() + n, (queued_n_ - n) * sizeof(queued));
  queued_n_ -= n;
}

}  // namespace sluice
