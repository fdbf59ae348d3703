// The shard-per-core runtime over real sockets: pinned loops, each balance
// policy distributing as it claims, and SIGTERM with traffic in flight.

#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "net.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/runtime/runtime.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// Tells the client which loop took its connection (one byte), then echoes.
struct which_loop final : handler {
  std::mutex* mu;
  std::condition_variable* cv;
  int* closed;
  void on_open(connection& c) noexcept override {
    char id = static_cast<char>(c.loop().id());
    (void)c.write(std::string_view(&id, 1));
  }
  void on_data(connection& c) noexcept override { (void)c.send(std::move(c.input())); }
  void on_close(connection&, close_reason) noexcept override {
    std::lock_guard l(*mu);
    ++*closed;
    cv->notify_all();
  }
};

struct balanced_server {
  std::mutex mu;
  std::condition_variable cv;
  int closed = 0;
  runtime rt;
  endpoint at;
  balanced_server(balance_policy p, unsigned loops) : rt(config(p, loops)) {
    rt.listen(endpoint::ipv4(0, 0), [this](loop_base&) {
      auto h = std::make_unique<which_loop>();
      h->mu = &mu;
      h->cv = &cv;
      h->closed = &closed;
      return h;
    });
    auto r = rt.start();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    at = endpoint::loopback_v4(rt.bound().front().port());
  }
  ~balanced_server() {
    rt.stop(1s);
    rt.wait();
  }
  static runtime_config config(balance_policy p, unsigned loops) {
    runtime_config c;
    c.transport = "epoll";
    c.handle_signals = false;
    c.balance = p;
    c.placement.loops = loops;
    c.placement.oversubscribe = true;
    return c;
  }
  // Connects (optionally from a given 127.0.0.x source) and returns {fd, loop}.
  std::pair<int, int> open(std::uint32_t source = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source != 0) {
      endpoint from = endpoint::ipv4(source, 0);
      EXPECT_EQ(::bind(fd, from.data(), from.size()), 0);
    }
    EXPECT_EQ(::connect(fd, at.data(), at.size()), 0);
    std::string id = test::read_n(fd, 1, 5s);
    EXPECT_EQ(id.size(), 1u);
    return {fd, id.empty() ? -1 : id[0]};
  }
  void wait_closed(int n) {
    std::unique_lock l(mu);
    EXPECT_TRUE(cv.wait_for(l, 10s, [&] { return closed >= n; }));
  }
};

TEST(runtime, loops_are_pinned_where_the_plan_says) {
  runtime_config c;
  c.transport = "epoll";
  c.handle_signals = false;
  runtime rt(c);
  ASSERT_TRUE(rt.start().ok());
  if (!rt.plan().binding_real) GTEST_SKIP() << "topology is not this machine's";
  std::mutex mu;
  std::condition_variable cv;
  std::map<unsigned, int> where;
  for (unsigned i = 0; i < rt.loop_count(); ++i) {
    rt.loop(i).post([&, i] {
      std::lock_guard l(mu);
      where[i] = sched_getcpu();
      cv.notify_all();
    });
  }
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return where.size() == rt.loop_count(); }));
  }
  for (unsigned i = 0; i < rt.loop_count(); ++i) {
    EXPECT_EQ(where[i], static_cast<int>(rt.plan().loops[i].cpu)) << "loop " << i;
    EXPECT_EQ(rt.pinning()[i], "pinned to CPU " + std::to_string(rt.plan().loops[i].cpu));
  }
  rt.stop(0s);
  rt.wait();
}

// run() with one loop on a kernel transport: the loop runs on the calling
// thread (no thread is made; the process stays single-threaded), pinned while
// it runs, its binding put back after; SIGTERM stops it gracefully.
TEST(runtime, one_loop_runs_on_the_callers_thread_and_stops_on_sigterm) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  runtime_config c;
  c.transport = "epoll";
  c.placement.loops = 1;
  runtime rt(c);
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  std::thread::id loop_thread;
  int cpu = -1;
  rt.on_start([&](loop_base&) -> result<void> {
    std::lock_guard l(mu);
    loop_thread = std::this_thread::get_id();
    cpu = sched_getcpu();
    started = true;
    cv.notify_all();
    return {};
  });
  // The signal comes from another thread that blocks it, so the kernel
  // delivers it to the loop's (this) thread, asleep in epoll_wait or not.
  std::thread killer([&] {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    std::unique_lock l(mu);
    if (cv.wait_for(l, 10s, [&] { return started; })) ::kill(::getpid(), SIGTERM);
  });
  const int rc = rt.run("runtime_test");
  killer.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(loop_thread, std::this_thread::get_id());
  ASSERT_EQ(rt.pinning().size(), 1u);
  if (rt.plan().binding_real) {
    EXPECT_EQ(cpu, static_cast<int>(rt.plan().loops[0].cpu));
    EXPECT_EQ(rt.pinning()[0], "pinned to CPU " + std::to_string(rt.plan().loops[0].cpu));
  }
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "the caller's thread was left pinned";
}

// With two loops, run() still gives each its own thread.
TEST(runtime, two_loops_run_on_threads_of_their_own) {
  runtime_config c;
  c.transport = "epoll";
  c.placement.loops = 2;
  c.placement.oversubscribe = true;
  runtime rt(c);
  std::mutex mu;
  std::set<std::thread::id> threads;
  rt.on_start([&](loop_base& l) -> result<void> {
    {
      std::lock_guard g(mu);
      threads.insert(std::this_thread::get_id());
    }
    if (l.id() == 1) l.post([&rt] { rt.stop(0s); });
    return {};
  });
  EXPECT_EQ(rt.run("runtime_test"), 0);
  EXPECT_EQ(threads.size(), 2u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(balance, reuseport_gives_every_loop_a_listener) {
  balanced_server s(balance_policy::reuse_port, 4);
  std::set<int> loops_seen;
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    auto [fd, loop] = s.open();
    loops_seen.insert(loop);
    fds.push_back(fd);
  }
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(s.rt.loop(i).listeners().size(), 1u);
  EXPECT_GT(loops_seen.size(), 1u) << "the kernel spreads connections over the loops' sockets";
  for (int fd : fds) ::close(fd);
}

TEST(balance, round_robin_takes_turns) {
  balanced_server s(balance_policy::round_robin, 4);
  std::map<int, int> per_loop;
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) {
    auto [fd, loop] = s.open();
    EXPECT_EQ(loop, i % 4) << "connection " << i;
    ++per_loop[loop];
    fds.push_back(fd);
  }
  for (int l = 0; l < 4; ++l) EXPECT_EQ(per_loop[l], 10);
  EXPECT_EQ(s.rt.loop(1).listeners().size(), 0u) << "one acceptor only";
  for (int fd : fds) ::close(fd);
}

TEST(balance, source_hash_keeps_a_source_on_one_loop) {
  balanced_server s(balance_policy::source_hash, 4);
  std::map<std::uint32_t, std::set<int>> loops_of_source;
  std::set<int> all;
  std::vector<int> fds;
  for (std::uint32_t src = 1; src <= 16; ++src) {
    for (int k = 0; k < 5; ++k) {
      auto [fd, loop] = s.open(0x7F000000u + src);  // 127.0.0.src
      loops_of_source[src].insert(loop);
      all.insert(loop);
      fds.push_back(fd);
    }
  }
  for (auto& [src, loops] : loops_of_source) EXPECT_EQ(loops.size(), 1u) << "source 127.0.0." << src;
  EXPECT_GT(all.size(), 1u) << "different sources spread over loops";
  for (int fd : fds) ::close(fd);
}

TEST(balance, least_conn_evens_out_skewed_lifetimes) {
  for (auto policy : {balance_policy::least_conn, balance_policy::round_robin}) {
    balanced_server s(policy, 4);
    std::map<int, std::vector<int>> by_loop;
    for (int i = 0; i < 8; ++i) {
      auto [fd, loop] = s.open();
      by_loop[loop].push_back(fd);
    }
    // The connections of loops 0 and 1 end early: skewed lifetimes.
    int closing = 0;
    for (int l : {0, 1}) {
      for (int fd : by_loop[l]) ::close(fd), ++closing;
      by_loop[l].clear();
    }
    s.wait_closed(closing);
    for (int i = 0; i < 4; ++i) {
      auto [fd, loop] = s.open();
      by_loop[loop].push_back(fd);
    }
    std::vector<std::size_t> open_counts;
    for (int l = 0; l < 4; ++l) open_counts.push_back(by_loop[l].size());
    auto [lo, hi] = std::minmax_element(open_counts.begin(), open_counts.end());
    if (policy == balance_policy::least_conn) {
      EXPECT_EQ(*hi - *lo, 0u) << "least-conn fills the emptied loops first";
    } else {
      EXPECT_GE(*hi - *lo, 2u) << "round-robin ignores load (the contrast this test relies on)";
    }
    for (auto& [l, fds] : by_loop)
      for (int fd : fds) ::close(fd);
  }
}

// The app as a process: --cores=2 runs two loop threads, each pinned.
std::string echo_bin() {
  const char* v = std::getenv("SLUICE_ECHO");
  return v ? v : "/nonexistent";
}

TEST(runtime_app, echo_with_two_cores_runs_two_pinned_loops) {
  auto topo = platform::topology::discover();
  ASSERT_TRUE(topo.ok());
  if (!topo->is_this_system() || topo->allowed_cpus().size() < 2) GTEST_SKIP() << "needs 2 allowed CPUs";
  test::child p({echo_bin(), "--listen=127.0.0.1:0", "--cores=2"});
  std::string line = p.read_line();
  ASSERT_NE(line.find("2 loops"), std::string::npos) << line;
  std::map<std::string, std::string> pinned;  // thread name -> Cpus_allowed_list
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(p.pid()) + "/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    std::ifstream status(e.path() / "status");
    for (std::string l; std::getline(status, l);) {
      if (l.rfind("Cpus_allowed_list:", 0) == 0) pinned[name] = l.substr(l.find_first_not_of(" \t", 18));
    }
  }
  auto cpus = topo->allowed_cpus();
  EXPECT_EQ(pinned["sluice-loop-0"], std::to_string(cpus[0]));
  EXPECT_EQ(pinned["sluice-loop-1"], std::to_string(cpus[1]));
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 0);
}

TEST(runtime_app, echo_with_one_core_is_one_pinned_thread) {
  auto topo = platform::topology::discover();
  ASSERT_TRUE(topo.ok());
  test::child p({echo_bin(), "--listen=127.0.0.1:0", "--cores=1"});
  std::string line = p.read_line();
  ASSERT_NE(line.find("1 loop"), std::string::npos) << line;
  std::vector<std::string> tasks;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(p.pid()) + "/task")) {
    tasks.push_back(e.path().filename());
  }
  EXPECT_EQ(tasks.size(), 1u) << "a one-core server makes no thread";
  if (topo->is_this_system()) {
    std::ifstream status("/proc/" + std::to_string(p.pid()) + "/status");
    std::string allowed;
    for (std::string l; std::getline(status, l);) {
      if (l.rfind("Cpus_allowed_list:", 0) == 0) allowed = l.substr(l.find_first_not_of(" \t", 18));
    }
    EXPECT_EQ(allowed, std::to_string(topo->allowed_cpus()[0]));
  }
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 0);
}

// SIGTERM in the middle of 16 x 2 MB of echo traffic: every byte comes back.
// One core: the loop runs on the main thread and the signal handler asks it
// to stop; two: the main thread waits for the signal and stops the loops.
void sigterm_with_traffic_in_flight(const char* cores) {
  test::child p({echo_bin(), "--listen=127.0.0.1:0", cores, "--oversubscribe", "--shutdown-timeout=30s"});
  endpoint at = test::parse_announced(p.read_line());
  ASSERT_FALSE(at.empty());
  struct client {
    int fd;
    std::string payload, got;
    std::size_t sent = 0;
    bool eof = false;
  };
  std::vector<client> cs;
  for (int i = 0; i < 16; ++i) {
    int fd = test::connect_nonblocking(at);
    ASSERT_GE(fd, 0);
    cs.push_back({fd, test::random_bytes(2 << 20, 77 + static_cast<unsigned>(i)), "", 0, false});
  }
  bool signalled = false;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  std::vector<char> buf(1 << 16);
  std::size_t done = 0;
  while (done < cs.size() && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> pfd;
    for (auto& c : cs) pfd.push_back({c.eof ? -1 : c.fd, static_cast<short>(POLLIN | (c.sent < c.payload.size() ? POLLOUT : 0)), 0});
    ::poll(pfd.data(), pfd.size(), 1000);
    std::size_t total_sent = 0;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      auto& c = cs[i];
      if ((pfd[i].revents & POLLOUT) && c.sent < c.payload.size()) {
        ssize_t r = ::send(c.fd, c.payload.data() + c.sent, std::min<std::size_t>(65536, c.payload.size() - c.sent), MSG_NOSIGNAL);
        if (r > 0) {
          c.sent += static_cast<std::size_t>(r);
          if (c.sent == c.payload.size()) ::shutdown(c.fd, SHUT_WR);
        }
      }
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r > 0) c.got.append(buf.data(), static_cast<std::size_t>(r));
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          c.eof = true;
          ++done;
        }
      }
      total_sent += c.sent;
    }
    // Stop the server in the middle of the traffic.
    if (!signalled && total_sent > cs.size() * (1 << 20)) {
      p.signal(SIGTERM);
      signalled = true;
    }
  }
  EXPECT_TRUE(signalled);
  for (auto& c : cs) {
    EXPECT_TRUE(c.eof);
    EXPECT_TRUE(c.got == c.payload) << "echo lost or changed bytes: got " << c.got.size() << " of " << c.payload.size();
    ::close(c.fd);
  }
  EXPECT_EQ(p.wait(), 0);
}

TEST(runtime_app, sigterm_with_traffic_in_flight_loses_no_echoed_bytes_one_core) {
  sigterm_with_traffic_in_flight("--cores=1");
}

TEST(runtime_app, sigterm_with_traffic_in_flight_loses_no_echoed_bytes_two_cores) {
  sigterm_with_traffic_in_flight("--cores=2");
}

}  // namespace
}  // namespace sluice
