#include "sluice/runtime/app_options.hpp"

#include <cstdio>

#include "sluice/platform/binding.hpp"
#include "sluice/platform/cpu_claim.hpp"
#include "sluice/platform/placement.hpp"
#include "sluice/platform/topology.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

void app_options::declare(cli& args, std::string default_listen) {
  default_listen_ = std::move(default_listen);
  loop_options& lo = runtime.loop;
  args.option("--transport", "NAME",
              "transport: auto or one of those built in, " + linked_transports() +
                  " (default auto: the first that can run here)",
              runtime.transport);
  if (!default_listen_.empty()) {
    args.option("--listen", "HOST:PORT",
                "address to listen on; repeatable; [::1]:PORT for IPv6 (default " + default_listen_ + ")",
                listen_text);
  }
  platform::placement_request& pr = runtime.placement;
  args.custom("--cores", "N", "number of loops, one pinned thread each (default: one per physical core allowed); range " +
                  to_string(ranges::cores),
              [&pr](std::string_view v) -> result<void> {
                auto n = parse_count(v, ranges::cores);
                if (!n) return n.err();
                pr.loops = static_cast<unsigned>(*n);
                return {};
              });
  args.custom("--cpuset", "LIST", "run loops only on these CPUs, e.g. 0-3,8 (default: all allowed)",
              [&pr](std::string_view v) -> result<void> {
                auto l = platform::parse_cpu_list(v);
                if (!l) return l.err();
                pr.cpuset = *l;
                return {};
              });
  args.custom("--numa-node", "N", "run loops only on this NUMA node's cores; range " + to_string(ranges::numa_node),
              [&pr](std::string_view v) -> result<void> {
                auto n = parse_count(v, ranges::numa_node);
                if (!n) return n.err();
                pr.numa_node = static_cast<int>(*n);
                return {};
              });
  args.option("--nic", "NAME|PCI", "the NIC to serve: loops go to the cores nearest to it first", pr.nic);
  args.flag("--oversubscribe", "allow more loops than cores (several loops share a core)", pr.oversubscribe);
  args.flag("--smt", "count hyperthread siblings as cores (default: one loop per physical core)", pr.smt);
  args.flag("--share-cores",
            "busy-polling loops (dpdk, --busy-poll) may run on CPUs another sluice process has claimed (default: "
            "those CPUs are left out, or, with --cpuset, refused)",
            pr.share_cores);
  args.custom("--balance", "POLICY",
              "how connections reach loops: reuseport (default: a listening socket per loop), round-robin, "
              "least-conn or source-hash (one acceptor hands them out)",
              [this](std::string_view v) -> result<void> {
                auto p = parse_balance(v);
                if (!p) return p.err();
                runtime.balance = *p;
                return {};
              });
  args.flag("--print-plan", "print the topology and the placement these flags give, then exit", print_plan_);
  args.flag("--busy-poll", "poll without ever sleeping: lowest latency, burns each loop's core", lo.busy_poll);
  args.custom("--spin", "D",
              "after the last work, keep polling this long before sleeping: saves the wake-up on back-to-back "
              "requests for some CPU (default 0: sleep at once; dpdk: 200us, then sleeps that grow to --idle-sleep); range " +
                  to_string(ranges::spin),
              [this, &lo](std::string_view v) -> result<void> {
                auto d = parse_duration(v, ranges::spin);
                if (!d) return d.err();
                lo.spin_budget = *d;
                spin_given_ = true;
                return {};
              });
  args.custom("--flush", "WHEN",
              "when output is written: iteration (default: once per loop iteration, after every ready event has "
              "been read) or event (as soon as each event's handler returns; epoll)",
              [&lo](std::string_view v) -> result<void> {
                if (v != "iteration" && v != "event") return error{"must be iteration or event", {}};
                lo.flush_each_event = v == "event";
                return {};
              });
  args.duration_option("--shutdown-timeout",
                       "on SIGINT/SIGTERM, how long open connections may take to finish (default 5s)",
                       runtime.shutdown_timeout, ranges::shutdown_timeout);
  args.count_option("--max-connections", "N", "connections per loop (default 65536)", lo.max_connections,
                    ranges::max_connections);
  args.duration_option("--idle-timeout", "close connections idle this long (default: never)", lo.idle_timeout,
                       ranges::optional_timeout);
  args.duration_option("--read-timeout", "close connections whose peer sends nothing this long (default: never)",
                       lo.read_timeout, ranges::optional_timeout);
  args.duration_option("--write-timeout", "reset connections whose output is stuck this long (default: never)",
                       lo.write_timeout, ranges::optional_timeout);
  args.duration_option("--connect-timeout", "outgoing connect deadline (default 10s)", lo.connect_timeout,
                       ranges::timeout);
  args.size_option("--max-input", "per connection: stop reading above this many unconsumed bytes (default 256k)",
                   lo.max_input_bytes, ranges::max_input);
  args.size_option("--max-output", "per connection: refuse to buffer more output than this (default 16m)",
                   lo.max_output_bytes, ranges::max_output);
  args.custom("--segment-size", "BYTES", "buffer segment size (default 16k); range " + to_string(ranges::segment_size),
              [&lo](std::string_view v) -> result<void> {
                auto s = parse_size(v, ranges::segment_size);
                if (!s) return s.err();
                lo.pool.segment_size = static_cast<std::uint32_t>(*s);
                return {};
              });
  args.size_option("--pool-limit", "per loop: most buffer memory to hold (default 512m)", lo.pool.max_bytes,
                   ranges::pool_limit);
  // Each linked transport's own flags (DPDK: --dpdk-args, --ip, --tcp-*).
  declare_transport_options(args);
  args.flag("--print-metrics", "when the app stops, print every counter (loops, stack, device) to stderr",
            runtime.print_metrics);
}

std::optional<int> app_options::finish(const cli& args) {
  const loop_options& lo = runtime.loop;
  // A pool that cannot hold one connection's full input (and as much again
  // for its output and everyone else) can stall a request for ever: reading
  // waits for memory that only that request could free.
  if (lo.pool.max_bytes < 2 * static_cast<std::uint64_t>(lo.max_input_bytes)) {
    return args.fail("--pool-limit (" + format_size(lo.pool.max_bytes) + ") must be at least twice --max-input (" +
                     format_size(lo.max_input_bytes) + ")");
  }
  if (lo.pool.max_bytes < 16 * static_cast<std::uint64_t>(lo.pool.segment_size)) {
    return args.fail("--pool-limit (" + format_size(lo.pool.max_bytes) + ") must hold at least 16 segments of --segment-size (" +
                     format_size(lo.pool.segment_size) + ")");
  }
  if (auto r = check_transport_options(runtime.transport); !r) return args.fail(r.err().message);
  if (runtime.loop.output_low_water > runtime.loop.output_high_water) {
    runtime.loop.output_low_water = runtime.loop.output_high_water / 4;
  }
  if (!default_listen_.empty() && listen_text.empty()) listen_text.push_back(default_listen_);
  for (const auto& text : listen_text) {
    auto ep = endpoint::parse(text);
    if (!ep) return args.fail("--listen: " + ep.err().message);
    listen.push_back(*ep);
  }
  if (runtime.loop.flush_each_event && runtime.transport != "auto" && runtime.transport != "epoll") {
    return args.fail("--flush=event is supported on epoll only");
  }
  if (const transport_entry* e = find_transport(runtime.transport); e != nullptr && e->drives_nic) {
    runtime.placement.nic_bound = true;
    if (e->port_queues != nullptr) runtime.placement.nic_queues = e->port_queues();
    // Adaptive polling: busy-poll while packets flow, back off once idle.
    if (!spin_given_) runtime.loop.spin_budget = std::chrono::microseconds(200);
  }
  if (print_plan_) {
    auto topo = platform::topology::discover();
    if (!topo) return args.fail(topo.err().message);
    auto sel = select_transport(runtime.transport);
    const transport_entry* chosen_entry = sel ? *sel : find_transport(runtime.transport);
    // What start() would do: busy-polling loops keep off CPUs other sluice
    // processes claimed (looked at here, not taken).
    const bool busy = chosen_entry != nullptr && busy_polls(*chosen_entry, runtime.loop);
    platform::placement_plan plan;
    std::string cores;
    if (busy) {
      auto claimed = platform::plan_with_claims(*topo, runtime.placement, false);
      if (!claimed) return args.fail(claimed.err().message);
      plan = std::move(claimed->plan);
      cores = claimed->summary;
    } else {
      auto p = platform::make_plan(*topo, runtime.placement);
      if (!p) return args.fail(p.err().message);
      plan = std::move(*p);
      cores = "not claimed: the loops sleep in the kernel when idle, so sharing a core costs only the work done";
      if (plan.binding_real) {
        platform::cpu_list mine;
        for (const auto& l : plan.loops) mine.push_back(l.cpu);
        for (const auto& h : platform::claims_held(platform::claim_dir(), mine)) {
          cores += "; note: " + h.to_string() + " is claimed by a busy-polling process";
        }
      }
    }
    std::fputs(topo->summary().c_str(), stdout);
    std::printf("transport: %s\n", sel ? std::string((*sel)->name).c_str() : ("none: " + sel.err().message).c_str());
    std::printf("balance: %s\n", std::string(to_string(runtime.balance)).c_str());
    std::fputs(plan.describe().c_str(), stdout);
    std::printf("  cores: %s\n", cores.c_str());
    // The transport's own part (DPDK: the port, its NUMA node, loop-to-queue
    // mapping), even when its probe failed: the plan is what it would do.
    for (const transport_entry* e : transport_registry()) {
      const bool chosen = sel ? e == *sel : e->name == runtime.transport;
      if (chosen && e->describe != nullptr) std::fputs(e->describe(plan).c_str(), stdout);
    }
    platform::numa_memory mem(*topo, plan.loops.front().memory_node);
    std::printf("  memory: %s\n", mem.bound() ? "each loop's pools bound to its NUMA node (hwloc_alloc_membind)"
                                               : ("not bound (" + mem.why_not() + "): ordinary memory").c_str());
    return 0;
  }
  return std::nullopt;
}

std::optional<int> app_options::check_start(const cli& args) const {
  auto sel = select_transport(runtime.transport);
  if (!sel) return args.fail(sel.err().message);
  auto topo = platform::topology::discover();
  if (!topo) return args.fail(topo.err().message);
  auto plan = platform::make_plan(*topo, runtime.placement);
  if (!plan) return args.fail(plan.err().message);
  return std::nullopt;
}

}  // namespace sluice
