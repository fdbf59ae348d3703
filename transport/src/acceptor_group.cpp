#include "sluice/transport/acceptor_group.hpp"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "sluice/core/loop_base.hpp"

namespace sluice {

namespace {

// Groups by the address they listen on. Control plane only (listen, close).
std::mutex registry_mu;
std::vector<std::shared_ptr<acceptor_group>> registry;

// An accepted socket on its way to another loop: closed unless taken, so that
// a loop that stops before its inbox runs leaks nothing.
struct socket_in_transit {
  int fd;
  explicit socket_in_transit(int f) noexcept : fd(f) {}
  socket_in_transit(const socket_in_transit&) = delete;
  socket_in_transit& operator=(const socket_in_transit&) = delete;
  ~socket_in_transit() {
    if (fd >= 0) ::close(fd);
  }
  int take() noexcept { return std::exchange(fd, -1); }
};

}  // namespace

std::shared_ptr<acceptor_group> acceptor_group::find(const endpoint& bound) {
  std::lock_guard lock(registry_mu);
  for (auto& g : registry)
    if (g->bound() == bound) return g;
  return nullptr;
}

std::shared_ptr<acceptor_group> acceptor_group::create(const endpoint& bound, listener& owner, adopt_fn adopt,
                                                      handoff_policy policy) {
  auto g = std::make_shared<acceptor_group>(bound, owner, policy);
  g->join(owner, adopt);
  std::lock_guard lock(registry_mu);
  std::erase_if(registry, [&](const auto& other) { return other->bound() == bound; });
  registry.push_back(g);
  return g;
}

void acceptor_group::join(listener& member, adopt_fn adopt) {
  std::lock_guard lock(mu_);
  members_.push_back({&member, adopt});
}

void acceptor_group::leave(listener& m) noexcept {
  bool owner_left = false;
  {
    std::lock_guard lock(mu_);
    std::erase_if(members_, [&](const member& x) { return x.l == &m; });
    owner_left = &m == owner_;
  }
  if (owner_left) {
    std::lock_guard lock(registry_mu);
    std::erase_if(registry, [&](const auto& g) { return g.get() == this; });
  }
}

void acceptor_group::hand_off(int fd, const endpoint& peer) noexcept {
  std::unique_lock lock(mu_);
  if (members_.empty()) {
    ::close(fd);
    return;
  }
  member m = members_[pick(peer)];
  if (m.l == owner_) {
    // Our own share: no hop.
    lock.unlock();
    m.adopt(*m.l, fd, peer);
    return;
  }
  // Posting while holding the lock: a member leaves under the same lock, so
  // nothing is posted to a loop whose listener is gone. Its inbox runs the
  // adoption on its own thread, and only while that loop (and so the
  // listener) lives; a closure never run just closes the socket.
  std::shared_ptr<socket_in_transit> in_transit;
  try {
    in_transit = std::make_shared<socket_in_transit>(fd);
  } catch (...) {
    ::close(fd);  // no memory for the hand-off: the client sees the connection end
    return;
  }
  try {
    listener* l = m.l;
    adopt_fn adopt = m.adopt;
    l->loop().post([in_transit, l, adopt, peer] {
      if (!l->closed()) adopt(*l, in_transit->take(), peer);
    });
  } catch (...) {
    // Not posted: in_transit closes the socket when it goes out of scope.
  }
}

std::size_t acceptor_group::pick(const endpoint& peer) noexcept {
  switch (policy_) {
    case handoff_policy::least_connections: {
      // Each loop's own counter (relaxed atomics, any thread may read):
      // connections already handed over but not yet adopted are not counted
      // yet, so a burst still spreads by the ties going round robin.
      std::size_t best = next_++ % members_.size();
      std::uint64_t fewest = members_[best].l->loop().stats().connections.get();
      for (std::size_t i = 0; i < members_.size(); ++i) {
        std::uint64_t n = members_[i].l->loop().stats().connections.get();
        if (n < fewest) {
          fewest = n;
          best = i;
        }
      }
      return best;
    }
    case handoff_policy::source_hash:
      return static_cast<std::size_t>(peer.address_hash() % members_.size());
    case handoff_policy::round_robin:
    default:
      return next_++ % members_.size();
  }
}

std::size_t acceptor_group::members() const {
  std::lock_guard lock(mu_);
  return members_.size();
}

}  // namespace sluice
