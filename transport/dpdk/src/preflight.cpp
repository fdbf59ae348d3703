#include "sluice/dpdk/preflight.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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
  f.hugetlbfs_mounted = read_all("/proc/mounts").find(" hugetlbfs ") != std::string::npos;
  bool wants_tun = false;
  for (const auto& v : args.vdevs) {
    const std::string drv = eal_args::driver_of(v);
    if (drv == "net_tap" || drv == "net_tun") wants_tun = true;
    if (drv == "net_memif" && eal_args::vdev_arg(v, "role") == "client") {
      std::string sock = eal_args::vdev_arg(v, "socket");
      if (sock.empty()) sock = "/run/memif.sock";
      if (eal_args::vdev_arg(v, "socket-abstract") == "no") {
        struct stat st {};
        f.memif_sockets[sock] = ::stat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
      } else {
        // The PMD's default: an abstract socket, which lives in the network
        // namespace (/proc/net/unix lists this namespace's, "@" first).
        const std::string unix_sockets = read_all("/proc/net/unix");
        const std::string name = " @" + sock + "\n";
        f.memif_sockets["@" + sock] = unix_sockets.find(name) != std::string::npos;
      }
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

}  // namespace sluice::dpdk
