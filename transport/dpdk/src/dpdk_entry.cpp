// The DPDK transport's registry entry: preflight, EAL and port set-up from
// the placement plan, one loop per queue pair, device metrics, teardown.
//
// Process-wide state lives here, made by init_process on the main thread
// before any loop exists and read-only while the loops run.

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "memif_reconnect.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/dpdk/dpdk_device.hpp"
#include "sluice/dpdk/dpdk_queue.hpp"
#include "sluice/dpdk/dpdk_transport.hpp"
#include "sluice/dpdk/eal_args.hpp"
#include "sluice/dpdk/preflight.hpp"
#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/stack_group.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

namespace {

struct process_state {
  bool eal_started = false;  // rte_eal_init was called (it may be only once per process)
  bool eal_running = false;  // and succeeded, and rte_eal_cleanup is still owed
  std::unique_ptr<dpdk::dpdk_device> device;
  std::unique_ptr<dpdk::memif_reconnect> reconnect;  // a net_memif client's (destroyed before the device)
  std::unique_ptr<inet::stack_group> group;
  std::unique_ptr<inet::flow_steering> steering;
  inet::tcp_config tcp;
  inet::interface_config iface;
  platform::placement_plan plan;
  duration idle_sleep{};
};

process_state& state() {
  static process_state s;
  return s;
}

// What the command line (declare_dpdk_options) sets for the process.
struct dpdk_settings {
  // DPDK EAL arguments (--dpdk-args), passed through.
  std::string dpdk_args;
  // The user-space stack's interface address, "ADDR/PREFIX" (--ip), and its
  // default gateway (--gateway; empty: only the local subnet is reachable).
  std::string ip;
  std::string gateway;
  // IPv6: addresses "ADDR/PREFIX" (--ip6, repeatable) and the default
  // gateway (--gateway6; empty: on-link prefixes and link-local only). The
  // link-local address comes from the port's MAC.
  std::vector<std::string> ip6;
  std::string gateway6;
  bool accept_ra = false;  // --accept-ra: the default IPv6 router from router advertisements
  // Adaptive polling: the longest sleep between polls of an idle loop.
  std::chrono::nanoseconds idle_sleep = std::chrono::milliseconds(1);
  // The user-space TCP (--tcp-*): congestion control ("cubic" or
  // "newreno"), delayed ACK (0: every burst acknowledged at once), Nagle,
  // keepalive idle time (0: off), persist timeout (0: the stack's 300 s).
  std::string tcp_congestion = "cubic";
  std::chrono::nanoseconds tcp_delayed_ack{0};
  bool tcp_nagle = false;
  std::chrono::nanoseconds tcp_keepalive{0};
  std::chrono::nanoseconds tcp_persist_timeout{0};
};

dpdk_settings& settings() {
  static dpdk_settings s;
  return s;
}

// The stack's interface from --ip, --gateway, --ip6, --gateway6 and
// --accept-ra; errors name the flag.
result<inet::interface_config> stack_interface(const dpdk_settings& s) {
  auto ifc = inet::interface_config::parse(s.ip, s.gateway, s.ip6, s.gateway6);
  if (!ifc) return ifc;
  if (s.accept_ra && !s.gateway6.empty()) {
    return error{"--accept-ra and --gateway6: give one source of the IPv6 default router, not both", {}};
  }
  ifc->accept_ra = s.accept_ra;
  return ifc;
}

constexpr const char* dev_example = "--no-huge -m 512 --no-pci --vdev=net_tap0,iface=sl0";

std::string probe_dpdk() {
  const dpdk_settings& s = settings();
  if (s.dpdk_args.empty()) {
    return std::string("--dpdk-args is empty: give the EAL arguments (on a development machine: --dpdk-args=\"") +
           dev_example + "\")";
  }
  auto parsed = dpdk::eal_args::parse(s.dpdk_args);
  if (!parsed) return parsed.err().message;
  const dpdk::host_facts facts = dpdk::host_facts::gather(*parsed);
  std::string why = dpdk::preflight(dpdk::choose_memory(*parsed, facts).args, facts);
  if (!why.empty()) return why;
  auto ifc = stack_interface(s);
  if (!ifc) return ifc.err().message;
  return {};
}

dpdk::device_config device_config_for(const platform::placement_plan& plan) {
  dpdk::device_config cfg;
  for (const auto& l : plan.loops) {
    cfg.queue_nodes.push_back(l.memory_node);
    cfg.loop_queues.push_back(static_cast<std::uint16_t>(l.nic_queue < 0 ? l.loop : static_cast<unsigned>(l.nic_queue)));
  }
  return cfg;
}

inet::tcp_config tcp_config_for(const dpdk_settings& s) {
  inet::tcp_config t;
  t.congestion = s.tcp_congestion == "newreno" ? inet::congestion_algorithm::newreno : inet::congestion_algorithm::cubic;
  t.delayed_ack = s.tcp_delayed_ack;
  t.nagle = s.tcp_nagle;
  t.keepalive_idle = s.tcp_keepalive;
  if (s.tcp_persist_timeout != std::chrono::nanoseconds::zero()) t.persist_timeout = s.tcp_persist_timeout;
  return t;
}

// How TCP flows reach their loops on a device of this driver, for
// --print-plan (the running port says what it found: dpdk_device::steering).
std::string steering_for(const std::string& driver, unsigned loops) {
  if (loops <= 1) return "one loop: it owns every flow";
  if (driver == "net_tap" || driver == "net_af_packet" || driver == "net_af_xdp" || driver == "net_ring" ||
      driver == "net_null" || driver == "net_memif") {
    return "software: " + driver +
           " has no RSS we can program; the kernel (or the PMD) picks the queue, and a segment that lands on "
           "another loop is forwarded to its owner through the mailboxes (Toeplitz hash + RETA computed in "
           "software); outgoing connections pick source ports whose hash lands on the connecting loop";
  }
  return "RSS where the NIC offers it for TCP over IPv4: sluice programs its Toeplitz key and RETA so that "
         "hardware and software agree on each flow's loop; outgoing connections pick source ports whose hash "
         "lands on the connecting loop; a NIC without RSS falls back to the software table";
}

// Queue pairs the port will offer, from its vdev's arguments (0: not known
// before it starts): the plan makes one loop per queue unless --cores says.
unsigned dpdk_port_queues() {
  auto args = dpdk::eal_args::parse(settings().dpdk_args);
  if (!args || args->vdevs.empty()) return 0;
  const std::string& v = args->vdevs.front();
  const std::string drv = dpdk::eal_args::driver_of(v);
  auto number = [&v](const char* key) {
    const std::string n = dpdk::eal_args::vdev_arg(v, key);
    return n.empty() ? 1u : static_cast<unsigned>(std::strtoul(n.c_str(), nullptr, 10));
  };
  if (drv == "net_af_xdp") return number("queue_count");
  if (drv == "net_af_packet") return number("qpairs");
  return 0;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

result<void> init_dpdk(const platform::placement_plan& plan) {
  const dpdk_settings& s = settings();
  process_state& st = state();
  if (st.eal_started) return error{"the DPDK EAL was already started once in this process; it cannot start again", {}};
  auto parsed = dpdk::eal_args::parse(s.dpdk_args);
  if (!parsed) return parsed.err();
  auto ifc = stack_interface(s);
  if (!ifc) return ifc.err();
  const dpdk::host_facts facts = dpdk::host_facts::gather(*parsed);
  const dpdk::memory_choice memory = dpdk::choose_memory(*parsed, facts);
  const dpdk::eal_args* args = &memory.args;
  std::fprintf(stderr, "sluice: dpdk memory: %s\n", memory.note.c_str());
  const std::vector<std::string> words = dpdk::eal_argv(*args, plan, "sluice", static_cast<int>(::getpid()));
  std::vector<char*> argv;
  std::vector<std::string> storage = words;  // rte_eal_init may permute argv
  for (auto& w : storage) argv.push_back(w.data());
  argv.push_back(nullptr);
  for (const auto& w : dpdk::preflight_warnings(*args, facts)) {
    std::fprintf(stderr, "sluice: warning: %s\n", w.c_str());
  }
  st.eal_started = true;
  if (rte_eal_init(static_cast<int>(words.size()), argv.data()) < 0) {
    return error{std::string("DPDK EAL initialisation failed: ") + rte_strerror(rte_errno) +
                     " (see the EAL messages above; arguments: " + join(words) + ")",
                 {}};
  }
  st.eal_running = true;
  auto stop_eal = [&st] {
    const std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    ::rmdir(dir.c_str());
    st.eal_running = false;
  };
  if (rte_eth_dev_count_avail() == 0) {
    std::string what = args->vdevs.empty() ? std::string("no PCI NIC was probed (check -a ADDR and its driver)")
                                           : "the virtual device " + args->vdevs.front() +
                                                 " did not attach (rte_eal_init does not fail for that; see the "
                                                 "EAL messages above)";
    stop_eal();
    return error{"no DPDK port is available: " + what, {}};
  }
  // The first port that came up (a second one would need its own stack).
  const std::uint16_t port = static_cast<std::uint16_t>(rte_eth_find_next_owned_by(0, RTE_ETH_DEV_NO_OWNER));
  auto dev = dpdk::dpdk_device::open(port, device_config_for(plan));
  if (!dev) {
    stop_eal();
    return dev.err();
  }
  st.device = std::move(*dev);
  const std::string first_vdev = args->vdevs.empty() ? std::string() : args->vdevs.front();
  const bool memif_client =
      st.device->driver() == "net_memif" && dpdk::eal_args::vdev_arg(first_vdev, "role") == "client";
  if (memif_client && !st.device->wait_for_link(std::chrono::milliseconds(1000), 5)) {
    st.device.reset();
    stop_eal();
    return error{"net_memif client: the server on " +
                     (dpdk::eal_args::vdev_arg(first_vdev, "socket").empty() ? std::string("/run/memif.sock")
                                                                             : dpdk::eal_args::vdev_arg(first_vdev, "socket")) +
                     " did not accept the connection in 5 tries of 1s (is another client connected to it?)",
                 {}};
  }
  if (memif_client) {
    // The PMD's client connects only at start: reconnect it when its
    // server comes back (memif_reconnect.hpp).
    st.reconnect = std::make_unique<dpdk::memif_reconnect>(*st.device, first_vdev, s.idle_sleep);
  }
  st.group = std::make_unique<inet::stack_group>(static_cast<unsigned>(plan.loops.size()));
  // The same function the device's RSS computes, if it has any (its RETA size).
  st.steering = std::make_unique<inet::flow_steering>(static_cast<unsigned>(plan.loops.size()), st.device->reta_size());
  st.tcp = tcp_config_for(s);
  st.iface = *ifc;
  st.plan = plan;
  st.idle_sleep = s.idle_sleep;
  std::fprintf(stderr, "sluice: dpdk %s; stack %s\n", st.device->describe().c_str(), st.iface.to_string().c_str());
  return {};
}

// Loop threads join the EAL as registered threads (they get an lcore id, so
// the mempools' per-lcore caches work for them) and leave it when they end.
struct eal_thread {
  bool registered = false;
  eal_thread() noexcept { registered = rte_thread_register() == 0; }
  ~eal_thread() {
    if (registered) rte_thread_unregister();
  }
};

std::unique_ptr<loop_base> make_dpdk_loop(const loop_options& opts, std::uint16_t id) {
  thread_local eal_thread joined;
  process_state& st = state();
  const int queue = id < st.plan.loops.size() ? st.plan.loops[id].nic_queue : -1;
  inet::inet_transport_options to;
  to.stack.iface = st.iface;
  to.stack.group = st.group.get();
  to.stack.steering = st.steering.get();
  to.stack.tcp = st.tcp;
  to.stack.announce = id == 0;  // one announcement per port
  to.stack.on_duplicate_address = [](const inet::ip_address& a, const inet::mac_address& by) {
    // Control plane (the stack's maintenance timer), once per address.
    std::fprintf(stderr,
                 "sluice: duplicate address: %s is in use by %s on the link (duplicate address detection, RFC 4862); "
                 "withdrawn: this stack neither answers for it nor sends from it\n",
                 a.to_string().c_str(), by.to_string().c_str());
  };
  to.max_sleep = st.idle_sleep;
  to.transport_name = "dpdk";
  auto port = std::make_unique<dpdk::dpdk_queue>(*st.device, static_cast<std::uint16_t>(queue < 0 ? id : queue));
  return std::make_unique<loop<dpdk::dpdk_transport>>(opts, id, std::move(port), to);
}

std::string describe_dpdk(const platform::placement_plan& plan) {
  const dpdk_settings& s = settings();
  auto parsed = dpdk::eal_args::parse(s.dpdk_args);
  if (!parsed) return "dpdk: " + parsed.err().message + "\n";
  const dpdk::host_facts facts = dpdk::host_facts::gather(*parsed);
  const dpdk::memory_choice memory = dpdk::choose_memory(*parsed, facts);
  const dpdk::eal_args* args = &memory.args;
  std::string out = "dpdk: EAL arguments: " + join(dpdk::eal_argv(*args, plan, "sluice", static_cast<int>(::getpid()))) + "\n";
  const auto loops = static_cast<unsigned>(plan.loops.size());
  if (!args->vdevs.empty()) {
    for (const auto& v : args->vdevs) {
      out += "  port: virtual device " + v + " (no NUMA node)\n";
      out += "  steering: " + steering_for(dpdk::eal_args::driver_of(v), loops) + "\n";
    }
  } else if (!args->allow.empty()) {
    for (const auto& a : args->allow) {
      std::string full = std::count(a.begin(), a.end(), ':') == 1 ? "0000:" + a : a;
      std::ifstream in("/sys/bus/pci/devices/" + full + "/numa_node");
      int node = -1;
      if (!(in >> node)) node = -1;
      out += "  port: PCI " + full + " (NUMA node " + (node < 0 ? std::string("none known") : std::to_string(node)) + ")\n";
      out += "  steering: " + steering_for("pci", loops) + "\n";
    }
  } else {
    out += "  port: the first NIC bound to a DPDK driver\n";
    out += "  steering: " + steering_for("pci", loops) + "\n";
  }
  const auto cfg = device_config_for(plan);
  for (const auto& l : plan.loops) {
    out += "  loop " + std::to_string(l.loop) + " -> RX/TX queue " + std::to_string(l.nic_queue < 0 ? l.loop : static_cast<unsigned>(l.nic_queue)) +
           " (CPU " + std::to_string(l.cpu) + ", packet pool on " +
           (l.memory_node < 0 ? std::string("any node") : "node " + std::to_string(l.memory_node)) + ")\n";
  }
  std::set<int> nodes(cfg.queue_nodes.begin(), cfg.queue_nodes.end());
  for (int n : nodes) {
    const auto k = static_cast<unsigned>(std::count(cfg.queue_nodes.begin(), cfg.queue_nodes.end(), n));
    out += "  packet pool " + (n < 0 ? std::string("(any node)") : "node " + std::to_string(n)) + ": " +
           std::to_string(dpdk::pool_size(k, cfg)) + " mbufs = " + std::to_string(k) + " loop(s) x (" +
           std::to_string(cfg.rx_descriptors) + " RX + " + std::to_string(cfg.tx_descriptors) + " TX descriptors + " +
           std::to_string(cfg.held_per_loop) + " held by the stack + " + std::to_string(dpdk::pool_cache) +
           " cache) + 1024, rounded to 2^k-1\n";
  }
  out += dpdk::describe_af_xdp(*args, facts, loops);
  out += "  EAL memory: " + memory.note + "\n";
  auto ifc = stack_interface(s);
  out += "  stack: " + (ifc ? ifc->to_string() : ifc.err().message) + "\n";
  return out;
}

void dpdk_metrics(metric_list& out) {
  if (state().device) state().device->metrics(out);
}

void finish_dpdk() {
  process_state& st = state();
  st.reconnect.reset();
  st.device.reset();
  st.group.reset();
  st.steering.reset();
  if (st.eal_running) {
    // The EAL leaves its (empty, with --no-shconf) runtime directory behind.
    const std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    ::rmdir(dir.c_str());
  }
  st.eal_running = false;
}

// The DPDK transport's and its user-space stack's flags: declared here, not
// by core, so that a program without this library has none of them.
void declare_dpdk_options(cli& args) {
  dpdk_settings& ts = settings();
  args.option("--dpdk-args", "\"EAL ARGS\"",
              "DPDK EAL arguments, passed through (with --transport=dpdk); the lcores come from the plan, not -l",
              ts.dpdk_args);
  args.option("--ip", "ADDR/PREFIX", "the user-space stack's address, e.g. 10.0.0.2/24 (needed by --transport=dpdk)",
              ts.ip);
  args.option("--gateway", "ADDR", "the user-space stack's default gateway (default: none, the subnet only)",
              ts.gateway);
  args.option("--ip6", "ADDR/PREFIX",
              "an IPv6 address of the user-space stack and its on-link prefix, e.g. fd00::2/64 (repeatable, up to 8; "
              "the link-local address always comes from the MAC)",
              ts.ip6);
  args.option("--gateway6", "ADDR",
              "the user-space stack's IPv6 default gateway, link-local or inside an --ip6 prefix (default: none)",
              ts.gateway6);
  args.flag("--accept-ra",
            "the user-space stack's IPv6 default router from router advertisements (RFC 4861; default off: "
            "advertisements are counted and ignored; no SLAAC either way)",
            ts.accept_ra);
  args.duration_option("--idle-sleep",
                       "dpdk: the longest sleep of an idle loop between polls; bounds the wait of the first packet "
                       "after a quiet spell (default 1ms)",
                       ts.idle_sleep, ranges::idle_sleep);
  args.custom("--tcp-cc", "NAME", "dpdk: the user-space TCP's congestion control, cubic (default) or newreno",
              [&ts](std::string_view v) -> result<void> {
                if (v != "cubic" && v != "newreno") return error{"unknown congestion control (cubic, newreno)", {}};
                ts.tcp_congestion = std::string(v);
                return {};
              });
  args.duration_option("--tcp-delayed-ack",
                       "dpdk: delay ACKs up to this long, at least every second segment (default 0: every burst of "
                       "segments is acknowledged at once, latency first)",
                       ts.tcp_delayed_ack, ranges::tcp_delayed_ack);
  args.flag("--tcp-nagle", "dpdk: Nagle's algorithm on (default off, as TCP_NODELAY on kernel sockets)", ts.tcp_nagle);
  args.duration_option("--tcp-keepalive", "dpdk: probe connections idle this long (default: off)", ts.tcp_keepalive,
                       ranges::optional_timeout);
  args.duration_option("--tcp-persist-timeout",
                       "dpdk: give up a connection whose peer's window stays shut this long with data waiting "
                       "(default 300s)",
                       ts.tcp_persist_timeout, ranges::tcp_persist_timeout);
}

// The user-space stack's flags mean nothing to a kernel transport: say so
// rather than ignore them.
result<void> check_dpdk_options(bool chosen) {
  if (chosen) return {};
  const dpdk_settings& ts = settings();
  for (const auto& [given, flag] : {std::pair{!ts.ip.empty(), "--ip"}, std::pair{!ts.dpdk_args.empty(), "--dpdk-args"},
                                    std::pair{!ts.gateway.empty(), "--gateway"}, std::pair{!ts.ip6.empty(), "--ip6"},
                                    std::pair{!ts.gateway6.empty(), "--gateway6"},
                                    std::pair{ts.accept_ra, "--accept-ra"}}) {
    if (given) return error{std::string(flag) + " needs --transport=dpdk", {}};
  }
  return {};
}

const transport_entry dpdk_entry{
    .name = "dpdk",
    .summary = "DPDK poll-mode driver with the user-space TCP/IP stack, one RX/TX queue pair per loop",
    .rank = 50,
    .probe = &probe_dpdk,
    .init_process = &init_dpdk,
    .make_loop = &make_dpdk_loop,
    .describe = &describe_dpdk,
    .process_metrics = &dpdk_metrics,
    .finish_process = &finish_dpdk,
    .drives_nic = true,
    .port_queues = &dpdk_port_queues,
    .declare_options = &declare_dpdk_options,
    .check_options = &check_dpdk_options,
};

}  // namespace

SLUICE_REGISTER_TRANSPORT(dpdk_entry)

}  // namespace sluice
