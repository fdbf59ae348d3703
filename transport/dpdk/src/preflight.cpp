#include "sluice/dpdk/preflight.hpp"

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace sluice::dpdk {

namespace {

namespace fs = std::filesystem;

std::uint64_t meminfo_value(const std::string& text, std::string_view key) {
  const auto pos = text.find(key);
  if (pos == std::string::npos) return 0;
  std::istringstream in(text.substr(pos + key.size()));
  std::uint64_t v = 0;
  in >> v;
  return v;
}

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string driver_of_pci(const std::string& addr) {
  std::string full = addr;
  if (std::count(full.begin(), full.end(), ':') == 1) full = "0000:" + full;  // short form "81:00.0"
  const fs::path dev = fs::path("/sys/bus/pci/devices") / full;
  std::error_code ec;
  if (!fs::exists(dev, ec)) return "?";
  const fs::path drv = fs::read_symlink(dev / "driver", ec);
  return ec ? std::string() : drv.filename().string();
}

// ethtool ioctls on a socket of this network namespace (/sys may show
// another one).
int ethtool(int fd, const std::string& ifname, void* data) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = static_cast<char*>(data);
  return ::ioctl(fd, SIOCETHTOOL, &ifr);
}

std::string iface_driver(int fd, const std::string& ifname) {
  ethtool_drvinfo d{};
  d.cmd = ETHTOOL_GDRVINFO;
  return ethtool(fd, ifname, &d) == 0 ? std::string(d.driver) : std::string();
}

unsigned iface_queues(int fd, const std::string& ifname) {
  ethtool_channels c{};
  c.cmd = ETHTOOL_GCHANNELS;
  if (ethtool(fd, ifname, &c) != 0) return 0;
  // The AF_XDP PMD counts combined channels only (a veth, with separate RX
  // and TX counts, is one queue to it).
  return c.combined_count != 0 ? c.combined_count : 1;
}

// veth's "peer_ifindex" statistic; 0 if none.
unsigned veth_peer_index(int fd, const std::string& ifname) {
  // ethtool_sset_info with room for the one count asked for.
  alignas(ethtool_sset_info) std::uint8_t info_buf[sizeof(ethtool_sset_info) + sizeof(std::uint32_t)] = {};
  auto* info = reinterpret_cast<ethtool_sset_info*>(info_buf);
  info->cmd = ETHTOOL_GSSET_INFO;
  info->sset_mask = 1ull << ETH_SS_STATS;
  if (ethtool(fd, ifname, info) != 0 || info->sset_mask == 0) return 0;
  const std::uint32_t n = info->data[0];
  if (n == 0 || n > 4096) return 0;
  std::vector<std::uint8_t> strings(sizeof(ethtool_gstrings) + n * ETH_GSTRING_LEN);
  auto* gs = reinterpret_cast<ethtool_gstrings*>(strings.data());
  gs->cmd = ETHTOOL_GSTRINGS;
  gs->string_set = ETH_SS_STATS;
  gs->len = n;
  if (ethtool(fd, ifname, gs) != 0) return 0;
  std::vector<std::uint8_t> stats(sizeof(ethtool_stats) + n * sizeof(std::uint64_t));
  auto* st = reinterpret_cast<ethtool_stats*>(stats.data());
  st->cmd = ETHTOOL_GSTATS;
  st->n_stats = n;
  if (ethtool(fd, ifname, st) != 0) return 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const char* name = reinterpret_cast<const char*>(gs->data + i * ETH_GSTRING_LEN);
    if (std::strncmp(name, "peer_ifindex", ETH_GSTRING_LEN) == 0) return static_cast<unsigned>(st->data[i]);
  }
  return 0;
}

bool tx_checksum_on(int fd, const std::string& ifname) {
  ethtool_value v{};
  v.cmd = ETHTOOL_GTXCSUM;
  return ethtool(fd, ifname, &v) == 0 && v.data != 0;
}

// Where libxdp looks for its default XDP program: $LIBXDP_OBJECT_PATH, else
// the directory it was built with (Debian: /usr/lib/<multiarch>/bpf).
std::vector<std::string> libxdp_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LIBXDP_OBJECT_PATH"); env != nullptr && *env != 0) dirs.emplace_back(env);
#if defined(__x86_64__)
  dirs.emplace_back("/usr/lib/x86_64-linux-gnu/bpf");
#elif defined(__aarch64__)
  dirs.emplace_back("/usr/lib/aarch64-linux-gnu/bpf");
#endif
  dirs.emplace_back("/usr/lib64/bpf");
  dirs.emplace_back("/usr/lib/bpf");
  dirs.emplace_back("/usr/local/lib/bpf");
  return dirs;
}

// Since 5.11 the kernel charges AF_XDP's pinned memory to the memory cgroup
// instead of RLIMIT_MEMLOCK.
bool kernel_at_least(unsigned major, unsigned minor) {
  utsname u{};
  if (::uname(&u) != 0) return true;
  unsigned ma = 0, mi = 0;
  if (std::sscanf(u.release, "%u.%u", &ma, &mi) != 2) return true;
  return ma > major || (ma == major && mi >= minor);
}

unsigned vdev_number(const std::string& vdev, const char* key, unsigned dflt) {
  const std::string v = eal_args::vdev_arg(vdev, key);
  return v.empty() ? dflt : static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
}

std::string mib(std::uint64_t bytes) {
  return bytes == UINT64_MAX ? std::string("unlimited") : std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

bool is_dpdk_driver(const std::string& d) {
  // vfio and uio hand the device to user space; mlx4/mlx5 are bifurcated
  // (DPDK shares the device with the kernel driver).
  return d == "vfio-pci" || d == "uio_pci_generic" || d == "igb_uio" || d == "mlx5_core" || d == "mlx4_core";
}

host_facts host_facts::gather(const eal_args& args) {
  host_facts f;
  f.root = ::geteuid() == 0;
  const std::string status = read_all("/proc/self/status");
  if (auto pos = status.find("CapEff:"); pos != std::string::npos) {
    const std::uint64_t caps = std::stoull(status.substr(pos + 7), nullptr, 16);
    f.cap_net_admin = (caps >> 12) & 1;  // CAP_NET_ADMIN
    f.cap_net_raw = (caps >> 13) & 1;    // CAP_NET_RAW
  }
  const std::string meminfo = read_all("/proc/meminfo");
  f.hugepages_total = meminfo_value(meminfo, "HugePages_Total:");
  f.hugepages_free = meminfo_value(meminfo, "HugePages_Free:");
  f.hugepage_kb = meminfo_value(meminfo, "Hugepagesize:");
  f.hugetlbfs_mounted = read_all("/proc/mounts").find(" hugetlbfs ") != std::string::npos;
  bool wants_tun = false;
  for (const auto& v : args.vdevs) {
    const std::string drv = eal_args::driver_of(v);
    if (drv == "net_tap" || drv == "net_tun") wants_tun = true;
    if (drv == "net_memif" && eal_args::vdev_arg(v, "role") == "client") {
      f.memif_sockets[memif_socket_name(v)] = memif_server_listening(v);
    }
    const std::string iface = eal_args::vdev_arg(v, "iface");
    if (!iface.empty() && drv != "net_tap" && drv != "net_tun") {
      f.interfaces[iface] = ::if_nametoindex(iface.c_str()) != 0;
    }
  }
  if (wants_tun) {
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      f.tun_error = std::strerror(errno);
    } else {
      ::close(fd);
    }
  }
  bool wants_xdp = false;
  for (const auto& v : args.vdevs) {
    if (eal_args::driver_of(v) != "net_af_xdp") continue;
    wants_xdp = true;
    const std::string iface = eal_args::vdev_arg(v, "iface");
    if (iface.empty() || ::if_nametoindex(iface.c_str()) == 0) continue;
    host_facts::af_xdp_facts x;
    x.iface = iface;
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      x.driver = iface_driver(fd, iface);
      x.queues = iface_queues(fd, iface);
      if (x.driver == "veth") {
        const unsigned peer = veth_peer_index(fd, iface);
        char name[IF_NAMESIZE] = {};
        // The index is the peer's in its own namespace: it is ours only if
        // that interface names us back.
        if (peer != 0 && ::if_indextoname(peer, name) != nullptr && iface_driver(fd, name) == "veth" &&
            veth_peer_index(fd, name) == ::if_nametoindex(iface.c_str())) {
          x.peer = name;
          x.peer_tx_checksum = tx_checksum_on(fd, name);
        } else {
          x.peer_elsewhere = true;
        }
      }
      ::close(fd);
    }
    f.af_xdp.push_back(x);
  }
  if (wants_xdp) {
    for (const auto& d : libxdp_dirs()) {
      f.libxdp_object_dirs += (f.libxdp_object_dirs.empty() ? "" : ", ") + d;
      std::error_code ec;
      if (f.libxdp_object.empty() && fs::exists(d + "/xsk_def_xdp_prog.o", ec)) f.libxdp_object = d + "/xsk_def_xdp_prog.o";
    }
    f.bpffs_mounted = read_all("/proc/mounts").find(" /sys/fs/bpf bpf ") != std::string::npos;
    rlimit rl{};
    if (::getrlimit(RLIMIT_MEMLOCK, &rl) == 0) f.memlock_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
    f.memlock_charged_to_memcg = kernel_at_least(5, 11);
  }
  for (const auto& a : args.allow) f.pci_drivers[a] = driver_of_pci(a);
  if (!args.no_pci && args.allow.empty()) {
    std::error_code ec;
    for (const auto& dev : fs::directory_iterator("/sys/bus/pci/devices", ec)) {
      std::ifstream cls(dev.path() / "class");
      std::string c;
      cls >> c;
      if (c.rfind("0x02", 0) != 0) continue;  // network controllers only
      std::error_code e2;
      const fs::path drv = fs::read_symlink(dev.path() / "driver", e2);
      if (!e2 && is_dpdk_driver(drv.filename().string())) ++f.dpdk_bound_nics;
    }
  }
  return f;
}

std::string preflight(const eal_args& a, const host_facts& f) {
  if (!a.refused.empty()) {
    return "--dpdk-args: " + a.refused +
           " is not accepted: sluice lays out the lcores from its placement plan (use --cores, --cpuset or "
           "--numa-node instead)";
  }
  if (a.no_huge && a.in_memory) return "--dpdk-args: --in-memory does not combine with --no-huge; use --no-shconf";
  if (!a.no_huge) {
    if (f.hugepages_total == 0) {
      return "no hugepages are reserved and --dpdk-args has no --no-huge: reserve some (as root: echo 512 > "
             "/proc/sys/vm/nr_hugepages) or, on a development machine, add --no-huge -m 512";
    }
    if (f.hugepages_free == 0) {
      return "all " + std::to_string(f.hugepages_total) +
             " reserved hugepages are in use (HugePages_Free is 0): free some, reserve more, or add --no-huge -m 512";
    }
    if (!f.hugetlbfs_mounted && !a.in_memory) {
      return "hugepages are reserved but no hugetlbfs is mounted: mount -t hugetlbfs nodev /dev/hugepages, or add "
             "--in-memory";
    }
  }
  // A port: a virtual device or a PCI NIC that DPDK may take.
  if (a.vdevs.empty()) {
    if (a.no_pci) {
      return "no port: --dpdk-args has --no-pci and no --vdev (on a development machine: --no-pci "
             "--vdev=net_tap0,iface=sl0)";
    }
    if (a.allow.empty() && f.dpdk_bound_nics == 0) {
      return "no usable port: no PCI NIC is bound to a DPDK driver (vfio-pci, uio_pci_generic) and --dpdk-args has no "
             "--vdev; bind one (dpdk-devbind.py --bind=vfio-pci ADDR) and pass -a ADDR, or use --no-pci "
             "--vdev=net_tap0,iface=sl0";
    }
  } else if (!a.no_pci && a.allow.empty()) {
    // Probing PCI as well could take over a NIC the kernel is using.
    return "--dpdk-args has a --vdev but neither --no-pci nor -a ADDR: add --no-pci, so that DPDK does not probe "
           "(and take) the machine's own NICs";
  }
  for (const auto& [addr, drv] : f.pci_drivers) {
    if (drv == "?") return "-a " + addr + ": no such PCI device (see lspci -D)";
    if (drv.empty()) return "-a " + addr + ": the NIC is bound to no driver; bind it to vfio-pci (dpdk-devbind.py --bind=vfio-pci " + addr + ")";
    if (!is_dpdk_driver(drv)) {
      return "-a " + addr + ": the NIC is bound to the kernel driver " + drv +
             "; DPDK cannot drive it until it is bound to vfio-pci (dpdk-devbind.py --bind=vfio-pci " + addr + ")";
    }
  }
  for (const auto& v : a.vdevs) {
    const std::string drv = eal_args::driver_of(v);
    if (drv == "net_tap" || drv == "net_tun") {
      if (!f.tun_error.empty()) return "--vdev=" + v + ": cannot open /dev/net/tun (" + f.tun_error + ")";
      if (!f.cap_net_admin) return "--vdev=" + v + ": a tap device needs CAP_NET_ADMIN (run as root or grant it)";
    } else if (drv == "net_af_packet" || drv == "net_af_xdp") {
      if (!f.cap_net_raw) return "--vdev=" + v + ": " + drv + " needs CAP_NET_RAW (run as root or grant it)";
      const std::string iface = eal_args::vdev_arg(v, "iface");
      if (iface.empty()) return "--vdev=" + v + ": give the interface, iface=NAME";
      if (auto it = f.interfaces.find(iface); it != f.interfaces.end() && !it->second) {
        return "--vdev=" + v + ": no interface " + iface + " in this network namespace";
      }
      if (drv == "net_af_xdp") {
        const unsigned start = vdev_number(v, "start_queue", 0), count = vdev_number(v, "queue_count", 1);
        for (const auto& x : f.af_xdp) {
          if (x.iface != iface || x.queues == 0 || start + count <= x.queues) continue;
          return "--vdev=" + v + ": " + iface + " has " + std::to_string(x.queues) + " queue" +
                 (x.queues == 1 ? "" : "s") + ", and start_queue=" + std::to_string(start) +
                 ",queue_count=" + std::to_string(count) + " needs " + std::to_string(start + count) +
                 " (more queues: ethtool -L " + iface + " combined N; a veth gets them when created, with "
                 "numrxqueues N numtxqueues N on both ends)";
        }
        const std::string prog = eal_args::vdev_arg(v, "xdp_prog");
        std::error_code ec;
        if (!prog.empty() && !fs::exists(prog, ec)) return "--vdev=" + v + ": xdp_prog " + prog + " does not exist";
        if (prog.empty() && f.libxdp_object.empty()) {
          return "--vdev=" + v + ": libxdp's default XDP program (xsk_def_xdp_prog.o) is not in " +
                 f.libxdp_object_dirs + "; install libxdp1 (build/install-deps.sh does), or point LIBXDP_OBJECT_PATH "
                 "at the directory that has it";
        }
        if (!f.memlock_charged_to_memcg && f.memlock_limit < (64ull << 20)) {
          return "--vdev=" + v + ": this kernel (before 5.11) counts AF_XDP's packet memory against the locked-memory "
                 "limit, which is " + mib(f.memlock_limit) + ": raise it (ulimit -l unlimited, or LimitMEMLOCK= in a "
                 "systemd unit)";
        }
      }
    }
  }
  for (const auto& v : a.vdevs) {
    const std::string drv = eal_args::driver_of(v);
    if (drv == "net_memif") {
      const std::string bsize = eal_args::vdev_arg(v, "bsize");
      if (!bsize.empty() && std::strtoul(bsize.c_str(), nullptr, 10) < 2048) {
        return "--vdev=" + v +
               ": bsize below 2048 is not supported: the PMD then frees frames one by one inside its transmit burst, "
               "which sluice's guard against the peer's disconnect (see the README) cannot undo; leave bsize out "
               "(2048)";
      }
      if (eal_args::vdev_arg(v, "zero-copy") == "yes") {
        return "--vdev=" + v + ": zero-copy=yes is not supported (sluice's packets live in its own pools); leave it out";
      }
    }
  }
  for (const auto& [sock, there] : f.memif_sockets) {
    if (!there) {
      return "net_memif role=client: no memif server listens on " + sock +
             (sock[0] == '@' ? " (an abstract socket, the PMD's default: the server must run in this network "
                               "namespace)"
                             : " (no socket there)") +
             "; start the role=server process first (a client connects once, when it starts; the long-lived side "
             "should be the server)";
    }
  }
  if (!a.no_huge && !f.root && !a.in_memory) {
    return "hugepage memory needs root (or add --in-memory with a hugetlbfs this user may write, or --no-huge)";
  }
  return {};
}

memory_choice choose_memory(const eal_args& a, const host_facts& f) {
  memory_choice c{a, {}};
  const std::string pages = std::to_string(f.hugepages_free) + " of " + std::to_string(f.hugepages_total) +
                            " hugepages free" + (f.hugepage_kb != 0 ? " (" + std::to_string(f.hugepage_kb / 1024) + " MB each)" : "");
  if (a.no_huge) {
    c.note = "ordinary pages (--no-huge, as given)";
    if (f.hugepages_free > 0) c.note += "; " + pages + " here: without --no-huge sluice would use them (fewer TLB misses per packet)";
    return c;
  }
  if (f.hugepages_free > 0) {
    c.note = "hugepages: " + pages;
    if (!f.hugetlbfs_mounted && !a.in_memory) {
      c.args.words.push_back("--in-memory");
      c.args.in_memory = true;
      c.note += "; no hugetlbfs is mounted, so --in-memory was added";
    }
    return c;
  }
  if (a.in_memory) return c;  // preflight says why that cannot work
  c.args.words.push_back("--no-huge");
  c.args.no_huge = true;
  std::string added = "--no-huge";
  if (!a.has_memory_size) {
    c.args.words.insert(c.args.words.end(), {"-m", "512"});
    c.args.has_memory_size = true;
    added += " -m 512";
  }
  c.note = std::string(f.hugepages_total == 0 ? "no hugepages are reserved" : "all " + std::to_string(f.hugepages_total) + " hugepages are in use") +
           ": ordinary pages, the fallback (" + added +
           " added; to use hugepages, as root: echo 512 > /proc/sys/vm/nr_hugepages)";
  return c;
}

std::vector<std::string> preflight_warnings(const eal_args& a, const host_facts& f) {
  std::vector<std::string> out;
  for (const auto& x : f.af_xdp) {
    if (x.peer_tx_checksum) {
      out.push_back("af_xdp on " + x.iface + ": its veth peer " + x.peer +
                    " has TX checksum offload on, so the kernel sends TCP and UDP with partial checksums that "
                    "AF_XDP hands over as they are and sluice's stack drops as bad; turn it off: ethtool -K " +
                    x.peer + " tx off");
    }
  }
  (void)a;
  return out;
}

std::string describe_af_xdp(const eal_args& a, const host_facts& f, unsigned loops) {
  std::string out;
  for (const auto& v : a.vdevs) {
    if (eal_args::driver_of(v) != "net_af_xdp") continue;
    const std::string iface = eal_args::vdev_arg(v, "iface");
    const unsigned start = vdev_number(v, "start_queue", 0), count = vdev_number(v, "queue_count", 1);
    const host_facts::af_xdp_facts* x = nullptr;
    for (const auto& i : f.af_xdp)
      if (i.iface == iface) x = &i;
    out += "  af_xdp: interface " + iface;
    if (x == nullptr) {
      out += " (not in this network namespace)\n";
      continue;
    }
    out += " (driver " + (x->driver.empty() ? std::string("unknown") : x->driver) + ", " +
           (x->queues == 0 ? std::string("queues unknown") : std::to_string(x->queues) + " queue" + (x->queues == 1 ? "" : "s")) +
           "): queues " + std::to_string(start) + (count > 1 ? "-" + std::to_string(start + count - 1) : "") +
           " (start_queue, queue_count), one loop per queue";
    out += loops == count ? " (" + std::to_string(loops) + " loop" + (loops == 1 ? "" : "s") + ")\n"
                          : "; WARNING: the plan has " + std::to_string(loops) + " loops: give --cores=" +
                                std::to_string(count) + " or queue_count=" + std::to_string(loops) + "\n";
    const bool force_copy = eal_args::vdev_arg(v, "force_copy") == "1";
    if (force_copy) {
      out += "  af_xdp: mode: copy (force_copy=1)\n";
    } else if (x->driver == "veth" || x->driver == "tun" || x->driver == "bridge" || x->driver == "macvlan") {
      out += "  af_xdp: mode: copy (" + x->driver +
             " has no zero-copy AF_XDP: frames are copied between the kernel and the UMEM, as with af_packet but "
             "without its socket layer)\n";
    } else {
      out += "  af_xdp: mode: zero-copy if the " + (x->driver.empty() ? std::string("NIC") : x->driver) +
             " driver supports it (the kernel falls back to copy otherwise; force_copy=1 forces copy)\n";
    }
    const std::string prog = eal_args::vdev_arg(v, "xdp_prog");
    out += "  af_xdp: XDP program: " +
           (!prog.empty() ? prog + " (xdp_prog=)"
                          : (f.libxdp_object.empty() ? std::string("libxdp's default, NOT FOUND in ") + f.libxdp_object_dirs
                                                     : "libxdp's default, " + f.libxdp_object)) +
           "\n";
    out += std::string("  af_xdp: bpffs: ") +
           (f.bpffs_mounted ? "mounted at /sys/fs/bpf (libxdp loads its program through its dispatcher)\n"
                            : "not mounted at /sys/fs/bpf: libxdp says \"No bpffs found\" and loads its program "
                              "without the dispatcher, which is fine for one program per interface (mount -t bpf bpf "
                              "/sys/fs/bpf to use the dispatcher)\n");
    out += "  af_xdp: locked memory: " +
           (f.memlock_charged_to_memcg ? "charged to the memory cgroup (kernel 5.11 or later); RLIMIT_MEMLOCK (" +
                                             mib(f.memlock_limit) + ") does not limit it\n"
                                       : "RLIMIT_MEMLOCK " + mib(f.memlock_limit) + " (this kernel counts the UMEM against it)\n");
    const std::string budget = eal_args::vdev_arg(v, "busy_budget");
    out += "  af_xdp: busy_budget=" + (budget.empty() ? std::string("64 (the PMD's default") : budget + " (given") +
           "; sluice reads bursts of 64): the PMD asks the kernel for preferred busy polling (SO_PREFER_BUSY_POLL) "
           "where it has it; busy_budget=0 turns it off\n";
    if (!x->peer.empty()) {
      out += "  af_xdp: veth peer " + x->peer + ": TX checksum offload " +
             (x->peer_tx_checksum ? "ON: WARNING, the kernel's partial checksums arrive as they are and are "
                                    "dropped; ethtool -K " + x->peer + " tx off\n"
                                  : "off (what AF_XDP needs from the kernel side)\n");
    } else if (x->peer_elsewhere) {
      out += "  af_xdp: veth peer in another network namespace: turn its TX checksum offload off there (ethtool -K "
             "PEER tx off), else the kernel's partial checksums arrive as they are and are dropped\n";
    }
  }
  return out;
}

std::string memif_socket_name(const std::string& vdev) {
  std::string sock = eal_args::vdev_arg(vdev, "socket");
  if (sock.empty()) sock = "/run/memif.sock";  // the PMD's default
  return eal_args::vdev_arg(vdev, "socket-abstract") == "no" ? sock : "@" + sock;
}

bool memif_server_listening(const std::string& vdev) {
  const std::string name = memif_socket_name(vdev);
  if (name.front() != '@') {
    struct stat st {};
    return ::stat(name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }
  // The PMD's default: an abstract socket, which lives in the network
  // namespace (/proc/net/unix lists this namespace's, "@" first).
  return read_all("/proc/net/unix").find(" " + name + "\n") != std::string::npos;
}

std::uint64_t memif_listener_id(const std::string& vdev) {
  const std::string name = memif_socket_name(vdev);
  std::istringstream in(read_all("/proc/net/unix"));
  std::string line;
  std::getline(in, line);  // "Num RefCount Protocol Flags Type St Inode Path"
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string num, refs, proto, flags, type, st, inode, path;
    if (!(f >> num >> refs >> proto >> flags >> type >> st >> inode >> path)) continue;
    // Accepted sockets carry the listener's name too; only the listener
    // has __SO_ACCEPTCON (1 << 16) in its flags.
    if (path == name && flags == "00010000") return std::strtoull(inode.c_str(), nullptr, 10);
  }
  if (name.front() != '@') {
    struct stat st {};
    if (::stat(name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      return std::uint64_t{st.st_ino} | (std::uint64_t{1} << 63);
    }
  }
  return 0;
}

}  // namespace sluice::dpdk
