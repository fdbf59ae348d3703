#pragma once
// The transports the conformance suite runs on. Each traits type says what
// the transport is called, whether it can run here (and if not, why: the
// suite skips with that reason, never silently), and how to make a loop on
// it. Everything else in the suite is transport-neutral; a new transport
// (DPDK) adds a traits type here and to conformance_transports below.
//
// Traits are stateless; make() may be called on any thread and the loop it
// returns belongs to that thread.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "sluice/core/loop.hpp"
#include "sluice/transport/registry.hpp"
#include "sluice_config.hpp"

#if SLUICE_HAVE_EPOLL
#include "sluice/epoll/epoll_transport.hpp"
#endif
#include <sys/types.h>
#include <sys/event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/kqueue/kqueue_transport.hpp"

namespace sluice::conformance {

// The kqueue transport: native where the OS has kqueue, otherwise built for
// tests against the EMULATED <sys/event.h> (tests/support/kqueue_emulation).
struct kqueue_traits {
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
struct epoll_traits {
  using loop_type = loop<epoll::epoll_transport>;
  static constexpr std::string_view name = "epoll";
  // The registry's own probe: the reason an app would print.
  static std::string unavailable() {
    for (const transport_entry* e : transport_registry())
      if (e->name == "epoll") return e->probe({});
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

using conformance_transports = ::testing::Types<epoll_traits, kqueue_traits>;

struct transport_names {
  template <class T>
  static std::string GetName(int) {
    return std::string(T::name);
  }
};

}  // namespace sluice::conformance
