#pragma once
// The transport registry: every transport compiled into this build, in order of
// preference, each with a probe that says in plain words why it cannot run
// here. Apps pick one by name at startup (--transport=NAME, or auto: the first
// whose probe passes); from then on its loops are concrete (loop<T>).

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sluice/core/loop_base.hpp"
#include "sluice/core/loop_options.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/core/result.hpp"
#include "sluice/platform/placement.hpp"

namespace sluice {

// What transports may need from the command line.
struct transport_settings {
  // DPDK EAL arguments (--dpdk-args), passed through.
  std::string dpdk_args;
  // The user-space stack's interface address, "ADDR/PREFIX" (--ip), and its
  // default gateway (--gateway; empty: only the local subnet is reachable).
  std::string ip;
  std::string gateway;  // the default gateway's address (--gateway)
  // DPDK's adaptive polling: the longest sleep between polls of an idle loop.
  std::chrono::nanoseconds idle_sleep = std::chrono::milliseconds(1);
  // The user-space TCP (--tcp-*): congestion control ("cubic" or
  // "newreno"), delayed ACK (0: every burst acknowledged at once), Nagle,
  // keepalive idle time (0: off).
  std::string tcp_congestion = "cubic";
  std::chrono::nanoseconds tcp_delayed_ack{0};  // --tcp-delayed-ack: how long an ACK may wait (0: at once)
  bool tcp_nagle = false;                       // --tcp-nagle: Nagle's algorithm on (off by default: latency first)
  std::chrono::nanoseconds tcp_keepalive{0};    // --tcp-keepalive: idle time before keepalive probes (0: off)
  // Give up a connection whose peer's window stays shut this long (0: the
  // stack's default, 300 s; else 1 s to 1 h, checked at start).
  std::chrono::nanoseconds tcp_persist_timeout{0};
};

// One transport as the registry lists it: its name, a probe, and the functions
// that set it up per process and make its loops. Every function is a plain
// pointer; the entries are static and immutable (any thread).
struct transport_entry {
  std::string_view name;     // what --transport names it by ("epoll", "kqueue", "dpdk", ...)
  std::string_view summary;  // one line for --help and --print-plan
  // Empty if the transport can run here; otherwise why not, in plain words.
  // Runs before anything else happens (no device is touched).
  std::string (*probe)(const transport_settings& settings);
  // Once per process, before any loop starts (DPDK: the EAL, the port, its
  // queues and mempools, laid out as the plan says).
  result<void> (*init_process)(const transport_settings& settings, const platform::placement_plan& plan);
  // Makes loop `id` on the calling thread (the thread that will run it).
  std::unique_ptr<loop_base> (*make_loop)(const loop_options& opts, std::uint16_t id);
  // Optional (nullptr: nothing to say). For --print-plan: the port, its NUMA
  // node and which loop serves which queue, as these settings would set them
  // up; touches no device.
  std::string (*describe)(const transport_settings& settings, const platform::placement_plan& plan) = nullptr;
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
};

// Every transport compiled in, in order of preference.
[[nodiscard]] std::span<const transport_entry* const> transport_registry() noexcept;
// Every transport name sluice knows, built here or not ("epoll", "kqueue", "dpdk").
[[nodiscard]] std::span<const std::string_view> known_transports() noexcept;

// "auto": the first entry whose probe passes. A name: that entry, if it is
// compiled in and its probe passes. Otherwise an error that says why.
result<const transport_entry*> select_transport(std::string_view name, const transport_settings& settings);

}  // namespace sluice
