#pragma once
// CPU claims: how two sluice processes that busy-poll avoid sharing a core.
//
// A loop that busy-polls (DPDK's adaptive polling, --busy-poll) keeps its core
// at 100% whether or not it has work. Two such loops on one core take turns
// at the scheduler's tick: each waits milliseconds for the other, and nothing
// says why. So a busy-polling process claims each CPU it runs a loop on, and
// the next one sees the claim.
//
// A claim is a file CLAIM_DIR/cpuN.lock held with flock(LOCK_EX). The kernel
// drops the lock when the process ends, however it ends (kill -9 included),
// so a claim never outlives its owner; a stale file is only a name. The file
// holds "PID PROGRAM" of the owner, to name it in errors.
//
// CLAIM_DIR is $SLUICE_CLAIM_DIR, else /run/sluice (made mode 1777 so that
// several users' processes see each other's claims). Where it cannot be made,
// claims are off and the plan says so: that is a note, not an error.
//
// Owner: whoever holds a cpu_claims; any thread, no shared state.

#include <optional>
#include <string>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/platform/cpu_list.hpp"
#include "sluice/platform/placement.hpp"

namespace sluice::platform {

// The claim directory: $SLUICE_CLAIM_DIR if set and not empty, else /run/sluice.
[[nodiscard]] std::string claim_dir();

// Who holds the claim on `cpu` (another process, or this one through another
// open file): its pid and program name as it wrote them.
struct claim_holder {
  unsigned cpu = 0;      // the CPU claimed
  long pid = 0;          // 0: unknown (the holder had not written it yet)
  std::string program;   // may be empty
  // "CPU 3 (pid 1234, sluice-echo)".
  [[nodiscard]] std::string to_string() const;
};

// Claims this process holds; released (the locks dropped, the files kept)
// when destroyed. Move-only.
class cpu_claims {
 public:
  cpu_claims() = default;
  // Takes o's claims (o holds none afterwards).
  cpu_claims(cpu_claims&& o) noexcept;
  // Drops this object's claims, then takes o's.
  cpu_claims& operator=(cpu_claims&& o) noexcept;
  cpu_claims(const cpu_claims&) = delete;
  cpu_claims& operator=(const cpu_claims&) = delete;
  ~cpu_claims();

  // Try to claim `cpu` (no-op if this object holds it already), writing this
  // process's pid and name into the file. Returns the holder when another
  // open file holds it; an error when the claim file cannot be opened.
  result<std::optional<claim_holder>> take(unsigned cpu);
  // Drop every claim not in `keep`.
  void keep_only(const cpu_list& keep) noexcept;
  // The CPUs held, sorted.
  [[nodiscard]] cpu_list cpus() const;
  // The claim directory these claims live in.
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  // An empty set of claims in `dir` (made if missing); an error saying why
  // the directory cannot be used.
  static result<cpu_claims> in(std::string dir);

 private:
  struct held {
    unsigned cpu;
    int fd;
  };
  std::string dir_;
  std::vector<held> held_;
};

// Who holds claims among `cpus`, without taking any (--print-plan). CPUs
// whose file does not exist or is not locked are free.
[[nodiscard]] std::vector<claim_holder> claims_held(const std::string& dir, const cpu_list& cpus);

// What plan_with_claims did, for people.
struct claimed_plan {
  placement_plan plan;                // make_plan's, or made again on the free CPUs
  cpu_claims claims;                  // held (take = true) on every loop's CPU
  std::vector<claim_holder> avoided;  // others' claims that moved loops off a CPU
  std::string summary;                // one line for --print-plan and start-up
};

// The plan for `req` whose loops run on CPUs no other busy-polling process
// claims. With take, the claims are held in the result (until it is
// destroyed); without, they are only looked at (--print-plan).
//
// - Without --cpuset (and share_cores off): CPUs claimed by others are left
//   out and the plan is made on the rest; if too few remain, an error names
//   the holders.
// - With --cpuset, a claimed CPU in the plan is an error naming its holder.
// - share_cores: claims are neither taken nor respected (--share-cores).
// - Claims are only for a topology that is this machine's and real pinning;
//   otherwise the plan is make_plan's with a note.
// If the claim directory cannot be used, the plan is make_plan's and the
// summary says that claims are off and why.
[[nodiscard]] result<claimed_plan> plan_with_claims(const topology& topo, const placement_request& req, bool take);

}  // namespace sluice::platform
