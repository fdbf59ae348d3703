// The io_uring transport's registry entry: the probe that says in plain words
// why io_uring cannot run here, and --print-plan's line on how rings are set up.

#include <liburing.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "sluice/base/cli.hpp"
#include "sluice/io_uring/io_uring_transport.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

// What the command line (declare_io_uring_options) sets for the process.
struct io_uring_settings {
  // Sends of this many bytes or more go zero-copy (send_zc); 0: never.
  // Off by default: on loopback (the only path measured here, see
  // tests/perf/zerocopy_compare.py) the kernel copies zero-copy pages on
  // delivery anyway, so send_zc only adds the pinning and the notification.
  std::size_t zerocopy_threshold = 0;
  bool zerocopy_given = false;
};

io_uring_settings& settings() {
  static io_uring_settings s;
  return s;
}

// --zerocopy-threshold: below a few KiB pinning pages and the extra
// completion cost more than the copy they save on any path.
constexpr number_range zerocopy_threshold_range{4 * 1024, std::uint64_t{1} << 30, number_unit::bytes, true};

void declare_io_uring_options(cli& args) {
  io_uring_settings& ts = settings();
  args.custom("--zerocopy-threshold", "SIZE",
              "io_uring: send zero-copy (send_zc, the segments held until the kernel's notification) when a "
              "connection's pending output is at least this large; 0 (default): never. " +
                  to_string(zerocopy_threshold_range),
              [&ts](std::string_view v) -> result<void> {
                auto n = parse_size(v, zerocopy_threshold_range);
                if (!n) return n.err();
                ts.zerocopy_threshold = static_cast<std::size_t>(*n);
                ts.zerocopy_given = true;
                return {};
              });
}

result<void> check_io_uring_options(bool chosen) {
  if (!chosen && settings().zerocopy_given) return error{"--zerocopy-threshold needs --transport=io_uring", {}};
  return {};
}

// kernel.io_uring_disabled (Linux 6.6+): 0 enabled, 1 only for the group in
// kernel.io_uring_group, 2 disabled. -1: no such sysctl.
int io_uring_disabled() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int v = -1;
  if (!(in >> v)) return -1;
  return v;
}

// The running kernel's major.minor as major*1000+minor (0 if unknown).
int kernel_version() {
  utsname u{};
  if (::uname(&u) != 0) return 0;
  int major = 0;
  int minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  return major * 1000 + minor;
}

std::string probe_io_uring() {
  const int disabled = io_uring_disabled();
  if (disabled == 2) return "io_uring is disabled by the sysctl kernel.io_uring_disabled=2";
  // Multishot accept (5.19) and synchronous cancellation (6.0), which
  // release() relies on to close a socket only once the kernel is done with
  // its buffers.
  const int v = kernel_version();
  if (v != 0 && v < 6000) return "the kernel is too old for the io_uring transport (needs 6.0: multishot accept, synchronous cancel)";
  ::io_uring ring{};
  io_uring::ring_mode mode{};
  int r = io_uring::setup_ring(&ring, 8, &mode);
  if (r == -EPERM) {
    if (disabled == 1) return "io_uring_setup refused (EPERM): kernel.io_uring_disabled=1 and this process is not in kernel.io_uring_group";
    return "io_uring_setup refused (EPERM): a seccomp or security policy forbids io_uring (containers often do)";
  }
  if (r == -ENOSYS) return "io_uring_setup is not available (ENOSYS): a kernel built without io_uring, or a seccomp policy that hides it";
  if (r < 0) return std::string("io_uring_setup failed: ") + std::strerror(-r);
  std::string why;
  if (::io_uring_probe* p = io_uring_get_probe_ring(&ring)) {
    const struct {
      int op;
      const char* name;
    } needed[] = {{IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_RECV, "RECV"},       {IORING_OP_SEND, "SEND"},
                  {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_RECVMSG, "RECVMSG"}, {IORING_OP_CONNECT, "CONNECT"},
                  {IORING_OP_READ, "READ"},       {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
    for (const auto& n : needed) {
      if (!io_uring_opcode_supported(p, n.op)) {
        why = std::string("the kernel's io_uring lacks IORING_OP_") + n.name + " (too old)";
        break;
      }
    }
    if (why.empty() && settings().zerocopy_threshold != 0 &&
        (!io_uring_opcode_supported(p, IORING_OP_SEND_ZC) || !io_uring_opcode_supported(p, IORING_OP_SENDMSG_ZC)))
      why = "the kernel's io_uring lacks IORING_OP_SEND_ZC/SENDMSG_ZC, which --zerocopy-threshold needs (Linux 6.1)";
    io_uring_free_probe(p);
  } else {
    why = "the kernel's io_uring cannot be probed for its operations (too old)";
  }
  io_uring_queue_exit(&ring);
  return why;
}

result<void> init_io_uring(const platform::placement_plan&) { return {}; }

std::unique_ptr<loop_base> make_io_uring_loop(const loop_options& opts, std::uint16_t id) {
  return std::make_unique<loop<io_uring::io_uring_transport>>(opts, id, settings().zerocopy_threshold);
}

std::string describe_io_uring(const platform::placement_plan&) {
  ::io_uring ring{};
  io_uring::ring_mode mode{};
  int r = io_uring::setup_ring(&ring, 8, &mode);
  if (r < 0) return std::string("io_uring: rings cannot be set up here: ") + std::strerror(-r) + "\n";
  io_uring_queue_exit(&ring);
  return "io_uring: one ring per loop (" + std::to_string(io_uring::io_uring_transport::ring_entries) +
         " entries), setup flags " + std::string(io_uring::to_string(mode)) +
         "; receive: multishot recv into a provided buffer ring of pool segments (up to " +
         std::to_string(io_uring::io_uring_transport::buf_ring_max) + " per loop); zero-copy sends: " +
         (settings().zerocopy_threshold == 0 ? std::string("off") : "from " + format_size(settings().zerocopy_threshold)) +
         "\n";
}

const transport_entry io_uring_entry{
    .name = "io_uring",
    .summary = "Linux kernel sockets through io_uring (completions), one ring per loop",
    // After epoll (20): auto keeps epoll first until benchmarks say otherwise.
    .rank = 25,
    .probe = &probe_io_uring,
    .init_process = &init_io_uring,
    .make_loop = &make_io_uring_loop,
    .describe = &describe_io_uring,
    .runs_on_caller = true,
    .declare_options = &declare_io_uring_options,
    .check_options = &check_io_uring_options,
};

}  // namespace

SLUICE_REGISTER_TRANSPORT(io_uring_entry)

}  // namespace sluice
