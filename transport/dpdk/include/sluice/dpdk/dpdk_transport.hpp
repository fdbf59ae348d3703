#pragma once
// The DPDK transport: the user-space stack (inet_transport) over one queue
// pair of the port (dpdk_queue). The registry entry (dpdk_entry.cpp) sets up
// the EAL and the port once per process and makes one of these per loop.

#include <string_view>

#include "sluice/inet/inet_transport.hpp"

namespace sluice::dpdk {

// The transport of one DPDK loop: an inet_transport over that loop's
// dpdk_queue, under the name "dpdk".
class dpdk_transport final : public inet::inet_transport {
 public:
  // Its registry name.
  static constexpr std::string_view name = "dpdk";
  using inet_transport::inet_transport;
};

}  // namespace sluice::dpdk
