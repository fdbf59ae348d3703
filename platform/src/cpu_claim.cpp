#include "sluice/platform/cpu_claim.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice::platform {

namespace {

std::string claim_path(const std::string& dir, unsigned cpu) { return dir + "/cpu" + std::to_string(cpu) + ".lock"; }

// "PID PROGRAM\n" as the holder wrote it.
claim_holder read_holder(int fd, unsigned cpu) {
  claim_holder h;
  h.cpu = cpu;
  char buf[256];
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return h;
  buf[n] = 0;
  char* end = nullptr;
  h.pid = std::strtol(buf, &end, 10);
  if (end != nullptr && *end == ' ') {
    h.program.assign(end + 1);
    while (!h.program.empty() && (h.program.back() == '\n' || h.program.back() == ' ')) h.program.pop_back();
  }
  return h;
}

std::string holders_text(const std::vector<claim_holder>& hs) {
  std::string out;
  for (const auto& h : hs) out += (out.empty() ? "" : ", ") + h.to_string();
  return out;
}

// This process's short name, as ps shows it.
std::string program_name() {
#if defined(__GLIBC__)
  return program_invocation_short_name;
#else
  const char* n = ::getprogname();
  return n != nullptr ? n : "";
#endif
}

bool contains(const cpu_list& l, unsigned cpu) { return std::find(l.begin(), l.end(), cpu) != l.end(); }

cpu_list plan_cpus(const placement_plan& p) {
  cpu_list out;
  for (const auto& l : p.loops)
    if (!contains(out, l.cpu)) out.push_back(l.cpu);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string claim_dir() {
  const char* d = std::getenv("SLUICE_CLAIM_DIR");
  return d != nullptr && *d != 0 ? std::string(d) : std::string("/run/sluice");
}

std::string claim_holder::to_string() const {
  std::string out = "CPU " + std::to_string(cpu) + " (";
  out += pid > 0 ? "pid " + std::to_string(pid) : std::string("pid unknown");
  if (pid > 0 && pid == static_cast<long>(::getpid())) out += ", this process";
  if (!program.empty()) out += ", " + program;
  return out + ")";
}

cpu_claims::cpu_claims(cpu_claims&& o) noexcept : dir_(std::move(o.dir_)), held_(std::move(o.held_)) { o.held_.clear(); }

cpu_claims& cpu_claims::operator=(cpu_claims&& o) noexcept {
  if (this != &o) {
    keep_only({});
    dir_ = std::move(o.dir_);
    held_ = std::move(o.held_);
    o.held_.clear();
  }
  return *this;
}

cpu_claims::~cpu_claims() { keep_only({}); }

result<cpu_claims> cpu_claims::in(std::string dir) {
  if (::mkdir(dir.c_str(), 01777) == 0) {
    ::chmod(dir.c_str(), 01777);  // the umask took bits away
  } else if (errno != EEXIST) {
    return error{"cannot create " + dir + ": " + std::strerror(errno), {}};
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return error{"cannot write to " + dir + ": " + std::strerror(errno), {}};
  cpu_claims c;
  c.dir_ = std::move(dir);
  return c;
}

result<std::optional<claim_holder>> cpu_claims::take(unsigned cpu) {
  for (const auto& h : held_)
    if (h.cpu == cpu) return std::optional<claim_holder>{};
  const std::string path = claim_path(dir_, cpu);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return error{"cannot open " + path + ": " + std::strerror(errno), {}};
  ::fchmod(fd, 0666);  // whoever comes next may be another user (best effort)
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e != EWOULDBLOCK) {
      ::close(fd);
      return error{"cannot lock " + path + ": " + std::strerror(e), {}};
    }
    claim_holder h = read_holder(fd, cpu);
    ::close(fd);
    return std::optional<claim_holder>{h};
  }
  const std::string text = std::to_string(::getpid()) + " " + program_name() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    // The claim holds (the lock is what counts); only the name is missing.
  }
  held_.push_back({cpu, fd});
  return std::optional<claim_holder>{};
}

void cpu_claims::keep_only(const cpu_list& keep) noexcept {
  auto it = std::remove_if(held_.begin(), held_.end(), [&](const held& h) {
    if (contains(keep, h.cpu)) return false;
    ::close(h.fd);  // drops the lock; the file stays for the next owner
    return true;
  });
  held_.erase(it, held_.end());
}

cpu_list cpu_claims::cpus() const {
  cpu_list out;
  for (const auto& h : held_) out.push_back(h.cpu);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<claim_holder> claims_held(const std::string& dir, const cpu_list& cpus) {
  std::vector<claim_holder> out;
  for (unsigned cpu : cpus) {
    const int fd = ::open(claim_path(dir, cpu).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // A shared lock conflicts only with a holder's exclusive one; it is
    // dropped at once (a claimer that races with it retries, see take()).
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) out.push_back(read_holder(fd, cpu));
    }
    ::close(fd);
  }
  return out;
}

result<claimed_plan> plan_with_claims(const topology& topo, const placement_request& req, bool take) {
  auto first = make_plan(topo, req);
  if (!first) return first.err();
  claimed_plan out;
  out.plan = std::move(*first);
  if (req.share_cores) {
    out.summary = "not claimed (--share-cores): other busy-polling processes may share these CPUs";
    return out;
  }
  if (!out.plan.binding_real) {
    out.summary = "not claimed: the topology is not this machine's";
    return out;
  }
  const std::string dir = claim_dir();
  auto claims = cpu_claims::in(dir);
  if (!claims) {
    out.summary = "off: " + claims.err().message +
                  " (set SLUICE_CLAIM_DIR to a directory every sluice process can write); busy-polling processes "
                  "are not kept apart";
    return out;
  }
  out.claims = std::move(*claims);
  const bool user_cpus = req.cpuset.has_value();
  placement_request r = req;
  cpu_list excluded;  // CPUs others hold
  // Each round either succeeds or excludes one more CPU, so it ends.
  for (;;) {
    std::vector<claim_holder> others;
    const cpu_list want = plan_cpus(out.plan);
    if (take) {
      // A --print-plan that looks at a file this instant makes take() see a
      // lock without a pid; a few tries tell that from a real claim.
      for (unsigned cpu : want) {
        std::optional<claim_holder> h;
        for (int attempt = 0; attempt < 3; ++attempt) {
          auto t = out.claims.take(cpu);
          if (!t) return t.err();
          h = *t;
          if (!h || h->pid != 0) break;
          ::usleep(1000);  // a look lasts microseconds; no event says when it ends
        }
        if (h) others.push_back(*h);
      }
    } else {
      others = claims_held(dir, want);
    }
    if (others.empty()) break;
    out.avoided.insert(out.avoided.end(), others.begin(), others.end());
    if (user_cpus) {
      return error{"--cpuset=" + format_cpu_list(*req.cpuset) + ": " + holders_text(others) +
                       " is claimed by another busy-polling sluice process; two busy-polling loops on one core take "
                       "turns at the scheduler's tick (milliseconds each). Pick other CPUs, stop that process, or "
                       "add --share-cores",
                   {}};
    }
    for (const auto& h : others) excluded.push_back(h.cpu);
    std::sort(excluded.begin(), excluded.end());
    cpu_list free;
    for (unsigned c : topo.allowed_cpus())
      if (!std::binary_search(excluded.begin(), excluded.end(), c)) free.push_back(c);
    if (free.empty()) {
      return error{"every CPU allowed here is claimed by another busy-polling sluice process: " +
                       holders_text(out.avoided) + ". Stop one, or add --share-cores to run on them anyway",
                   {}};
    }
    r.cpuset = free;
    auto again = make_plan(topo, r);
    if (!again) {
      return error{again.err().message + "; CPUs claimed by other busy-polling sluice processes are left out: " +
                       holders_text(out.avoided) + " (add --share-cores to use them anyway)",
                   {}};
    }
    out.plan = std::move(*again);
    out.claims.keep_only(plan_cpus(out.plan));
  }
  out.claims.keep_only(plan_cpus(out.plan));
  out.summary = std::string(take ? "claimed" : "free to claim") + " in " + dir + ": CPU " +
                format_cpu_list(plan_cpus(out.plan)) + " (flock, released when the process ends)";
  if (!out.avoided.empty()) out.summary += "; left out, claimed by others: " + holders_text(out.avoided);
  return out;
}

}  // namespace sluice::platform
