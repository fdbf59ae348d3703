// The DPDK side of the conformance suite (dpdk_environment.hpp): namespace,
// EAL, net_tap ports and their kernel sides, and one port per live loop.

#include "dpdk_environment.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <mutex>
#include <vector>

#include "sluice/dpdk/dpdk_device.hpp"
#include "sluice/dpdk/dpdk_queue.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/stack_group.hpp"

extern char** environ;

namespace sluice::conformance::dpdk_environment {
namespace {

// 10.77.<port>.1 is the kernel, 10.77.<port>.2 the stack; fd77:<port>::1
// and fd77:<port>::2 the same for IPv6.
std::string kernel_ip(unsigned port) { return "10.77." + std::to_string(port) + ".1"; }
std::string stack_ip(unsigned port) { return "10.77." + std::to_string(port) + ".2"; }
std::string kernel_ip6(unsigned port) { return "fd77:" + std::to_string(port) + "::1"; }
std::string stack_ip6(unsigned port) { return "fd77:" + std::to_string(port) + "::2"; }
std::string tap_name(unsigned port) { return "sct" + std::to_string(port); }

// Runs a program (PATH lookup) and waits for it; "" or why it failed.
std::string run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  std::vector<std::string> storage = argv;
  for (auto& a : storage) args.push_back(a.data());
  args.push_back(nullptr);
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  pid_t pid = -1;
  if (int e = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); e != 0) {
    return "cannot run `" + line + "`: " + std::strerror(e);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "`" + line + "` failed";
  return {};
}

// Writes a /proc/sys value of this (our own) namespace.
std::string write_sysctl(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.close();
  return out ? std::string() : "cannot write " + path;
}

// The CPUs this process may run on, as an EAL cpuset ("0,1"): the main
// lcore keeps all of them, so the loop threads it starts are not confined
// to one CPU.
std::string allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string out;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out += (out.empty() ? "" : ",") + std::to_string(c);
  }
  return out.empty() ? "0" : out;
}

// A dpdk_queue lent to one loop: the port goes back to the pool when the
// loop's transport lets go of it (the stack is gone by then: the port
// outlives it). The forwarding costs one more indirect call per burst, in
// tests only.
class leased_queue final : public inet::packet_port {
 public:
  leased_queue(const dpdk::dpdk_device& dev, bool* in_use) : queue_(dev, 0), in_use_(in_use) {}
  ~leased_queue() override;
  std::size_t receive(inet::packet** out, std::size_t n) noexcept override { return queue_.receive(out, n); }
  std::size_t transmit(inet::packet** p, std::size_t n) noexcept override { return queue_.transmit(p, n); }
  std::size_t allocate(inet::packet** out, std::size_t n) noexcept override { return queue_.allocate(out, n); }
  [[nodiscard]] inet::mac_address mac() const noexcept override { return queue_.mac(); }
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept override {
    return queue_.capabilities();
  }
  [[nodiscard]] segment_release_fn release_function() const noexcept override { return queue_.release_function(); }
  void metrics(const std::string& prefix, metric_list& out) const override { queue_.metrics(prefix, out); }

 private:
  dpdk::dpdk_queue queue_;
  bool* in_use_;
};

struct environment {
  std::string why;  // "" when everything is up
  bool eal_running = false;
  std::string runtime_dir;
  struct port_state {
    std::unique_ptr<dpdk::dpdk_device> device;
    inet::interface_config iface;
    bool in_use = false;
  };
  std::array<port_state, ports> port;
  std::mutex mu;  // port[].in_use

  environment() { why = start(); }
  ~environment() {
    for (auto& p : port) p.device.reset();
    if (eal_running) {
      rte_eal_cleanup();
      ::rmdir(runtime_dir.c_str());
    }
  }

  std::string start() {
    if (::geteuid() != 0) return "not root: the suite creates a network namespace and tap devices";
    int tun = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tun < 0) return std::string("/dev/net/tun cannot be opened (net_tap needs it): ") + std::strerror(errno);
    ::close(tun);
    // Everything from here on (the taps, the kernel sockets, the loop
    // threads started later) lives in a namespace of our own, which has no
    // route out and ends with this process.
    if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    if (auto e = run({"ip", "link", "set", "lo", "up"}); !e.empty()) return e;

    std::vector<std::string> words = {"sluice-conformance", "--lcores=0@(" + allowed_cpus() + ")", "--no-huge",
                                      "-m", "512", "--no-pci", "--no-telemetry", "--no-shconf",
                                      "--log-level=*:warning"};
    for (unsigned i = 0; i < ports; ++i)
      words.push_back("--vdev=net_tap" + std::to_string(i) + ",iface=" + tap_name(i));
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(words.size()), argv.data()) < 0) {
      return std::string("rte_eal_init: ") + rte_strerror(rte_errno);
    }
    eal_running = true;
    runtime_dir = rte_eal_get_runtime_dir();
    for (unsigned i = 0; i < ports; ++i) {
      std::uint16_t id = 0;
      const std::string name = "net_tap" + std::to_string(i);
      if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) return name + " did not attach (see the EAL log)";
      dpdk::device_config cfg;
      cfg.queue_nodes = {-1};
      cfg.loop_queues = {0};
      auto dev = dpdk::dpdk_device::open(id, cfg);
      if (!dev) return dev.err().message;
      port[i].device = std::move(*dev);
      auto ifc = inet::interface_config::parse(stack_ip(i) + "/24", kernel_ip(i), {stack_ip6(i) + "/64"},
                                               kernel_ip6(i));
      if (!ifc) return ifc.err().message;
      port[i].iface = *ifc;
      if (auto e = run({"ip", "addr", "add", kernel_ip(i) + "/24", "dev", tap_name(i)}); !e.empty()) return e;
      // nodad: the address is usable at once (the namespace is ours alone).
      if (auto e = run({"ip", "-6", "addr", "add", kernel_ip6(i) + "/64", "dev", tap_name(i), "nodad"}); !e.empty()) {
        return e;
      }
      if (auto e = run({"ip", "link", "set", tap_name(i), "up"}); !e.empty()) return e;
    }
    // A stack on port 1 reaches a listener on port 0 through the kernel.
    if (auto e = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"); !e.empty()) return e;
    return write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
  }
};

environment& env() {
  static environment e;
  return e;
}

leased_queue::~leased_queue() {
  std::lock_guard l(env().mu);
  *in_use_ = false;
}

// Loop threads join the EAL as registered threads (the mempools' per-lcore
// caches need an lcore id) and leave it when they end; the main thread is
// the EAL's main lcore already.
struct eal_thread {
  bool registered = false;
  eal_thread() noexcept {
    if (rte_lcore_id() == LCORE_ID_ANY) registered = rte_thread_register() == 0;
  }
  ~eal_thread() {
    if (registered) rte_thread_unregister();
  }
};

}  // namespace

const std::string& unavailable() { return env().why; }

std::unique_ptr<loop<dpdk::dpdk_transport>> make(const loop_options& opts, std::uint16_t id) {
  thread_local eal_thread joined;
  environment& e = env();
  environment::port_state* p = nullptr;
  {
    std::lock_guard l(e.mu);
    for (auto& candidate : e.port) {
      if (!candidate.in_use) {
        candidate.in_use = true;
        p = &candidate;
        break;
      }
    }
  }
  if (p == nullptr) {
    ADD_FAILURE() << "more than " << ports << " DPDK loops at once: every port is taken";
    return nullptr;
  }
  inet::inet_transport_options to;
  to.stack.iface = p->iface;
  to.transport_name = "dpdk";
  return std::make_unique<loop<dpdk::dpdk_transport>>(opts, id, std::make_unique<leased_queue>(*p->device, &p->in_use),
                                                      to);
}

endpoint kernel_side() { return endpoint::ipv4(*inet::parse_ipv4(kernel_ip(0)), 0); }

}  // namespace sluice::conformance::dpdk_environment
