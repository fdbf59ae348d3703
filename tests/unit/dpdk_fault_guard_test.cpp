// The DPDK transport's fault guard (transport/dpdk/src/fault_guard.hpp): a
// fault inside a guarded call ends that call, not the process, as when the
// memif PMD unmaps its ring under a running burst; and a fault outside any
// guarded call still ends the process.

#include "fault_guard.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

namespace sluice::dpdk {
namespace {

// A page that is mapped, then taken away: what the burst sees.
volatile char* unmapped_page() {
  const long page = ::sysconf(_SC_PAGESIZE);
  void* p = ::mmap(nullptr, static_cast<std::size_t>(page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(p, MAP_FAILED);
  static_cast<char*>(p)[0] = 1;
  ::munmap(p, static_cast<std::size_t>(page));
  return static_cast<volatile char*>(p);
}

// Guarded like dpdk_queue's bursts: returns -1 when the guard ended it.
[[gnu::noinline]] int guarded_read(volatile char* at) {
  sigjmp_buf env;
  if (sigsetjmp(env, 0) != 0) return -1;
  fault_guard::arm(&env);
  const int v = at[0];
  fault_guard::disarm();
  return v;
}

TEST(dpdk_fault_guard, a_fault_inside_a_guarded_burst_ends_the_burst_not_the_process) {
  fault_guard::install();
  volatile char* gone = unmapped_page();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(guarded_read(gone), -1) << "try " << i;  // and again: the handler stays
  char ok = 7;
  EXPECT_EQ(guarded_read(&ok), 7);
}

TEST(dpdk_fault_guard, a_fault_outside_a_guarded_burst_still_kills) {
  fault_guard::install();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    volatile char* gone = unmapped_page();
    (void)gone[0];
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // SIGSEGV by the default action; under a sanitizer, its report and abort.
  EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
}

}  // namespace
}  // namespace sluice::dpdk
