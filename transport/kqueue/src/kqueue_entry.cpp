// The kqueue transport's registry entry where the OS has kqueue (FreeBSD,
// macOS, the other BSDs). Where it does not, kqueue_unavailable.cpp provides
// the entry instead (meson picks one).

#include <sys/types.h>
#include <sys/event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/transport/loop.hpp"
#include "sluice/kqueue/kqueue_transport.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

std::string probe_kqueue() {
  int fd = ::kqueue();
  if (fd < 0) return std::string("kqueue() failed: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

result<void> init_kqueue(const platform::placement_plan&) { return {}; }

std::unique_ptr<loop_base> make_kqueue_loop(const loop_options& opts, std::uint16_t id) {
  return std::make_unique<loop<kqueue::kqueue_transport>>(opts, id);
}

const transport_entry kqueue_entry{
    .name = "kqueue",
    .summary = "BSD/macOS kernel sockets, kqueue with EV_CLEAR, one kqueue per loop",
    .rank = 10,  // the native poller comes first where it is real
    .probe = &probe_kqueue,
    .init_process = &init_kqueue,
    .make_loop = &make_kqueue_loop,
    .runs_on_caller = true,
};

}  // namespace

SLUICE_REGISTER_TRANSPORT(kqueue_entry)

}  // namespace sluice
