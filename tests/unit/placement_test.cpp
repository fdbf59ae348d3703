// Topology snapshots and placement plans on synthetic and XML topologies:
// two packages with hyperthreads, a NIC under package 1, cpuset limits,
// oversubscription and a single-core machine.

#include "sluice/platform/placement.hpp"

#include <gtest/gtest.h>

#include <set>

#include "sluice/platform/binding.hpp"
#include "sluice/platform/cpu_list.hpp"
#include "sluice/platform/topology.hpp"

namespace sluice::platform {
namespace {

const char* two_sockets = "pack:2 numa:1 l3:1 core:8 pu:2";

topology load_synthetic(const char* desc) {
  auto t = topology::from_synthetic(desc);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().message);
  return std::move(*t);
}

topology load_nic_xml() {
  auto t = topology::from_xml(SLUICE_TEST_DATA "/two_packages_nic.xml");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().message);
  return std::move(*t);
}

std::vector<unsigned> cpus_of(const placement_plan& p) {
  std::vector<unsigned> out;
  for (const auto& l : p.loops) out.push_back(l.cpu);
  return out;
}

TEST(cpu_list, parses_and_formats_ranges) {
  auto l = parse_cpu_list("8,0-3,2");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (cpu_list{0, 1, 2, 3, 8}));
  EXPECT_EQ(format_cpu_list(*l), "0-3,8");
  EXPECT_EQ(format_cpu_list({1, 3, 4, 5, 9}), "1,3-5,9");
  for (const char* bad : {"", "a", "3-1", "1,,2", "1-", "-1"}) EXPECT_FALSE(parse_cpu_list(bad).ok()) << bad;
}

TEST(topology, synthetic_two_packages_with_hyperthreads) {
  topology t = load_synthetic(two_sockets);
  EXPECT_FALSE(t.is_this_system());
  EXPECT_EQ(t.packages(), 2u);
  EXPECT_EQ(t.numa_nodes().size(), 2u);
  EXPECT_EQ(t.cores().size(), 16u);
  EXPECT_EQ(t.pus().size(), 32u);
  EXPECT_EQ(t.cores()[0].pus, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(t.cores()[8].package, 1u);
  EXPECT_EQ(t.cores()[8].numa_node, 1);
  EXPECT_EQ(t.pu(1)->smt_rank, 1u);
  EXPECT_EQ(t.allowed_cpus().size(), 32u);
  EXPECT_NE(t.summary().find("2 packages, 2 NUMA nodes, 16 cores, 32 hardware threads"), std::string::npos) << t.summary();
  EXPECT_NE(t.summary().find("not this machine"), std::string::npos);
}

TEST(topology, finds_a_nic_by_name_and_pci_with_its_locality) {
  topology t = load_nic_xml();
  const nic_info* n = t.find_nic("ens1f0");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->pci, "0000:81:00.0");
  EXPECT_EQ(n->numa_node, 1);
  EXPECT_EQ(format_cpu_list(n->local_cpus), "16-31");
  EXPECT_EQ(n->address, "3c:fd:fe:00:00:01");
  EXPECT_EQ(t.find_nic("0000:81:00.0"), n);
  EXPECT_EQ(t.find_nic("81:00.0"), n);
  EXPECT_EQ(t.find_nic("eth9"), nullptr);
}

TEST(topology, this_machine_loads) {
  auto t = topology::discover();
  ASSERT_TRUE(t.ok());
  EXPECT_GE(t->cores().size(), 1u);
  EXPECT_FALSE(t->allowed_cpus().empty());
  // Unless the environment substitutes one, the real machine binds for real.
  if (std::getenv("HWLOC_SYNTHETIC") == nullptr && std::getenv("HWLOC_XMLFILE") == nullptr) {
    EXPECT_TRUE(t->is_this_system());
  }
}

TEST(placement, default_is_one_loop_per_physical_core) {
  topology t = load_synthetic(two_sockets);
  auto p = make_plan(t, {});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->loops.size(), 16u);
  std::set<unsigned> cores;
  for (const auto& l : p->loops) {
    EXPECT_EQ(t.pu(l.cpu)->smt_rank, 0u) << "hyperthread siblings unused by default";
    cores.insert(l.core);
    EXPECT_EQ(l.memory_node, l.numa_node) << "memory on the loop's own node";
    EXPECT_EQ(l.nic_queue, -1);
  }
  EXPECT_EQ(cores.size(), 16u);
  EXPECT_FALSE(p->binding_real);
  EXPECT_NE(p->describe().find("NOT real"), std::string::npos) << "the plan says binding is not real";
}

TEST(placement, smt_uses_siblings_after_first_threads) {
  topology t = load_synthetic(two_sockets);
  placement_request r;
  r.smt = true;
  auto p = make_plan(t, r);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->loops.size(), 32u);
  for (unsigned i = 0; i < 16; ++i) EXPECT_EQ(t.pu(p->loops[i].cpu)->smt_rank, 0u);
  for (unsigned i = 16; i < 32; ++i) EXPECT_EQ(t.pu(p->loops[i].cpu)->smt_rank, 1u);
}

TEST(placement, nic_under_package_1_gets_package_1_cores_first) {
  topology t = load_nic_xml();
  placement_request r;
  r.nic = "ens1f0";
  r.nic_bound = true;
  r.loops = 4;
  auto p = make_plan(t, r);
  ASSERT_TRUE(p.ok()) << p.err().message;
  EXPECT_EQ(cpus_of(*p), (std::vector<unsigned>{16, 18, 20, 22}));
  for (const auto& l : p->loops) {
    EXPECT_EQ(l.package, 1u);
    EXPECT_EQ(l.numa_node, 1);
    EXPECT_EQ(l.nic_queue, static_cast<int>(l.loop)) << "one NIC queue per loop";
  }
  // More loops than package 1 has cores: the rest come from package 0.
  r.loops = 10;
  auto q = make_plan(t, r);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->loops[7].package, 1u);
  EXPECT_EQ(q->loops[8].package, 0u);
  EXPECT_NE(q->describe().find("NIC ens1f0"), std::string::npos);
}

TEST(placement, unknown_nic_is_an_error_naming_the_flag) {
  topology t = load_nic_xml();
  placement_request r;
  r.nic = "eth7";
  auto p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("--nic=eth7: unknown NIC"), std::string::npos) << p.err().message;
  EXPECT_NE(p.err().message.find("ens1f0"), std::string::npos) << "lists the NICs there are";
}

TEST(placement, cpuset_restricts_the_cores) {
  topology t = load_synthetic(two_sockets);
  placement_request r;
  r.cpuset = cpu_list{0, 1, 2, 3, 8};
  auto p = make_plan(t, r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(cpus_of(*p), (std::vector<unsigned>{0, 2, 8})) << "cores 0, 1 and 4, each on its first listed thread";
  r.cpuset = cpu_list{3};
  p = make_plan(t, r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(cpus_of(*p), (std::vector<unsigned>{3})) << "a sibling thread is fine when it is all that is listed";
}

TEST(placement, cpuset_outside_the_machine_is_an_error) {
  topology t = load_synthetic(two_sockets);
  placement_request r;
  r.cpuset = cpu_list{0, 40};
  auto p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("CPU 40 does not exist"), std::string::npos) << p.err().message;
}

TEST(placement, cpuset_outside_the_allowed_cpus_is_an_error) {
  // On this machine, restrict the process to CPU 0 and ask for CPU 1.
  auto t = topology::discover();
  ASSERT_TRUE(t.ok());
  if (!t->is_this_system() || t->pus().size() < 2) GTEST_SKIP() << "needs a real machine with 2 CPUs";
  cpu_set_t saved, only0;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  CPU_ZERO(&only0);
  CPU_SET(0, &only0);
  ASSERT_EQ(sched_setaffinity(0, sizeof only0, &only0), 0);
  placement_request r;
  r.cpuset = cpu_list{t->pus()[1].os_index};
  auto p = make_plan(*t, r);
  auto d = make_plan(*t, {});
  sched_setaffinity(0, sizeof saved, &saved);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("is not allowed for this process (allowed: 0)"), std::string::npos) << p.err().message;
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->loops.size(), 1u) << "the default follows the allowed CPUs (taskset)";
}

TEST(placement, more_loops_than_cores_needs_oversubscribe) {
  topology t = load_synthetic(two_sockets);
  placement_request r;
  r.loops = 20;
  auto p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("--cores=20: only 16 cores are available"), std::string::npos) << p.err().message;
  EXPECT_NE(p.err().message.find("--oversubscribe"), std::string::npos);
  r.oversubscribe = true;
  p = make_plan(t, r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->loops.size(), 20u);
  EXPECT_TRUE(p->shares_cores);
  EXPECT_EQ(p->loops[16].cpu, p->loops[0].cpu) << "extra loops wrap around the cores";
}

TEST(placement, numa_node_restricts_and_unknown_node_fails) {
  topology t = load_synthetic(two_sockets);
  placement_request r;
  r.numa_node = 1;
  auto p = make_plan(t, r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->loops.size(), 8u);
  for (const auto& l : p->loops) EXPECT_GE(l.cpu, 16u);
  r.numa_node = 5;
  p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("--numa-node=5: no such NUMA node"), std::string::npos);
}

TEST(placement, single_core_machine) {
  topology t = load_synthetic("core:1 pu:1");
  auto p = make_plan(t, {});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->loops.size(), 1u);
  EXPECT_EQ(p->loops[0].cpu, 0u);
  placement_request r;
  r.loops = 2;
  p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("only 1 core is available"), std::string::npos) << p.err().message;
}

TEST(placement, more_loops_than_nic_queues_fails) {
  topology t = load_nic_xml();
  placement_request r;
  r.nic = "ens1f0";
  r.nic_bound = true;
  r.nic_queues = 2;
  r.loops = 4;
  auto p = make_plan(t, r);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err().message.find("only 2 queue pairs"), std::string::npos);
}

TEST(binding, synthetic_topology_says_binding_is_not_real) {
  topology t = load_synthetic(two_sockets);
  auto r = bind_this_thread(t, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find("not this machine"), std::string::npos);
  numa_memory m(t, 1);
  EXPECT_FALSE(m.bound());
  EXPECT_FALSE(m.why_not().empty());
}

TEST(binding, real_machine_pins_and_verifies) {
  auto t = topology::discover();
  ASSERT_TRUE(t.ok());
  if (!t->is_this_system()) GTEST_SKIP() << "topology is not this machine's";
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  unsigned cpu = t->allowed_cpus().back();
  auto r = bind_this_thread(*t, cpu);
  int now = sched_getcpu();
  sched_setaffinity(0, sizeof saved, &saved);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(now, static_cast<int>(cpu));
  // Pool memory from the loop's NUMA node (or ordinary memory, saying why).
  numa_memory m(*t, t->cores()[0].numa_node);
  memory_allocator a = m.allocator();
  void* p = a.allocate(1 << 20, a.ctx);
  ASSERT_NE(p, nullptr);
  static_cast<char*>(p)[0] = 1;
  static_cast<char*>(p)[(1 << 20) - 1] = 1;
  a.deallocate(p, 1 << 20, a.ctx);
  if (!m.bound()) {
    EXPECT_FALSE(m.why_not().empty());
  }
}

}  // namespace
}  // namespace sluice::platform
