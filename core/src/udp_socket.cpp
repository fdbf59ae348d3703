#include "sluice/core/udp_socket.hpp"

#include <cstring>
#include <new>

#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice {

void datagram_handler::on_datagram_chain(udp_socket& socket, const endpoint& from, buffer_chain& payload) noexcept {
  // A view of the whole payload: in place when it lies in one buffer, else
  // copied once into the pool's scratch arena.
  auto view = payload.peek(payload.size());
  if (!view) {
    socket.loop().stats().datagrams_dropped.add();
    return;
  }
  on_datagram(socket, from, *view);
}

udp_socket::udp_socket(loop_base& loop, datagram_handler& h) noexcept
    : loop_(&loop),
      handler_(&h),
      queue_(new (std::nothrow) queued[max_queued]),
      arena_(new (std::nothrow) std::byte[tx_arena_bytes]),
      chains_(new (std::nothrow) buffer_chain[max_queued]) {}

std::byte* udp_socket::reserve(std::size_t n) noexcept {
  if (io.closed || !queue_ || !arena_ || queued_n_ == max_queued || arena_used_ + n > tx_arena_bytes) {
    loop_->stats().datagrams_dropped.add();
    return nullptr;
  }
  return arena_.get() + arena_used_;
}

bool udp_socket::send_to(const endpoint& to, std::string_view payload) noexcept {
  std::byte* at = reserve(payload.size());
  if (at == nullptr) return false;
  std::memcpy(at, payload.data(), payload.size());
  queue_[queued_n_++] = queued{to, static_cast<std::uint32_t>(arena_used_), static_cast<std::uint32_t>(payload.size())};
  arena_used_ += payload.size();
  loop_->udp_queued(*this);
  return true;
}

bool udp_socket::send_to(const endpoint& to, buffer_chain&& payload) noexcept {
  const std::size_t n = payload.size();
  if (!io.takes_chains) {
    // Kernel transports send from the arena: one copy, as send_to(view).
    std::byte* at = reserve(n);
    if (at == nullptr) {
      payload.clear();
      return false;
    }
    payload.copy_out(at, n);
    payload.clear();
    queue_[queued_n_++] = queued{to, static_cast<std::uint32_t>(arena_used_), static_cast<std::uint32_t>(n)};
    arena_used_ += n;
    loop_->udp_queued(*this);
    return true;
  }
  if (io.closed || !queue_ || !chains_ || queued_n_ == max_queued) {
    loop_->stats().datagrams_dropped.add();
    payload.clear();
    return false;
  }
  chains_[queued_n_] = std::move(payload);
  queue_[queued_n_++] = queued{to, chain_offset, static_cast<std::uint32_t>(n)};
  loop_->udp_queued(*this);
  return true;
}

void udp_socket::dequeue(std::size_t n) noexcept {
  if (n >= queued_n_) {
    if (chains_) {
      for (std::size_t i = 0; i < queued_n_; ++i) chains_[i].clear();
    }
    queued_n_ = 0;
    arena_used_ = 0;
    return;
  }
  // Rare (a partial sendmmsg): keep the tail in order.
  for (std::size_t i = 0; i < queued_n_ - n; ++i) {
    queue_[i] = queue_[i + n];
    if (chains_) chains_[i] = std::move(chains_[i + n]);
  }
  if (chains_) {
    for (std::size_t i = queued_n_ - n; i < queued_n_; ++i) chains_[i].clear();
  }
  queued_n_ -= n;
}

}  // namespace sluice
