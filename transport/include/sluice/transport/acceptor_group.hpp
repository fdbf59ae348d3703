#pragma once
// One listening socket shared by several loops, for kernels that cannot spread
// connections over one socket per loop (macOS: SO_REUSEPORT there lets sockets
// share a port but does not balance between them). The loop that opened the
// socket (the owner) accepts every connection and hands each to the group's
// members in turn (round robin, itself included); a member takes its share
// through its loop's inbox and registers the socket with its own poller.
//
// Groups are found by the address they listen on (port resolved), so the
// runtime's "every loop listens on loop 0's port" becomes "loop 0 listens,
// the others join" without the runtime knowing.
//
// Thread safety: any thread (a mutex guards membership). hand_off() runs on
// the owner's loop; adopt functions run on the member's loop. The data path
// of a member (its connections) never touches the group.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "sluice/core/endpoint.hpp"
#include "sluice/core/listener.hpp"

namespace sluice {

// How the owner picks the member that gets a connection.
enum class handoff_policy : std::uint8_t {
  round_robin,        // each member in turn
  least_connections,  // the member whose loop has the fewest open connections
  source_hash,        // by the client's address: one client, one loop
};

class acceptor_group {
 public:
  // Takes over an accepted, non-blocking socket on the member's own loop
  // (registers it, opens a connection with the member's handler).
  using adopt_fn = void (*)(listener& member, int fd, const endpoint& peer) noexcept;

  // The group listening on `bound`, or nullptr.
  [[nodiscard]] static std::shared_ptr<acceptor_group> find(const endpoint& bound);
  // A new group for `bound`, whose socket `owner` accepts on; `owner` is its
  // first member. Replaces a group left registered under the same address.
  [[nodiscard]] static std::shared_ptr<acceptor_group> create(const endpoint& bound, listener& owner, adopt_fn adopt,
                                                              handoff_policy policy = handoff_policy::round_robin);

  acceptor_group(const endpoint& bound, listener& owner, handoff_policy policy)
      : bound_(bound), owner_(&owner), policy_(policy) {}
  acceptor_group(const acceptor_group&) = delete;
  acceptor_group& operator=(const acceptor_group&) = delete;

  // Adds a member (called on the member's loop).
  void join(listener& member, adopt_fn adopt);
  // Removes a member (called on the member's loop when it stops listening).
  // Sockets already on their way to it are closed when they arrive. The
  // owner leaving unregisters the group: nobody accepts for it any more.
  void leave(listener& member) noexcept;
  // Gives one accepted socket to the member the policy picks. Owner's loop
  // only. Never loses the socket: it is adopted, or closed when no member
  // can take it.
  void hand_off(int fd, const endpoint& peer) noexcept;

  [[nodiscard]] std::size_t members() const;
  [[nodiscard]] const endpoint& bound() const noexcept { return bound_; }
  [[nodiscard]] handoff_policy policy() const noexcept { return policy_; }

 private:
  struct member {
    listener* l;
    adopt_fn adopt;
  };

  // The member for a connection from `peer` (mu_ held, members_ not empty).
  [[nodiscard]] std::size_t pick(const endpoint& peer) noexcept;

  endpoint bound_;
  listener* owner_;
  handoff_policy policy_;
  mutable std::mutex mu_;
  std::vector<member> members_;
  std::size_t next_ = 0;
};

}  // namespace sluice
