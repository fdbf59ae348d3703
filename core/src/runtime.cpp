#include "sluice/core/runtime.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

namespace sluice {

namespace {

// Self-pipe for SIGINT/SIGTERM: the handler only writes a byte.
int signal_pipe_write = -1;

extern "C" void on_stop_signal(int) {
  int saved = errno;
  char b = 's';
  ssize_t r = ::write(signal_pipe_write, &b, 1);
  (void)r;
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

runtime::runtime(runtime_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.loops == 0) cfg_.loops = 1;
}

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
  for (std::size_t i = 0; i < listens_.size(); ++i) {
    listen_spec& spec = listens_[i];
    endpoint at = index == 0 ? spec.at : bound_[i];
    listen_options opts;
    opts.reuse_port = true;
    opts.exclusive = index == 0;  // the others join loop 0's port on purpose
    auto h = spec.make(l);
    if (!h) return error{"no handler for " + at.to_string(), {}};
    auto lr = l.listen(at, *h, opts);
    if (!lr) return lr.err();
    handlers_[index].push_back(std::move(h));
    if (index == 0) bound_.push_back((*lr)->local());
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

void runtime::thread_main(unsigned index) {
  std::unique_ptr<loop_base> l;
  std::string err;
  try {
    l = entry_->make_loop(cfg_.loop, static_cast<std::uint16_t>(index));
  } catch (const std::exception& e) {
    err = std::string("cannot start loop ") + std::to_string(index) + ": " + e.what();
  }
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
    cv_.wait(lock, [&] { return started_ == cfg_.loops; });
  }
  if (loops_[index]) {
    if (failed_) loops_[index]->stop(duration::zero());
    loops_[index]->run();
  }
  std::lock_guard lock(mu_);
  if (++finished_ == cfg_.loops && done_fd_ >= 0) {
    char b = 'd';
    ssize_t r = ::write(done_fd_, &b, 1);
    (void)r;
  }
  cv_.notify_all();
}

result<void> runtime::start() {
  auto sel = select_transport(cfg_.transport, cfg_.transport_opts);
  if (!sel) return sel.err();
  entry_ = *sel;
  if (auto r = entry_->init_process(cfg_.transport_opts, cfg_.loops); !r) return r;
  loops_.resize(cfg_.loops);
  handlers_.resize(cfg_.loops);
  datagram_handlers_.resize(cfg_.loops);
  for (unsigned i = 0; i < cfg_.loops; ++i) threads_.emplace_back(&runtime::thread_main, this, i);
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return started_ == cfg_.loops; });
  if (failed_) {
    lock.unlock();
    wait();
    return error{error_, {}};
  }
  return {};
}

void runtime::wait() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  // Loops die before their handlers (a loop's destructor may still call on_close).
  for (auto& l : loops_) l.reset();
  handlers_.clear();
  datagram_handlers_.clear();
}

bool runtime::wait_for(duration d) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, d, [&] { return finished_ == cfg_.loops; });
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
  if (auto r = start(); !r) {
    std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(program.size()), program.data(),
                 r.err().message.c_str());
    restore();
    return 2;
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
