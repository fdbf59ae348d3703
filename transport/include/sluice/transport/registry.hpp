#pragma once
// The transport contract, part 2: the registry. Every transport linked into
// the program registers itself (SLUICE_REGISTER_TRANSPORT, from a static
// initializer in its own library), with a rank for "auto", a probe that says in
// plain words why it cannot run here, and its own command-line flags. Apps pick
// one by name at startup (--transport=NAME, or auto: the best-ranked whose
// probe passes); from then on its loops are concrete (loop<T>). A program that
// links only the epoll library knows only epoll: nothing in the registry
// names a transport, so nothing pulls DPDK in.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sluice/base/cli.hpp"
#include "sluice/base/result.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/loop_options.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/platform/placement.hpp"

namespace sluice {

// One transport as the registry lists it: its name, a probe, and the functions
// that set it up per process and make its loops. Every function is a plain
// pointer; the entries are static and immutable (any thread).
struct transport_entry {
  std::string_view name;     // what --transport names it by ("epoll", "kqueue", "dpdk", ...)
  std::string_view summary;  // one line for --help and --print-plan
  // Order of preference for "auto": lower first (native pollers, then
  // kernel sockets elsewhere, then kernel bypass, which needs set-up).
  int rank = 0;
  // Empty if the transport can run here; otherwise why not, in plain words.
  // Runs before anything else happens (no device is touched).
  std::string (*probe)() = nullptr;
  // Once per process, before any loop starts (DPDK: the EAL, the port, its
  // queues and mempools, laid out as the plan says).
  result<void> (*init_process)(const platform::placement_plan& plan) = nullptr;
  // Makes loop `id` on the calling thread (the thread that will run it).
  std::unique_ptr<loop_base> (*make_loop)(const loop_options& opts, std::uint16_t id) = nullptr;
  // Optional (nullptr: nothing to say). For --print-plan: the port, its NUMA
  // node and which loop serves which queue, as the flags would set them up;
  // touches no device.
  std::string (*describe)(const platform::placement_plan& plan) = nullptr;
  // Optional: process-wide counters (device statistics), appended to out.
  void (*process_metrics)(metric_list& out) = nullptr;
  // Optional: after every loop is gone (DPDK: stop and close the port).
  void (*finish_process)() = nullptr;
  // Whether runtime::run() may run the loop on its own (the calling) thread
  // when there is only one: the process then stays single-threaded, and
  // glibc skips the cancellation bookkeeping around every system call that
  // a process with threads pays. Kernel transports: yes. DPDK: no (its loops
  // join the EAL as registered threads).
  bool runs_on_caller = false;
  // The transport drives a NIC itself: the plan gives each loop a queue, and
  // loops poll adaptively (spin 200us after work, unless --spin says).
  bool drives_nic = false;
  // Optional (drives_nic): the queue pairs the port will offer, as the
  // transport's flags say before anything starts (0: not known). Without
  // --cores, the plan makes one loop per queue (at most one per core).
  unsigned (*port_queues)() = nullptr;
  // Optional: declares the transport's own flags on args (--dpdk-args, --ip,
  // --tcp-*), bound to settings the transport keeps for the process. Every
  // linked transport's flags appear in --help.
  void (*declare_options)(cli& args) = nullptr;
  // Optional: after parsing. `chosen`: this transport was named by
  // --transport. An error if its flags were given for another transport, or
  // if they do not fit together.
  result<void> (*check_options)(bool chosen) = nullptr;
};

// Whether loops of this transport with these options keep their core busy
// when idle: a NIC-driving transport's adaptive polling, or --busy-poll.
// Such loops claim their CPUs (platform/cpu_claim.hpp).
[[nodiscard]] inline bool busy_polls(const transport_entry& e, const loop_options& o) noexcept {
  return e.drives_nic || o.busy_poll;
}

// Adds e to the registry: called once per transport, from a static
// initializer in the transport's library (SLUICE_REGISTER_TRANSPORT). At
// most 16 transports; allocates nothing.
void register_transport(const transport_entry& e) noexcept;

// Pastes a and b (a helper of SLUICE_REGISTER_TRANSPORT).
#define SLUICE_REGISTER_TRANSPORT_CAT2(a, b) a##b
// Pastes a and b after expanding them (a helper of SLUICE_REGISTER_TRANSPORT).
#define SLUICE_REGISTER_TRANSPORT_CAT(a, b) SLUICE_REGISTER_TRANSPORT_CAT2(a, b)
// In the transport's .cpp, at namespace scope: SLUICE_REGISTER_TRANSPORT(epoll_entry);
// A static library's object is linked only when something refers to it, so
// transports are linked whole (meson: link_whole; pkg-config: sluice.pc does it).
#define SLUICE_REGISTER_TRANSPORT(entry)                                                                  \
  namespace {                                                                                             \
  [[maybe_unused]] const bool SLUICE_REGISTER_TRANSPORT_CAT(registered_, __LINE__) =                      \
      (::sluice::register_transport(entry), true);                                                        \
  }

// Every transport linked in, in order of preference.
[[nodiscard]] std::span<const transport_entry* const> transport_registry() noexcept;
// Every transport name sluice knows, linked here or not ("epoll", "kqueue", "dpdk").
[[nodiscard]] std::span<const std::string_view> known_transports() noexcept;
// The linked transport of that name, or nullptr.
[[nodiscard]] const transport_entry* find_transport(std::string_view name) noexcept;
// "epoll, kqueue, dpdk": the linked transports' names, in order of preference.
[[nodiscard]] std::string linked_transports();

// "auto": the first entry whose probe passes. A name: that entry, if it is
// linked in and its probe passes. Otherwise an error that says why.
result<const transport_entry*> select_transport(std::string_view name);
// Declares every linked transport's flags on args (see declare_options).
void declare_transport_options(cli& args);
// After parsing: each linked transport's check_options, `chosen` being the
// --transport value ("auto" chooses none). The first error, if any.
result<void> check_transport_options(std::string_view chosen);

}  // namespace sluice
