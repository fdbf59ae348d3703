#pragma once
// The transports the conformance suite runs on. Each traits type says what
// the transport is called, whether it can run here (and if not, why: the
// suite skips with that reason, never silently), and how to make a loop on
// it. Everything else in the suite is transport-neutral; a new transport
// adds a traits type here and to conformance_transports below.
//
// Traits are stateless; make() may be called on any thread and the loop it
// returns belongs to that thread. The addresses come from the traits too:
// listen_v4() is where a loop listens or binds (port 0: any free one; its
// local() then says where; reachable() says where a peer sends to reach a
// socket bound there), peer_v4() is an address of the kernel that the
// transport's connections reach (the suite's own kernel sockets listen
// there), ipv6 says whether the transport speaks IPv6, and kernel_sockets
// whether its connections are kernel sockets (descriptors, ports shared
// with other sockets of the host).

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "sluice/transport/loop.hpp"
#include "sluice/transport/registry.hpp"
#include "sluice_config.hpp"

#if SLUICE_HAVE_EPOLL
#include "sluice/epoll/epoll_transport.hpp"
#endif
#if SLUICE_HAVE_IO_URING
#include "sluice/io_uring/io_uring_transport.hpp"
#endif
#include <sys/types.h>
#include <sys/event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/kqueue/kqueue_transport.hpp"

#if defined(SLUICE_CONFORMANCE_DPDK) && SLUICE_HAVE_DPDK
#include "dpdk_environment.hpp"
#endif

namespace sluice::conformance {

// What the kernel transports share: kernel sockets on loopback.
struct kernel_socket_addresses {
  static endpoint listen_v4() { return endpoint::loopback_v4(0); }
  static endpoint listen_v6() { return endpoint::loopback_v6(0); }
  static endpoint peer_v4() { return endpoint::loopback_v4(0); }
  // Where a peer sends to reach a socket of `l` bound at `bound`.
  template <class Loop>
  static endpoint reachable(Loop&, const endpoint& bound) {
    return bound;
  }
  static constexpr bool ipv6 = true;
  static constexpr bool kernel_sockets = true;
};

// The kqueue transport: native where the OS has kqueue, otherwise built for
// tests against the EMULATED <sys/event.h> (tests/support/kqueue_emulation).
struct kqueue_traits : kernel_socket_addresses {
  using loop_type = loop<kqueue::kqueue_transport>;
#if defined(SLUICE_KQUEUE_EMULATED)
  static constexpr std::string_view name = "kqueue_emulated";
#else
  static constexpr std::string_view name = "kqueue";
#endif
  static std::string unavailable() {
    int fd = ::kqueue();
    if (fd < 0) return std::string("kqueue() failed: ") + std::strerror(errno);
    ::close(fd);
    return {};
  }
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id);
  }
};

#if SLUICE_HAVE_EPOLL
struct epoll_traits : kernel_socket_addresses {
  using loop_type = loop<epoll::epoll_transport>;
  static constexpr std::string_view name = "epoll";
  // The registry's own probe: the reason an app would print.
  static std::string unavailable() {
    for (const transport_entry* e : transport_registry())
      if (e->name == "epoll") return e->probe();
    return "epoll is not in this build's transport registry";
  }
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id);
  }
};
#else
// Not built on this OS: every test skips with this reason.
struct epoll_traits : kqueue_traits {
  static constexpr std::string_view name = "epoll";
  static std::string unavailable() { return "epoll is not built on this OS (no <sys/epoll.h>)"; }
};
#endif

#if SLUICE_HAVE_IO_URING
// The io_uring transport: kernel sockets, completions (one ring per loop).
struct io_uring_traits : kernel_socket_addresses {
  using loop_type = loop<io_uring::io_uring_transport>;
  static constexpr std::string_view name = "io_uring";
  // The registry's own probe: the reason an app would print.
  static std::string unavailable() {
    for (const transport_entry* e : transport_registry())
      if (e->name == "io_uring") return e->probe();
    return "io_uring is not in this build's transport registry";
  }
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return std::make_unique<loop_type>(opts, id);
  }
};
#else
// Not built (no liburing, or not Linux): every test skips with this reason.
struct io_uring_traits : kqueue_traits {
  static constexpr std::string_view name = "io_uring";
  static std::string unavailable() { return "the io_uring transport is not built here (liburing-dev missing, or not Linux)"; }
};
#endif

#if defined(SLUICE_CONFORMANCE_DPDK)
#if SLUICE_HAVE_DPDK
// The DPDK transport with the user-space stack, on net_tap ports inside a
// network namespace this process creates (dpdk_environment.hpp): each loop
// is a host of its own (10.77.N.2), the kernel on the other side of its tap
// (10.77.N.1) is the peer of the suite's kernel sockets.
struct dpdk_traits {
  using loop_type = loop<dpdk::dpdk_transport>;
  static constexpr std::string_view name = "dpdk";
  static std::string unavailable() { return dpdk_environment::unavailable(); }
  static std::unique_ptr<loop_type> make(const loop_options& opts, std::uint16_t id) {
    return dpdk_environment::make(opts, id);
  }
  // 0.0.0.0: the stack's own address (each loop has its own); [::] takes
  // both families (the stack's --ip6 address for IPv6).
  static endpoint listen_v4() { return endpoint::ipv4(0, 0); }
  static endpoint listen_v6() { return endpoint::parse("[::]:0").value(); }
  static endpoint peer_v4() { return dpdk_environment::kernel_side(); }
  // A socket bound at 0.0.0.0 (or [::]) is reached at the loop's stack
  // address of that family.
  static endpoint reachable(loop_type& l, const endpoint& bound) {
    const inet::interface_config& ifc = l.transport().ip().config();
    if (bound.is_v6()) {
      const inet::ip_address a = inet::ip_address::of(bound);
      return a.is_unspecified() && !ifc.ip6.empty() ? ifc.ip6.front().address.with_port(bound.port()) : bound;
    }
    return bound.v4_addr() != 0 ? bound : endpoint::ipv4(ifc.address, bound.port());
  }
  static constexpr bool ipv6 = true;  // over the taps' fd77:N:: addresses
  static constexpr bool kernel_sockets = false;
};
#else
// Not built without libdpdk: every test skips with this reason.
struct dpdk_traits : epoll_traits {
  static constexpr std::string_view name = "dpdk";
  static std::string unavailable() { return "libdpdk was not found at configure time: no DPDK transport"; }
};
#endif
// The DPDK run is a process of its own (test_conformance_dpdk): it moves
// into a network namespace of its own and starts the EAL, which a process
// does once, and it needs root.
using conformance_transports = ::testing::Types<dpdk_traits>;
#else
using conformance_transports = ::testing::Types<epoll_traits, kqueue_traits, io_uring_traits>;
#endif

struct transport_names {
  template <class T>
  static std::string GetName(int) {
    return std::string(T::name);
  }
};

}  // namespace sluice::conformance
