#include "sluice/runtime/runtime.hpp"

#include "sluice/platform/socket_options.hpp"
#include "sluice/transport/registry.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace sluice {

result<balance_policy> parse_balance(std::string_view name) {
  if (name == "reuseport") return balance_policy::reuse_port;
  if (name == "round-robin") return balance_policy::round_robin;
  if (name == "least-conn") return balance_policy::least_conn;
  if (name == "source-hash") return balance_policy::source_hash;
  return error{"unknown balance policy '" + std::string(name) + "' (reuseport, round-robin, least-conn, source-hash)", {}};
}

balance_policy default_balance() noexcept {
  return platform::kernel_balances_listeners() ? balance_policy::reuse_port : balance_policy::round_robin;
}

std::string_view to_string(balance_policy p) noexcept {
  switch (p) {
    case balance_policy::reuse_port: return "reuseport";
    case balance_policy::round_robin: return "round-robin";
    case balance_policy::least_conn: return "least-conn";
    case balance_policy::source_hash: return "source-hash";
  }
  return "?";
}

// One per listen() call under a single-acceptor policy. Runs on loop 0 (the
// acceptor) only, except `adopted`, which the receiving loops count.
struct runtime::balancer {
  runtime* rt;
  unsigned spec;
  unsigned next = 0;
  std::vector<std::uint64_t> handed;
  std::unique_ptr<std::atomic<std::uint64_t>[]> adopted;
};

namespace {

// SIGINT/SIGTERM. With loop threads, the handler writes a byte to a
// self-pipe that run()'s thread waits on. With the only loop on run()'s own
// thread, nobody waits there: the handler asks that loop to stop instead.
int signal_pipe_write = -1;
std::atomic<loop_base*> signal_loop{nullptr};
duration signal_grace{};  // written before signal_loop, read after it
static_assert(std::atomic<loop_base*>::is_always_lock_free);

extern "C" void on_stop_signal(int) {
  int saved = errno;
  if (loop_base* l = signal_loop.load(std::memory_order_acquire)) {
    l->request_stop_from_signal(signal_grace);
  } else {
    char b = 's';
    ssize_t r = ::write(signal_pipe_write, &b, 1);
    (void)r;
  }
  errno = saved;
}

bool make_pipe(int fds[2]) {
  if (::pipe(fds) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    ::fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    ::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK);
  }
  return true;
}

}  // namespace

runtime::runtime(runtime_config cfg) : cfg_(std::move(cfg)) {}

runtime::~runtime() {
  if (!threads_.empty()) {
    stop(duration::zero());
    wait();
  }
  if (done_fd_ >= 0) ::close(done_fd_);
}

void runtime::listen(const endpoint& at, handler_factory make_handler) {
  listens_.push_back({at, std::move(make_handler)});
}

void runtime::udp_bind(const endpoint& at, datagram_factory make_handler) {
  udps_.push_back({at, std::move(make_handler)});
}

void runtime::on_start(start_hook hook) { hooks_.push_back(std::move(hook)); }

std::string_view runtime::transport_name() const noexcept { return entry_ != nullptr ? entry_->name : "none"; }

result<void> runtime::start_loop(loop_base& l, unsigned index) {
  const bool single_acceptor = cfg_.balance != balance_policy::reuse_port;
  for (std::size_t i = 0; i < listens_.size(); ++i) {
    listen_spec& spec = listens_[i];
    auto h = spec.make(l);
    if (!h) return error{"no handler for " + spec.at.to_string(), {}};
    handler& hr = *h;
    handlers_[index].push_back(std::move(h));
    if (single_acceptor && index != 0) continue;  // loop 0 accepts for everyone
    endpoint at = index == 0 ? spec.at : bound_[i];
    listen_options opts;
    opts.reuse_port = !single_acceptor;
    opts.exclusive = index == 0;  // the others join loop 0's port on purpose
    auto lr = l.listen(at, hr, opts);
    if (!lr) return lr.err();
    if (index == 0) bound_.push_back((*lr)->local());
    if (single_acceptor && loop_count() > 1) {
      auto b = std::make_unique<balancer>();
      b->rt = this;
      b->spec = static_cast<unsigned>(i);
      b->handed.assign(loop_count(), 0);
      b->adopted.reset(new std::atomic<std::uint64_t>[loop_count()]);
      for (unsigned t = 0; t < loop_count(); ++t) b->adopted[t].store(0);
      (*lr)->set_distributor(&runtime::distribute, b.get());
      balancers_.push_back(std::move(b));
    }
  }
  for (std::size_t i = 0; i < udps_.size(); ++i) {
    udp_spec& spec = udps_[i];
    endpoint at = index == 0 ? spec.at : udp_bound_[i];
    auto h = spec.make(l);
    if (!h) return error{"no handler for UDP " + at.to_string(), {}};
    auto ur = l.udp_bind(at, *h);
    if (!ur) return ur.err();
    datagram_handlers_[index].push_back(std::move(h));
    if (index == 0) udp_bound_.push_back((*ur)->local());
  }
  for (auto& hook : hooks_) {
    auto r = hook(l);
    if (!r) return r;
  }
  return {};
}

bool runtime::distribute(void* ctx, int fd, const endpoint& peer) noexcept {
  auto* b = static_cast<balancer*>(ctx);
  runtime* rt = b->rt;
  const unsigned n = rt->loop_count();
  unsigned target = 0;
  switch (rt->cfg_.balance) {
    case balance_policy::round_robin:
      target = b->next;
      b->next = (b->next + 1) % n;
      break;
    case balance_policy::source_hash:
      target = static_cast<unsigned>(peer.address_hash() % n);
      break;
    case balance_policy::least_conn: {
      // Open connections, plus those handed over but not yet adopted.
      std::uint64_t best = UINT64_MAX;
      for (unsigned t = 0; t < n; ++t) {
        std::uint64_t load = rt->loops_[t]->stats().connections.get() + b->handed[t] -
                             b->adopted[t].load(std::memory_order_relaxed);
        if (load < best) {
          best = load;
          target = t;
        }
      }
      break;
    }
    case balance_policy::reuse_port:
      return false;
  }
  ++b->handed[target];
  if (target == 0) {
    b->adopted[0].fetch_add(1, std::memory_order_relaxed);
    return false;  // the acceptor serves it itself
  }
  loop_base& from = *rt->loops_[0];
  from.send_to(target, task([b, fd, peer](loop_base& there) {
    there.adopt(fd, peer, *b->rt->handlers_[there.id()][b->spec]);
    b->adopted[there.id()].fetch_add(1, std::memory_order_relaxed);
  }));
  return true;
}

void runtime::thread_main(unsigned index) {
  char name[16];
  std::snprintf(name, sizeof name, "sluice-loop-%u", index);
  pthread_setname_np(pthread_self(), name);
  prepare_loop(index);
  serve_loop(index);
}

void runtime::prepare_loop(unsigned index) {
  std::unique_ptr<loop_base> l;
  std::string err;
  const platform::loop_placement& where = plan_.loops[index];
  if (cfg_.pin && plan_.binding_real) {
    // The caller's thread is only lent to the loop: its binding comes back.
    if (on_caller_) caller_binding_ = std::make_unique<platform::thread_binding_keeper>(*topo_);
    if (auto r = platform::bind_this_thread(*topo_, where.cpu); !r) {
      err = "loop " + std::to_string(index) + ": " + r.err().message;
    } else {
      pinning_[index] = "pinned to CPU " + std::to_string(where.cpu);
    }
  } else {
    pinning_[index] = cfg_.pin ? "not pinned: the topology is not this machine's" : "not pinned (pinning off)";
  }
  loop_options opts = cfg_.loop;
  if (memory_[index]->bound()) opts.pool.allocator = memory_[index]->allocator();
  try {
    if (err.empty()) l = entry_->make_loop(opts, static_cast<std::uint16_t>(index));
  } catch (const std::exception& e) {
    err = std::string("cannot start loop ") + std::to_string(index) + ": " + e.what();
  }
  if (l) l->attach_mail(hub_.get());
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return turn_ == index || failed_; });
    loops_[index] = std::move(l);
    if (!failed_ && err.empty()) {
      lock.unlock();
      auto r = start_loop(*loops_[index], index);
      lock.lock();
      if (!r) err = r.err().message;
    }
    if (!err.empty() && !failed_) {
      failed_ = true;
      error_ = err;
    }
    ++turn_;
    ++started_;
    cv_.notify_all();
    // Serve only once every loop started: a failed start stops them all.
    cv_.wait(lock, [&] { return started_ == loop_count(); });
  }
}

void runtime::serve_loop(unsigned index) {
  if (loops_[index]) {
    if (failed_) loops_[index]->stop(duration::zero());
    loops_[index]->run();
  }
  std::lock_guard lock(mu_);
  if (++finished_ == loop_count() && done_fd_ >= 0) {
    char b = 'd';
    ssize_t r = ::write(done_fd_, &b, 1);
    (void)r;
  }
  cv_.notify_all();
  if (on_caller_) caller_binding_.reset();
}

result<void> runtime::start() { return start_loops(false); }

result<void> runtime::start_loops(bool on_caller) {
  auto sel = select_transport(cfg_.transport);
  if (!sel) return sel.err();
  entry_ = *sel;
  if (cfg_.topology) {
    topo_ = cfg_.topology;
  } else {
    auto t = platform::topology::discover();
    if (!t) return t.err();
    topo_ = std::make_shared<const platform::topology>(std::move(*t));
  }
  // Busy-polling loops claim their CPUs, so that two such processes do not
  // silently share a core (cpu_claim.hpp). Kernel transports that sleep in
  // the kernel when idle do not: sharing a core costs them only the work
  // they really do, and several servers on one small machine are normal.
  if (busy_polls(*entry_, cfg_.loop) && cfg_.pin) {
    auto cp = platform::plan_with_claims(*topo_, cfg_.placement, true);
    if (!cp) return cp.err();
    plan_ = std::move(cp->plan);
    claims_ = std::move(cp->claims);
    std::fprintf(stderr, "sluice: cores: %s\n", cp->summary.c_str());
  } else {
    auto plan = platform::make_plan(*topo_, cfg_.placement);
    if (!plan) return plan.err();
    plan_ = std::move(*plan);
  }
  const unsigned n = loop_count();
  if (auto r = entry_->init_process(plan_); !r) {
    finish_transport();  // undo what a failed start set up
    claims_.keep_only({});
    return r;
  }
  transport_started_ = true;
  hub_ = std::make_unique<mail_hub>(n);
  pinning_.assign(n, "");
  for (const auto& where : plan_.loops) memory_.push_back(std::make_unique<platform::numa_memory>(*topo_, where.memory_node));
  if (topo_->is_this_system() && !memory_.front()->bound()) {
    // Not an error (the pools work), but the plan's "memory on node N" is not
    // what happens: say so once.
    std::fprintf(stderr, "sluice: note: loop buffer pools use ordinary memory: %s\n", memory_.front()->why_not().c_str());
  }
  loops_.resize(n);
  handlers_.resize(n);
  datagram_handlers_.resize(n);
  on_caller_ = on_caller && n == 1 && entry_->runs_on_caller;
  if (on_caller_) {
    prepare_loop(0);
  } else {
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back(&runtime::thread_main, this, i);
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return started_ == n; });
  if (failed_) {
    lock.unlock();
    if (on_caller_) serve_loop(0);  // stops at once, closing what started
    wait();
    return error{error_, {}};
  }
  return {};
}

void runtime::wait() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (cfg_.print_metrics && !loops_.empty()) std::fputs(format_metrics(metrics()).c_str(), stderr);
  // Loops die before their handlers (a loop's destructor may still call
  // on_close) and before the memory their pools came from.
  for (auto& l : loops_) l.reset();
  handlers_.clear();
  datagram_handlers_.clear();
  balancers_.clear();
  // The device goes last: the loops held its queues and packet buffers.
  if (transport_started_) finish_transport();
  claims_.keep_only({});
}

void runtime::finish_transport() noexcept {
  transport_started_ = false;
  if (entry_ != nullptr && entry_->finish_process != nullptr) entry_->finish_process();
}

metric_list runtime::metrics() const {
  metric_list out;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    if (!loops_[i]) continue;
    const std::string prefix = "loop" + std::to_string(i) + ".";
    const loop_stats& st = loops_[i]->stats();
    const std::pair<const char*, const counter*> named[] = {
        {"iterations", &st.iterations},       {"events", &st.events},
        {"idle_ns", &st.idle_ns},             {"connections", &st.connections},
        {"accepted", &st.accepted},           {"bytes_read", &st.bytes_read},
        {"bytes_written", &st.bytes_written}, {"datagrams_in", &st.datagrams_in},
        {"datagrams_out", &st.datagrams_out}, {"datagrams_dropped", &st.datagrams_dropped},
    };
    for (const auto& [name, c] : named) out.push_back({prefix + name, c->get()});
    loops_[i]->transport_metrics(prefix, out);
  }
  if (entry_ != nullptr && entry_->process_metrics != nullptr && transport_started_) entry_->process_metrics(out);
  return out;
}

bool runtime::wait_for(duration d) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [&] { return finished_ == loop_count(); });
}

void runtime::stop(duration grace) {
  std::lock_guard lock(mu_);
  for (auto& l : loops_)
    if (l) l->request_stop(grace);
}

int runtime::run(std::string_view program) {
  int pipefd[2] = {-1, -1};
  if (!make_pipe(pipefd)) {
    std::fprintf(stderr, "%.*s: cannot create a pipe\n", static_cast<int>(program.size()), program.data());
    return 2;
  }
  done_fd_ = pipefd[1];
  struct sigaction old_int {}, old_term {};
  if (cfg_.handle_signals) {
    signal_pipe_write = pipefd[1];
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }
  auto restore = [&] {
    if (cfg_.handle_signals) {
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      signal_pipe_write = -1;
    }
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    done_fd_ = -1;
  };
  if (auto r = start_loops(true); !r) {
    std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(program.size()), program.data(),
                 r.err().message.c_str());
    restore();
    return 2;
  }
  if (on_caller_) {
    if (cfg_.handle_signals) {
      signal_grace = cfg_.shutdown_timeout;
      signal_loop.store(loops_[0].get(), std::memory_order_release);
      // A signal that came during start-up is in the pipe.
      char buf[16];
      for (ssize_t r; (r = ::read(pipefd[0], buf, sizeof buf)) > 0;) {
        if (std::memchr(buf, 's', static_cast<std::size_t>(r)) != nullptr) {
          loops_[0]->request_stop_from_signal(cfg_.shutdown_timeout);
        }
      }
    }
    serve_loop(0);
    signal_loop.store(nullptr, std::memory_order_release);
    wait();
    restore();
    return 0;
  }
  bool stopping = false;
  for (;;) {
    pollfd p{pipefd[0], POLLIN, 0};
    int n = ::poll(&p, 1, -1);
    if (n < 0 && errno == EINTR) continue;
    char buf[16];
    ssize_t r = ::read(pipefd[0], buf, sizeof buf);
    bool done = false;
    for (ssize_t i = 0; i < r; ++i) {
      if (buf[i] == 'd') done = true;
      if (buf[i] == 's' && !stopping) {
        stopping = true;
        stop(cfg_.shutdown_timeout);
      }
    }
    if (done) break;
  }
  wait();
  restore();
  return 0;
}

}  // namespace sluice
