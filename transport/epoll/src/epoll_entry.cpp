// The epoll transport's registry entry.

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/core/loop.hpp"
#include "sluice/epoll/epoll_transport.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

std::string probe_epoll(const transport_settings&) {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return std::string("epoll_create1 failed: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

result<void> init_epoll(const transport_settings&, const platform::placement_plan&) { return {}; }

std::unique_ptr<loop_base> make_epoll_loop(const loop_options& opts, std::uint16_t id) {
  return std::make_unique<loop<epoll::epoll_transport>>(opts, id);
}

}  // namespace

extern const transport_entry epoll_entry;
const transport_entry epoll_entry{
    "epoll",
    "Linux kernel sockets, edge-triggered epoll, one epoll instance per loop",
    &probe_epoll,
    &init_epoll,
    &make_epoll_loop,
    nullptr,  // describe
    nullptr,  // process_metrics
    nullptr,  // finish_process
    true,     // runs_on_caller
};

}  // namespace sluice
