#pragma once
// What the conformance suite needs to run on the DPDK transport: a network
// namespace of its own, the EAL, and net_tap ports whose kernel sides are
// the peers of the suite's kernel sockets. Set up once per process, on the
// first call to unavailable() (the test's main thread, before any loop
// thread exists), and torn down at exit. No DPDK header here.
//
//   this process's own network namespace (unshare(CLONE_NEWNET): no route
//   out of it, and it disappears with the process, taps included)
//
//     kernel sockets of the test          user-space stacks (one per loop)
//     sct0 10.77.0.1/24  <--- net_tap0 --->  10.77.0.2/24 gw 10.77.0.1
//          fd77:0::1/64                      fd77:0::2/64 gw6 fd77:0::1
//     sct1 10.77.1.1/24  <--- net_tap1 --->  10.77.1.2/24 gw 10.77.1.1
//          fd77:1::1/64                      fd77:1::2/64 gw6 fd77:1::1
//     (forwarding on: a stack on one port reaches the other's through the kernel)
//
// Each loop the suite makes leases a port of its own (a test runs at most
// `ports` loops at once) and gives it back when the loop is destroyed: every
// loop is a separate host with its own address, as the kernel transports'
// loops are separate sockets on loopback.

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/core/endpoint.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/dpdk/dpdk_transport.hpp"

namespace sluice::conformance::dpdk_environment {

// How many loops may exist at once.
inline constexpr unsigned ports = 2;

// Empty once the namespace, the EAL and the ports are up; otherwise why they
// cannot be (not root, no /dev/net/tun, EAL or port failure), in words.
// Any thread; the first call sets everything up.
[[nodiscard]] const std::string& unavailable();

// A loop on a free port, made on (and owned by) the calling thread; nullptr
// with a test failure if every port is taken.
[[nodiscard]] std::unique_ptr<loop<dpdk::dpdk_transport>> make(const loop_options& opts, std::uint16_t id);

// The kernel's side of port 0 (port number 0): where the suite's kernel
// sockets listen when a loop connects to them.
[[nodiscard]] endpoint kernel_side();

}  // namespace sluice::conformance::dpdk_environment
