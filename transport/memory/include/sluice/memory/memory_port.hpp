#pragma once
// One end of a memory_wire as a packet_port: what a loop's stack (or a test
// playing the peer) sends and receives frames through. Cheap; it holds only
// the wire and the side. Owner thread only (the wire's).

#include "sluice/inet/packet_port.hpp"
#include "sluice/memory/memory_wire.hpp"

namespace sluice::memory {

// End `at` of a memory_wire as a packet_port (see the file comment).
class memory_port final : public inet::packet_port {
 public:
  // The port of end `at` of wire; the wire must outlive it.
  memory_port(memory_wire& wire, memory_wire::side at) noexcept : wire_(wire), side_(at) {}

  std::size_t receive(inet::packet** out, std::size_t n) noexcept override { return wire_.receive(side_, out, n); }
  std::size_t transmit(inet::packet** pkts, std::size_t n) noexcept override {
    return wire_.transmit(side_, pkts, n);
  }
  std::size_t allocate(inet::packet** out, std::size_t n) noexcept override { return wire_.allocate(side_, out, n); }
  [[nodiscard]] inet::mac_address mac() const noexcept override { return wire_.mac(side_); }
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept override { return wire_.capabilities(); }
  [[nodiscard]] segment_release_fn release_function() const noexcept override {
    return memory_wire::release_function();
  }

 private:
  memory_wire& wire_;
  memory_wire::side side_;
};

}  // namespace sluice::memory
