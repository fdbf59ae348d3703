// The kqueue transport's registry entry on an OS without kqueue (Linux).
// `--transport=kqueue` must say why it cannot run rather than claim the
// transport does not exist: the probe gives the reason and the apps exit 2.
// The transport itself is built on Linux only for tests, against an emulated
// <sys/event.h> that never enters the library.

#include <stdexcept>

#include "sluice/platform/socket_options.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

std::string probe_kqueue() {
  return "kqueue is not available on this OS (" + platform::os_name() + "); use --transport=epoll";
}

result<void> init_kqueue(const platform::placement_plan&) { return error{probe_kqueue(), {}}; }

std::unique_ptr<loop_base> make_kqueue_loop(const loop_options&, std::uint16_t) {
  // Never reached: select_transport() runs the probe first.
  throw std::runtime_error("kqueue is not available on this OS");
}

const transport_entry kqueue_entry{
    .name = "kqueue",
    .summary = "BSD/macOS kernel sockets (not available on this OS)",
    .rank = 30,
    .probe = &probe_kqueue,
    .init_process = &init_kqueue,
    .make_loop = &make_kqueue_loop,
};

}  // namespace

SLUICE_REGISTER_TRANSPORT(kqueue_entry)

}  // namespace sluice
