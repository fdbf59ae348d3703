#pragma once
// The user-space stack over a memory_wire end: the transport the stack's
// tests run loops on (loop<memory_transport>), with a manual clock and the
// wire's impairments. Not in the transport registry: an app has no peer on
// an in-process wire.

#include <string_view>

#include "sluice/inet/inet_transport.hpp"

namespace sluice::memory {

// The transport of a loop on a memory_wire end: an inet_transport under the
// name "memory".
class memory_transport final : public inet::inet_transport {
 public:
  // Its transport name (not in the registry).
  static constexpr std::string_view name = "memory";
  using inet_transport::inet_transport;
};

}  // namespace sluice::memory
