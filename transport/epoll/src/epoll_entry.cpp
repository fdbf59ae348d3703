// The epoll transport's registry entry.

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/transport/loop.hpp"
#include "sluice/epoll/epoll_transport.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

std::string probe_epoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return std::string("epoll_create1 failed: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

result<void> init_epoll(const platform::placement_plan&) { return {}; }

std::unique_ptr<loop_base> make_epoll_loop(const loop_options& opts, std::uint16_t id) {
  return std::make_unique<loop<epoll::epoll_transport>>(opts, id);
}

const transport_entry epoll_entry{
    .name = "epoll",
    .summary = "Linux kernel sockets, edge-triggered epoll, one epoll instance per loop",
    .rank = 20,
    .probe = &probe_epoll,
    .init_process = &init_epoll,
    .make_loop = &make_epoll_loop,
    .runs_on_caller = true,
};

}  // namespace

SLUICE_REGISTER_TRANSPORT(epoll_entry)

}  // namespace sluice
