// CPU claims (platform/cpu_claim.hpp): two holders of one CPU conflict and
// the second learns the first's pid; kill -9 of the holder frees the claim;
// plans for busy-polling loops move off claimed CPUs, refuse a claimed
// --cpuset, ignore claims with --share-cores, and say when claims are off.
// Claims live in a directory of this test's own (SLUICE_CLAIM_DIR).

#include "sluice/platform/cpu_claim.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "sluice/platform/topology.hpp"

namespace sluice::platform {
namespace {

class cpu_claim_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice_claims_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("SLUICE_CLAIM_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("SLUICE_CLAIM_DIR");
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(cpu_claim_test, a_second_holder_is_refused_and_told_the_first_ones_pid) {
  auto a = cpu_claims::in(claim_dir());
  auto b = cpu_claims::in(claim_dir());
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = a->take(3);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  EXPECT_EQ(a->cpus(), cpu_list{3});
  auto second = b->take(3);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->cpu, 3u);
  EXPECT_EQ((*second)->pid, static_cast<long>(::getpid()));
  EXPECT_EQ((*second)->program, "test_cpu_claim");
  EXPECT_TRUE(b->cpus().empty());
  auto seen = claims_held(claim_dir(), {2, 3});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].cpu, 3u);
  // Released: the next one gets it.
  a->keep_only({});
  auto third = b->take(3);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->has_value());
  EXPECT_EQ(claims_held(claim_dir(), {3}).size(), 1u);  // b holds it now
}

TEST_F(cpu_claim_test, kill_9_of_the_holder_frees_its_claim) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto c = cpu_claims::in(claim_dir());
    const bool ok = c.ok() && c->take(7).ok() && c->cpus() == cpu_list{7};
    char b = ok ? 'y' : 'n';
    (void)!::write(ready[1], &b, 1);
    for (;;) ::pause();  // until killed
  }
  ::close(ready[1]);
  char b = 0;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(b, 'y');
  auto mine = cpu_claims::in(claim_dir());
  ASSERT_TRUE(mine.ok());
  auto held = mine->take(7);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held->has_value());
  EXPECT_EQ((*held)->pid, static_cast<long>(child));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto after = mine->take(7);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value()) << "the kernel dropped the dead holder's lock";
  EXPECT_EQ(mine->cpus(), cpu_list{7});
}

TEST_F(cpu_claim_test, busy_polling_plans_keep_off_claimed_cpus) {
  auto topo = topology::discover();
  ASSERT_TRUE(topo.ok());
  const cpu_list allowed = topo->allowed_cpus();
  if (!topo->is_this_system() || allowed.size() < 2) GTEST_SKIP() << "needs this machine's topology with 2+ CPUs";
  // Another holder (an open file of its own) on the first allowed CPU.
  auto other = cpu_claims::in(claim_dir());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->take(allowed[0]).ok());
  placement_request req;
  req.loops = 1;
  {
    // Looking (--print-plan) keeps off the claimed CPU and takes nothing.
    auto look = plan_with_claims(*topo, req, false);
    ASSERT_TRUE(look.ok()) << look.err().message;
    EXPECT_TRUE(look->claims.cpus().empty());
    EXPECT_NE(look->plan.loops[0].cpu, allowed[0]);
  }
  {
    auto p = plan_with_claims(*topo, req, true);
    ASSERT_TRUE(p.ok()) << p.err().message;
    ASSERT_EQ(p->plan.loops.size(), 1u);
    EXPECT_NE(p->plan.loops[0].cpu, allowed[0]);
    EXPECT_EQ(p->claims.cpus(), cpu_list{p->plan.loops[0].cpu});
    ASSERT_EQ(p->avoided.size(), 1u);
    EXPECT_EQ(p->avoided[0].cpu, allowed[0]);
    EXPECT_NE(p->summary.find("left out, claimed by others: CPU " + std::to_string(allowed[0])), std::string::npos)
        << p->summary;
  }
  // The plan above was destroyed: its claim is gone.
  EXPECT_EQ(claims_held(claim_dir(), {allowed[1]}).size(), 0u);
  // Asked for by --cpuset: refused, naming the holder's pid.
  req.cpuset = cpu_list{allowed[0]};
  auto refused = plan_with_claims(*topo, req, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.err().message.find("pid " + std::to_string(::getpid())), std::string::npos)
      << refused.err().message;
  EXPECT_NE(refused.err().message.find("--share-cores"), std::string::npos);
  // --share-cores: the claim is neither respected nor taken.
  req.share_cores = true;
  auto shared = plan_with_claims(*topo, req, true);
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(shared->plan.loops[0].cpu, allowed[0]);
  EXPECT_TRUE(shared->claims.cpus().empty());
  // Every CPU claimed: an error naming them all.
  req = {};
  for (unsigned c : allowed) ASSERT_TRUE(other->take(c).ok());
  auto none = plan_with_claims(*topo, req, true);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.err().message.find("every CPU allowed here is claimed"), std::string::npos) << none.err().message;
}

TEST_F(cpu_claim_test, an_unusable_directory_turns_claims_off_with_a_reason) {
  ::setenv("SLUICE_CLAIM_DIR", "/dev/null/claims", 1);
  EXPECT_FALSE(cpu_claims::in(claim_dir()).ok());
  auto topo = topology::discover();
  ASSERT_TRUE(topo.ok());
  placement_request req;
  req.loops = 1;
  auto p = plan_with_claims(*topo, req, true);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->claims.cpus().empty());
  if (topo->is_this_system()) {
    EXPECT_EQ(p->summary.rfind("off: cannot create /dev/null/claims", 0), 0u) << p->summary;
  }
}

}  // namespace
}  // namespace sluice::platform
