#pragma once
// A guard around one PMD burst call, for PMDs whose control thread can take
// the burst's memory away under it.
//
// net_memif (DPDK 22.11) handles its peer's disconnect on the EAL interrupt
// thread: memif_disconnect clears the "connected" flag, then unmaps the
// shared regions and frees their descriptors, with nothing that waits for a
// burst already past that flag on a loop thread. When the peer exits (or is
// killed) under load, the survivor's rx or tx burst then reads or writes
// unmapped memory and the process dies of SIGSEGV (seen: eth_memif_tx
// reading ring->desc[].length of an unmapped ring). The PMD offers no hook
// between the flag and the unmap, so the transport cannot wait there.
//
// The guard makes such a fault end the burst instead of the process: a
// SIGSEGV/SIGBUS handler that, only while this thread is inside a guarded
// burst, jumps back to the guard (siglongjmp; no signal mask is saved or
// restored per burst, so a burst costs a few register stores). Outside a
// guarded burst the handler passes the signal to whatever handler was there
// before (the default action, or a sanitizer's), so every other fault still
// crashes as it should. What a jumped-out burst leaves behind is bounded and
// counted (dpdk_queue: memif_faults): an rx burst's freshly allocated mbufs
// and a tx burst's frames, treated as sent (the PMD may already have freed
// them: reporting them unsent could free them twice; TCP retransmits what
// the dead link lost).
//
// Per thread; install() once per process before the first guarded burst.

#include <csetjmp>

namespace sluice::dpdk {

class fault_guard {
 public:
  // Installs the SIGSEGV and SIGBUS handler once per process (any thread).
  static void install() noexcept;
  // The calling thread's guarded burst starts (env was just filled by
  // sigsetjmp(env, 0)) or ends.
  static void arm(sigjmp_buf* env) noexcept;
  static void disarm() noexcept;
};

}  // namespace sluice::dpdk
