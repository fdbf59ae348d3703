#pragma once
// One user-space stack on one loop over a memory wire, the test playing the
// kernel on the wire's other end (end b): the set-up the stack's unit tests
// share (inet_stack, inet_stack6, tcp6). Time is the test's manual clock.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/base/time.hpp"
#include "sluice/core/udp_socket.hpp"
#include "sluice/inet/inet_transport.hpp"
#include "sluice/inet/mac_address.hpp"
#include "sluice/memory/memory_port.hpp"
#include "sluice/memory/memory_transport.hpp"
#include "sluice/transport/loop.hpp"

namespace sluice::test {

// Records every datagram it gets (sender and payload).
struct datagram_recorder final : datagram_handler {
  std::vector<std::pair<endpoint, std::string>> got;  // in arrival order
  void on_datagram(udp_socket&, const endpoint& from, std::string_view payload) noexcept override {
    got.emplace_back(from, std::string(payload));
  }
};

// The wire, the test's port on it and the stack's loop (see the file comment).
struct memory_stack {
  using stack_loop = loop<memory::memory_transport>;
  manual_clock clock;
  std::unique_ptr<memory::memory_wire> wire;
  std::unique_ptr<memory::memory_port> peer_port;  // the test is the kernel on end b
  std::unique_ptr<stack_loop> l;

  // Makes the wire and a loop whose stack has `to`; a stack made before goes
  // first, and must have given every buffer back.
  void make_stack(const inet::inet_transport_options& to, memory::memory_wire::options wo = {}) {
    if (l) {
      l.reset();
      drain_peer();
      EXPECT_EQ(wire->free_buffers(memory::memory_wire::side::a), memory::memory_wire::options{}.buffers_per_end);
      peer_port.reset();
    }
    wo.clock = {&clock};
    wire = std::make_unique<memory::memory_wire>(wo);
    peer_port = std::make_unique<memory::memory_port>(*wire, memory::memory_wire::side::b);
    loop_options lo;
    lo.clock = {&clock};
    l = std::make_unique<stack_loop>(
        lo, 0, std::make_unique<memory::memory_port>(*wire, memory::memory_wire::side::a), to);
  }
  // Frames the stack sent that the test did not read (periodic ones, such
  // as MLD's repeated join): read and dropped, so that the buffers still
  // out are the stack's own.
  void drain_peer() {
    if (!peer_port) return;
    inet::packet* ps[32];
    for (std::size_t n; (n = peer_port->receive(ps, 32)) != 0;) {
      for (std::size_t i = 0; i < n; ++i) segment_unref(&ps[i]->seg);
    }
  }
  // Ends the loop and checks that the stack leaked no packet buffer.
  void end_stack() {
    l.reset();
    drain_peer();
    if (wire) {
      EXPECT_EQ(wire->free_buffers(memory::memory_wire::side::a), memory::memory_wire::options{}.buffers_per_end)
          << "the stack leaked packet buffers";
    }
    peer_port.reset();
    wire.reset();
  }
  // The stack under test and its counters.
  inet::stack& st() { return l->transport().ip(); }
  const inet::inet_stats& stats() { return st().stats(); }
  // The stack's MAC (end a of the wire).
  inet::mac_address our_mac() { return wire->mac(memory::memory_wire::side::a); }
  // n iterations of the loop that never block.
  void step(int n = 1) {
    for (int i = 0; i < n; ++i) l->run_once();
  }
};

}  // namespace sluice::test
