// The DPDK transport's EAL command line and preflight, without an EAL: words
// split as a shell would, the plan's lcore layout added, lcore flags refused,
// and every missing piece of the host said in plain words (facts made up).

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "sluice/dpdk/eal_args.hpp"
#include "sluice/dpdk/preflight.hpp"

namespace sluice::dpdk {
namespace {

eal_args parse(std::string_view text) {
  auto a = eal_args::parse(text);
  EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.err().message);
  return a.ok() ? *a : eal_args{};
}

host_facts dev_machine() {
  host_facts f;
  f.root = true;
  f.cap_net_admin = f.cap_net_raw = true;
  return f;
}

TEST(dpdk_eal_args, splits_like_a_shell_and_reads_what_matters) {
  eal_args a = parse("--no-huge -m 512 --no-pci --vdev='net_tap0,iface=sl0' --vdev \"net_af_packet0,iface=v 0\" -a81:00.0");
  EXPECT_TRUE(a.no_huge);
  EXPECT_TRUE(a.no_pci);
  EXPECT_TRUE(a.has_memory_size);
  ASSERT_EQ(a.vdevs.size(), 2u);
  EXPECT_EQ(a.vdevs[0], "net_tap0,iface=sl0");
  EXPECT_EQ(a.vdevs[1], "net_af_packet0,iface=v 0");
  ASSERT_EQ(a.allow.size(), 1u);
  EXPECT_EQ(a.allow[0], "81:00.0");
  EXPECT_EQ(eal_args::driver_of(a.vdevs[1]), "net_af_packet");
  EXPECT_EQ(eal_args::vdev_arg(a.vdevs[1], "iface"), "v 0");
  EXPECT_EQ(eal_args::vdev_arg("net_af_packet0,iface=x,qpairs=2", "qpairs"), "2");
  EXPECT_EQ(eal_args::vdev_arg("net_tap0", "iface"), "");
  EXPECT_FALSE(eal_args::parse("--vdev='net_tap0").ok());
}

TEST(dpdk_eal_args, lcore_flags_are_refused_because_the_plan_decides) {
  for (const char* flag : {"-l 0-3", "-l0-3", "--lcores=0@1", "-c 0x3", "--main-lcore 1"}) {
    eal_args a = parse(std::string("--no-huge ") + flag);
    EXPECT_FALSE(a.refused.empty()) << flag;
    EXPECT_NE(preflight(a, dev_machine()).find("placement plan"), std::string::npos) << flag;
  }
  // --log-level starts with -l but is not -l.
  EXPECT_TRUE(parse("--log-level=eal:8 --no-huge").refused.empty());
}

TEST(dpdk_eal_args, the_argv_carries_the_plan_and_no_shared_files) {
  platform::placement_plan plan;
  plan.loops.push_back({0, 3, 0, 0, 0, 0, 0});
  plan.loops.push_back({1, 1, 1, 0, 0, 0, 1});
  auto argv = eal_argv(parse("--no-huge -m 256 --no-pci"), plan, "prog", 42);
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], "prog");
  EXPECT_EQ(argv[1], "--lcores=0@(1,3)");
  EXPECT_EQ(argv[2], "--no-shconf");
  EXPECT_EQ(argv.back(), "--no-pci");
  // A user's --file-prefix is kept, and then shared files are theirs.
  auto own = eal_argv(parse("--file-prefix=mine --no-huge"), plan, "prog", 42);
  EXPECT_EQ(std::count(own.begin(), own.end(), "--no-shconf"), 0);
}

// Regression (issue 21): a restarted memif peer came back with a new random
// MAC and the survivor's ARP cache kept the old one, so reconnects failed.
TEST(dpdk_eal_args, memif_vdevs_get_a_mac_that_survives_restarts) {
  const std::string server = memif_with_stable_mac("net_memif0,role=server,socket=/tmp/a.sock");
  const std::string client = memif_with_stable_mac("net_memif0,role=client,socket=/tmp/a.sock");
  EXPECT_EQ(server, memif_with_stable_mac("net_memif0,role=server,socket=/tmp/a.sock"));  // same on every run
  const std::string smac = eal_args::vdev_arg(server, "mac"), cmac = eal_args::vdev_arg(client, "mac");
  ASSERT_EQ(smac.size(), 17u);
  EXPECT_EQ(smac.substr(0, 3), "02:");  // locally administered, unicast
  EXPECT_NE(smac, cmac);                // the two roles differ
  EXPECT_NE(smac, eal_args::vdev_arg(memif_with_stable_mac("net_memif0,role=server,socket=/tmp/b.sock"), "mac"));
  // The user's own MAC, and other drivers, are left alone.
  EXPECT_EQ(memif_with_stable_mac("net_memif0,mac=02:00:00:00:00:09"), "net_memif0,mac=02:00:00:00:00:09");
  EXPECT_EQ(memif_with_stable_mac("net_tap0,iface=x"), "net_tap0,iface=x");
  platform::placement_plan plan;
  plan.loops.push_back({0, 0, 0, 0, 0, 0, 0});
  auto argv = eal_argv(parse("--no-pci --vdev net_memif0,role=client,socket=/tmp/a.sock"), plan, "prog", 1);
  EXPECT_EQ(argv.back(), client);
  argv = eal_argv(parse("--no-pci --vdev=net_memif0,role=client,socket=/tmp/a.sock"), plan, "prog", 1);
  EXPECT_EQ(argv.back(), "--vdev=" + client);
}

// Issue 21: hugepages where they exist, ordinary pages as the fallback.
TEST(dpdk_preflight, chooses_hugepages_when_reserved_and_falls_back_to_ordinary_pages) {
  host_facts f = dev_machine();
  f.hugepages_total = f.hugepages_free = 0;
  auto none = choose_memory(parse("--no-pci --vdev=net_tap0"), f);
  EXPECT_TRUE(none.args.no_huge);
  EXPECT_EQ(none.args.words, (std::vector<std::string>{"--no-pci", "--vdev=net_tap0", "--no-huge", "-m", "512"}));
  EXPECT_NE(none.note.find("no hugepages are reserved: ordinary pages, the fallback (--no-huge -m 512 added"),
            std::string::npos)
      << none.note;
  EXPECT_EQ(preflight(none.args, f), "");
  // The user's size is kept.
  EXPECT_EQ(choose_memory(parse("-m 300 --no-pci --vdev=net_tap0"), f).args.words.back(), "--no-huge");
  f.hugepages_total = 512;
  f.hugepages_free = 500;
  f.hugepage_kb = 2048;
  f.hugetlbfs_mounted = true;
  auto huge = choose_memory(parse("--no-pci --vdev=net_tap0"), f);
  EXPECT_FALSE(huge.args.no_huge);
  EXPECT_EQ(huge.args.words.size(), 2u);
  EXPECT_EQ(huge.note, "hugepages: 500 of 512 hugepages free (2 MB each)");
  f.hugetlbfs_mounted = false;
  auto in_memory = choose_memory(parse("--no-pci --vdev=net_tap0"), f);
  EXPECT_TRUE(in_memory.args.in_memory);
  EXPECT_EQ(in_memory.args.words.back(), "--in-memory");
  EXPECT_EQ(preflight(in_memory.args, f), "");
  // --no-huge given: kept, and the plan says hugepages were there.
  auto given = choose_memory(parse("--no-huge --no-pci --vdev=net_tap0"), f);
  EXPECT_EQ(given.args.words.size(), 3u);
  EXPECT_NE(given.note.find("without --no-huge sluice would use them"), std::string::npos);
  // All in use: the fallback again.
  f.hugepages_free = 0;
  EXPECT_NE(choose_memory(parse("--no-pci --vdev=net_tap0"), f).note.find("all 512 hugepages are in use"),
            std::string::npos);
}

TEST(dpdk_preflight, says_what_is_missing_in_plain_words) {
  auto why = [](std::string_view args, const host_facts& f) { return preflight(parse(args), f); };
  host_facts f = dev_machine();
  EXPECT_EQ(why("--no-huge -m 512 --no-pci --vdev=net_tap0,iface=sl0", f), "");
  EXPECT_NE(why("--no-pci --vdev=net_tap0", f).find("no hugepages are reserved and --dpdk-args has no --no-huge"),
            std::string::npos);
  host_facts huge = f;
  huge.hugepages_total = 512;
  huge.hugepages_free = 0;
  huge.hugetlbfs_mounted = true;
  EXPECT_NE(why("--no-pci --vdev=net_tap0", huge).find("all 512 reserved hugepages are in use"), std::string::npos);
  huge.hugepages_free = 512;
  EXPECT_EQ(why("--no-pci --vdev=net_tap0", huge), "");
  huge.hugetlbfs_mounted = false;
  EXPECT_NE(why("--no-pci --vdev=net_tap0", huge).find("no hugetlbfs is mounted"), std::string::npos);

  EXPECT_NE(why("--no-huge --no-pci", f).find("no port"), std::string::npos);
  EXPECT_NE(why("--no-huge", f).find("no PCI NIC is bound to a DPDK driver"), std::string::npos);
  EXPECT_NE(why("--no-huge --vdev=net_tap0", f).find("neither --no-pci nor -a"), std::string::npos);

  host_facts nic = f;
  nic.pci_drivers["0000:81:00.0"] = "ixgbe";
  EXPECT_NE(why("--no-huge -a 0000:81:00.0", nic).find("bound to the kernel driver ixgbe"), std::string::npos);
  nic.pci_drivers["0000:81:00.0"] = "";
  EXPECT_NE(why("--no-huge -a 0000:81:00.0", nic).find("bound to no driver"), std::string::npos);
  nic.pci_drivers["0000:81:00.0"] = "?";
  EXPECT_NE(why("--no-huge -a 0000:81:00.0", nic).find("no such PCI device"), std::string::npos);
  nic.pci_drivers["0000:81:00.0"] = "vfio-pci";
  EXPECT_EQ(why("--no-huge -a 0000:81:00.0", nic), "");

  host_facts user = f;
  user.cap_net_admin = user.cap_net_raw = false;
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_tap0", user).find("needs CAP_NET_ADMIN"), std::string::npos);
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_af_packet0,iface=v0", user).find("needs CAP_NET_RAW"), std::string::npos);
  host_facts tun = f;
  tun.tun_error = "No such file or directory";
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_tap0", tun).find("cannot open /dev/net/tun"), std::string::npos);
  host_facts noif = f;
  noif.interfaces["v9"] = false;
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_af_packet0,iface=v9", noif).find("no interface v9"), std::string::npos);
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_af_packet0", f).find("iface=NAME"), std::string::npos);
  EXPECT_NE(why("--no-huge --in-memory --no-pci --vdev=net_tap0", f).find("does not combine"), std::string::npos);
  host_facts memif = f;
  memif.memif_sockets["@/tmp/m.sock"] = false;
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_memif0,role=client,socket=/tmp/m.sock", memif)
                .find("no memif server listens on @/tmp/m.sock (an abstract socket"),
            std::string::npos);
  memif.memif_sockets["@/tmp/m.sock"] = true;
  EXPECT_EQ(why("--no-huge --no-pci --vdev=net_memif0,role=client,socket=/tmp/m.sock", memif), "");
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_memif0,bsize=1024", f).find("bsize below 2048"), std::string::npos);
  EXPECT_NE(why("--no-huge --no-pci --vdev=net_memif0,zero-copy=yes", f).find("zero-copy=yes is not supported"),
            std::string::npos);
}


// The abstract unix address "@NAME" (as the memif PMD binds by default).
struct abstract_address {
  sockaddr_un sun{};
  socklen_t len;
  explicit abstract_address(const std::string& name)
      : len(static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) {
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path + 1, name.data(), name.size());
  }
  [[nodiscard]] const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&sun); }
};

// A SOCK_SEQPACKET socket listening on "@NAME"; -1 on failure.
int abstract_listener(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  const abstract_address a(name);
  if (fd < 0 || ::bind(fd, a.addr(), a.len) != 0 || ::listen(fd, 1) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// The memif client's reconnect (issue 21) tells a new server process from the
// one that dropped it by the listening socket's identity: a new listener on
// the same name is another one, an accepted socket (which carries the same
// name in /proc/net/unix) is not a listener, and none listening reads 0.
TEST(dpdk_preflight, a_memif_listener_is_known_by_its_socket_not_its_name) {
  const std::string name = "/tmp/sluice_listener_test_" + std::to_string(::getpid());
  const std::string vdev = "net_memif0,role=client,socket=" + name;
  EXPECT_EQ(memif_socket_name(vdev), "@" + name);
  EXPECT_EQ(memif_listener_id(vdev), 0u);
  EXPECT_FALSE(memif_server_listening(vdev));
  const int first = abstract_listener(name);
  ASSERT_GE(first, 0);
  const std::uint64_t id = memif_listener_id(vdev);
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(memif_server_listening(vdev));
  // A client connected and accepted: two more sockets, one with the name.
  const int client = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  const abstract_address a(name);
  ASSERT_EQ(::connect(client, a.addr(), a.len), 0);
  const int accepted = ::accept4(first, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(memif_listener_id(vdev), id);
  ::close(first);
  // The listener gone, the accepted socket (same name) must not count.
  EXPECT_EQ(memif_listener_id(vdev), 0u);
  const int second = abstract_listener(name);
  ASSERT_GE(second, 0);
  const std::uint64_t id2 = memif_listener_id(vdev);
  EXPECT_NE(id2, 0u);
  EXPECT_NE(id2, id);
  ::close(second);
  ::close(accepted);
  ::close(client);
}

}  // namespace
}  // namespace sluice::dpdk
