#include "fault_guard.hpp"

#include <signal.h>

#include <atomic>
#include <mutex>

namespace sluice::dpdk {

namespace {

// The guarded burst this thread is in, if any. Touched by arm() on the
// thread before any fault, so the handler never makes its TLS block.
thread_local sigjmp_buf* armed_env = nullptr;

struct sigaction previous_segv {};
struct sigaction previous_bus {};

extern "C" void on_fault(int sig, siginfo_t* info, void* ctx) {
  if (sigjmp_buf* env = armed_env) {
    armed_env = nullptr;
    siglongjmp(*env, 1);
  }
  const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, ctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Back to the default action: returning re-runs the faulting
  // instruction, which now ends the process as it would have.
  ::signal(sig, SIG_DFL);
}

}  // namespace

void fault_guard::install() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &on_fault;
    sigemptyset(&sa.sa_mask);
    // SA_NODEFER: the jump back leaves the handler without restoring the
    // mask, so SIGSEGV must not have been blocked on the way in.
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    ::sigaction(SIGSEGV, &sa, &previous_segv);
    ::sigaction(SIGBUS, &sa, &previous_bus);
  });
}

void fault_guard::arm(sigjmp_buf* env) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  armed_env = env;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

void fault_guard::disarm() noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  armed_env = nullptr;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

}  // namespace sluice::dpdk
