// The apps as processes: flags, errors, exit codes, signals, descriptor
// exhaustion, and sluice-bench's byte checking.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "net.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice/transport/registry.hpp"
#include "sluice_config.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// meson test sets these; run by hand, point them at the built apps.
std::string echo_bin() { return test::app_path("SLUICE_ECHO"); }
std::string bench_bin() { return test::app_path("SLUICE_BENCH"); }

// Starts sluice-echo on an ephemeral port and returns where it listens.
endpoint start_echo(test::child& p) {
  std::string line = p.read_line();
  endpoint at = test::parse_announced(line);
  EXPECT_FALSE(at.empty()) << "announce line: '" << line << "' stderr: " << p.stderr_text();
  return at;
}

// Connections waiting in the accept queues of the IPv4 listeners on `port`
// (all of them: with SO_REUSEPORT each loop has its own): for a listening
// socket, the rx_queue column of /proc/net/tcp is its accept-queue length.
std::size_t accept_queue_length(std::uint16_t port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  std::size_t n = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state, queues;
    f >> slot >> local >> remote >> state >> queues;
    auto colon = local.find(':');
    if (state != "0A" || colon == std::string::npos) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
    n += std::stoul(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return n;
}

// True when every descriptor number below `limit` is open in process `pid`:
// its next accept() fails with EMFILE.
bool out_of_descriptors(int pid, int limit) {
  for (int fd = 0; fd < limit; ++fd) {
    struct stat st {};
    if (::lstat(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(), &st) != 0) return false;
  }
  return true;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(apps, help_exits_zero_and_lists_flags) {
  for (const auto& bin : {echo_bin(), bench_bin()}) {
    test::child p({bin, "--help"});
    std::string first = p.read_line();
    EXPECT_EQ(p.wait(), 0) << bin;
    EXPECT_NE(first.find("Usage:"), std::string::npos) << bin;
  }
}

TEST(apps, bad_flags_and_addresses_give_one_line_and_exit_2) {
  const std::vector<std::vector<std::string>> cases = {
      {echo_bin(), "--bogus"},
      {echo_bin(), "--listen=not-an-address"},
      {echo_bin(), "--listen=127.0.0.1:99999"},
      {echo_bin(), "--cores=0"},
      {echo_bin(), "--cores=abc"},
      {echo_bin(), "--transport=nonesuch"},
      {echo_bin(), "--idle-timeout=5 parsecs"},
      {echo_bin(), "--flush=sometimes"},
      {echo_bin(), "--flush=event", "--transport=dpdk"},
      {bench_bin(), "echo"},
      {bench_bin(), "ping", "--target=127.0.0.1:1"},
      {bench_bin(), "echo", "--target=127.0.0.1:1", "--size=0"},
  };
  for (const auto& argv : cases) {
    test::child p(argv);
    EXPECT_EQ(p.wait(), 2) << argv[1];
    std::string err = p.stderr_text();
    EXPECT_EQ(count_lines(err), 1) << argv[1] << ": " << err;
    EXPECT_NE(err.find("error"), std::string::npos) << err;
  }
}

// Issue 15, items 3, 4 and 9: values that crashed an app, stalled it, made it
// useless or overflowed were accepted. Each is now refused at start-up by
// the one range check (or a check across flags): exit 2 and one error line
// that names the flag. --check-config refuses what the run would.
TEST(apps, out_of_range_and_inconsistent_values_exit_2_naming_the_flag) {
  const std::string echo = echo_bin();
  const std::string httpd = test::app_path("SLUICE_HTTPD");
  const std::string gw = test::app_path("SLUICE_GATEWAY");
  const std::string up = "--upstream=127.0.0.1:1";
  struct bad {
    std::vector<std::string> argv;
    std::string names;  // what the error line must contain (the flag)
  };
  const std::vector<bad> cases = {
      // Shared flags (every app declares them; sluice-echo stands for all).
      {{echo, "--max-input=0"}, "--max-input: 0 is out of range"},
      {{echo, "--max-input=99999999999999999g"}, "--max-input: '99999999999999999g' is too large"},
      {{echo, "--max-output=0"}, "--max-output: 0 is out of range"},
      {{echo, "--pool-limit=0"}, "--pool-limit: 0 is out of range"},
      {{echo, "--pool-limit=1"}, "--pool-limit: 1 is out of range"},
      {{echo, "--pool-limit=1m", "--max-input=1m"}, "--pool-limit (1m) must be at least twice --max-input"},
      {{echo, "--pool-limit=1m", "--segment-size=128k"}, "--pool-limit (1m) must hold at least 16 segments"},
      {{echo, "--max-connections=0"}, "--max-connections: 0 is out of range"},
      {{echo, "--max-connections=99999999999999999999"}, "--max-connections: '99999999999999999999' is too large"},
      {{echo, "--idle-timeout=99999999h"}, "--idle-timeout: '99999999h' is beyond the clock's range"},
      {{echo, "--read-timeout=25h"}, "--read-timeout: 25h is out of range"},
      {{echo, "--write-timeout=1us"}, "--write-timeout: 1us is out of range"},
      {{echo, "--connect-timeout=0"}, "--connect-timeout: 0 is out of range"},
      {{echo, "--shutdown-timeout=2h"}, "--shutdown-timeout: 2h is out of range"},
      {{echo, "--spin=2s"}, "--spin: 2s is out of range"},
      {{echo, "--cores=5000"}, "--cores: 5000 is out of range"},
      {{echo, "--segment-size=1g"}, "--segment-size: 1g is out of range"},
      {{echo, "--tcp-delayed-ack=500ms"}, "--tcp-delayed-ack: 500ms is out of range"},
      {{echo, "--ip=10.0.0.2/24"}, "--ip needs --transport=dpdk"},
      {{echo, "--dpdk-args=--no-pci"}, "--dpdk-args needs --transport=dpdk"},
      {{echo, "--gateway=10.0.0.1"}, "--gateway needs --transport=dpdk"},
#if SLUICE_HAVE_IO_URING
      {{echo, "--transport=io_uring", "--zerocopy-threshold=1k"}, "--zerocopy-threshold: 1k is out of range (0 (off) or 4k to 1g)"},
      {{echo, "--zerocopy-threshold=64k"}, "--zerocopy-threshold needs --transport=io_uring"},
#endif
      // Item 4: a frame between --max-input and --max-frame stalled.
      {{echo, "--frames", "--max-frame=300000"}, "--max-frame (300000) plus its 4-byte header must fit --max-input (256k)"},
      {{echo, "--frames", "--max-frame=1m"}, "--max-frame (1m)"},
      {{echo, "--frames", "--max-frame=0"}, "--max-frame: 0 is out of range"},
      // Item 3: a large limit aborted the first connection (httpd: closed each).
      {{httpd, "--max-headers=4294967296"}, "--max-headers: 4294967296 is out of range (1 to 1000)"},
      {{httpd, "--max-headers=0"}, "--max-headers: 0 is out of range"},
      {{httpd, "--max-header-bytes=0"}, "--max-header-bytes: 0 is out of range"},
      {{httpd, "--max-request-line=0"}, "--max-request-line: 0 is out of range"},
      {{httpd, "--max-body=99999999999999999g"}, "--max-body: '99999999999999999g' is too large"},
      {{httpd, "--max-body=1g"}, "--max-body (1g) must be at most half of --pool-limit (512m)"},
      {{httpd, "--header-timeout=0"}, "--header-timeout: 0 is out of range"},
      {{httpd, "--header-timeout=99999999h"}, "--header-timeout: '99999999h' is beyond the clock's range"},
      {{gw, up, "--max-headers=4294967296"}, "--max-headers: 4294967296 is out of range (1 to 1000)"},
      {{gw, up, "--max-headers=4294967296", "--check-config"}, "--max-headers: 4294967296 is out of range"},
      {{gw, up, "--retries=99999999999"}, "--retries: 99999999999 is out of range (0 to 63)"},
      {{gw, up, "--max-body=99999999999999999g"}, "--max-body: '99999999999999999g' is too large"},
      {{gw, up, "--max-header-bytes=0"}, "--max-header-bytes: 0 is out of range"},
      {{gw, up, "--high-water=32m"}, "high_water (32m) must not exceed --max-output (16m)"},
      {{gw, up, "--header-timeout=25h"}, "--header-timeout: 25h is out of range"},
      {{gw, up, "--health-interval=0"}, "--health-interval: 0 is out of range"},
      {{gw, up, "--rise=0"}, "--rise: 0 is out of range"},
      {{gw, up, "--idle-timeout=99999999h"}, "--idle-timeout: '99999999h' is beyond the clock's range"},
      {{gw, "--upstream=127.0.0.1:0"}, "--upstream: '127.0.0.1:0': port 0 cannot be connected to"},
      {{gw, "--upstream=127.0.0.1:1,,127.0.0.1:2"}, "--upstream: '127.0.0.1:1,,127.0.0.1:2' has an empty entry"},
      {{gw, "--upstream=127.0.0.1:1,"}, "--upstream: '127.0.0.1:1,' has an empty entry"},
      {{gw, "--upstream=127.0.0.1:1,127.0.0.1:1"}, "--upstream: '127.0.0.1:1' is in the pool twice"},
      {{gw, up, "--ip=10.0.0.2/24"}, "--ip needs --transport=dpdk"},
      {{gw, up, "--listen=127.0.0.1:8000", "--listen=0.0.0.0:8000", "--check-config"},
       "--listen: 0.0.0.0:8000 takes the connections of --listen=127.0.0.1:8000 too"},
      {{gw, up, "--listen=127.0.0.1:8000", "--listen=127.0.0.1:8000", "--check-config"}, "--listen: 127.0.0.1:8000 takes"},
      {{gw, up, "--listen=127.0.0.1:8000", "--admin=127.0.0.1:8000", "--check-config"},
       "--listen: 127.0.0.1:8000 is also the admin address"},
      {{gw, "--config=/tmp"}, "/tmp: is a directory, not a TOML file"},
      {{gw, "--config=/tmp", "--check-config"}, "/tmp: is a directory"},
      {{gw, up, "--cores=4000", "--check-config"}, "--cores=4000"},
      {{bench_bin(), "echo", "--target=127.0.0.1:1", "--connections=0"}, "--connections: 0 is out of range"},
      {{bench_bin(), "echo", "--target=127.0.0.1:1", "--duration=99999999h"}, "--duration: '99999999h' is beyond"},
      {{bench_bin(), "frames", "--target=127.0.0.1:1", "--size=1m"}, "--size (1m) plus the 4-byte header must fit"},
  };
  for (const auto& c : cases) {
    test::child p(c.argv);
    std::string what;
    for (std::size_t i = 1; i < c.argv.size(); ++i) what += " " + c.argv[i];
    EXPECT_EQ(p.wait(), 2) << what;
    const std::string err = p.stderr_text();
    EXPECT_EQ(count_lines(err), 1) << what << ": " << err;
    EXPECT_NE(err.find(": error: "), std::string::npos) << what << ": " << err;
    EXPECT_NE(err.find(c.names), std::string::npos) << what << ": " << err;
  }
}

// The limits' edges are still accepted: the ranges refuse only what breaks.
TEST(apps, values_at_the_edges_of_their_ranges_start) {
  const std::string gw = test::app_path("SLUICE_GATEWAY");
  const std::vector<std::vector<std::string>> cases = {
      {gw, "--upstream=127.0.0.1:1", "--check-config", "--max-headers=1000", "--retries=63", "--max-body=1024g",
       "--header-timeout=24h", "--idle-timeout=0", "--max-header-bytes=80k", "--max-input=1g", "--pool-limit=2g"},
      {gw, "--upstream=127.0.0.1:1,127.0.0.1:2", "--upstream=127.0.0.1:3", "--check-config"},
      {gw, "--upstream=127.0.0.1:1", "--listen=127.0.0.1:8000", "--listen=127.0.0.1:8001", "--admin=127.0.0.1:8002",
       "--check-config"},
  };
  for (const auto& argv : cases) {
    test::child p(argv);
    const std::string out = p.read_all();
    EXPECT_EQ(p.wait(), 0) << argv[2] << ": " << p.stderr_text();
    EXPECT_NE(out.find("configuration OK"), std::string::npos) << out;
  }
  // sluice-echo with the largest frame that fits, and a larger input to fit more.
  for (std::vector<std::string> argv : {std::vector<std::string>{echo_bin(), "--frames", "--max-frame=262140"},
                                        {echo_bin(), "--frames", "--max-input=2m", "--max-frame=1m"}}) {
    argv.push_back("--listen=127.0.0.1:0");
    test::child p(argv);
    EXPECT_FALSE(test::parse_announced(p.read_line()).empty()) << argv[2] << ": " << p.stderr_text();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 0);
  }
}

#if !SLUICE_HAVE_KQUEUE_NATIVE
// Where the OS has no kqueue the transport is still a known name: asking for
// it gives the probe's reason in one line and exit code 2, not "unknown".
TEST(apps, kqueue_transport_is_refused_with_the_reason_on_this_os) {
  const std::vector<std::vector<std::string>> cases = {
      {echo_bin(), "--transport=kqueue", "--listen=127.0.0.1:0"},
      {bench_bin(), "echo", "--target=127.0.0.1:1", "--transport=kqueue", "--duration=1s"},
  };
  for (const auto& argv : cases) {
    test::child p(argv);
    EXPECT_EQ(p.wait(), 2) << argv[0];
    std::string err = p.stderr_text();
    EXPECT_EQ(count_lines(err), 1) << err;
    EXPECT_NE(err.find("kqueue is not available on this OS"), std::string::npos) << err;
    EXPECT_NE(err.find("--transport=epoll"), std::string::npos) << "it says what to use instead: " << err;
  }
}
#endif

TEST(apps, busy_port_gives_one_line_and_exit_2) {
  auto [holder, busy] = test::listen_loopback();
  ASSERT_GE(holder, 0);
  test::child p({echo_bin(), "--listen=" + busy.to_string()});
  EXPECT_EQ(p.wait(), 2);
  std::string err = p.stderr_text();
  EXPECT_EQ(count_lines(err), 1) << err;
  EXPECT_NE(err.find("Address already in use"), std::string::npos) << err;
  ::close(holder);
}

TEST(apps, sigterm_drains_and_exits_zero) {
  test::child p({echo_bin(), "--listen=127.0.0.1:0", "--shutdown-timeout=1s"});
  endpoint at = start_echo(p);
  int fd = test::connect_to(at);
  ASSERT_TRUE(test::send_all(fd, "hello"));
  EXPECT_EQ(test::read_n(fd, 5), "hello");
  p.signal(SIGTERM);
  std::string rest;
  EXPECT_TRUE(test::read_to_eof(fd, rest, 5s)) << "the open connection is closed after the grace period";
  EXPECT_EQ(p.wait(), 0);
  ::close(fd);
}

TEST(apps, survives_running_out_of_descriptors) {
  test::child p({echo_bin(), "--listen=127.0.0.1:0"}, /*nofile_limit=*/64);
  endpoint at = start_echo(p);
  // More connections than the server can hold descriptors for: the kernel
  // completes them all into the listen backlog.
  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) {
    int fd = test::connect_to(at);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(test::send_all(fd, "x"));
    fds.push_back(fd);
  }
  // The server takes connections from the backlog until its descriptors run
  // out; every one it took is echoed, however long that takes, and the rest
  // stay queued in the kernel.
  std::vector<int> served, waiting = fds;
  std::size_t queued = fds.size();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    // In this order: once out of descriptors the server stops taking
    // connections, so the queue read after that is final.
    const bool out = out_of_descriptors(p.pid(), 64);
    queued = accept_queue_length(at.port());
    if (out && served.size() == fds.size() - queued) break;
    std::vector<pollfd> pfd;
    for (int fd : waiting) pfd.push_back({fd, POLLIN, 0});
    if (::poll(pfd.data(), pfd.size(), 100) < 0) {
      ASSERT_EQ(errno, EINTR) << std::strerror(errno);
      continue;
    }
    std::vector<int> still;
    for (auto& p1 : pfd) {
      if (p1.revents & POLLIN) {
        EXPECT_EQ(test::read_n(p1.fd, 1, 1s), "x");
        served.push_back(p1.fd);
      } else {
        still.push_back(p1.fd);
      }
    }
    waiting = still;
  }
  ASSERT_EQ(served.size(), fds.size() - queued) << "every accepted connection is served (queued " << queued << ")";
  ASSERT_GT(served.size(), 30u) << "queued " << queued << "; " << p.stderr_text();
  ASSERT_FALSE(waiting.empty()) << "the limit was reached";
  // While out of descriptors it must not spin: over a second with clients
  // waiting, it uses next to no CPU.
  auto cpu0 = p.cpu_time();
  EXPECT_EQ(test::read_n(waiting.front(), 1, 1000ms), "") << "still not served";
  auto cpu = p.cpu_time() - cpu0;
  EXPECT_LT(cpu, 300ms) << "the server spins while out of descriptors";
  // Served connections still work.
  ASSERT_TRUE(test::send_all(served.front(), "y"));
  EXPECT_EQ(test::read_n(served.front(), 1), "y");
  // Free descriptors: the waiting connections get served, and new ones too.
  for (int fd : served) ::close(fd);
  for (int fd : waiting) {
    ASSERT_EQ(test::read_n(fd, 1, 5s), "x") << "a connection from the backlog was served\n" << p.stderr_text();
    ::close(fd);
  }
  int fresh = test::connect_to(at);
  ASSERT_TRUE(test::send_all(fresh, "z"));
  EXPECT_EQ(test::read_n(fresh, 1, 5s), "z");
  ::close(fresh);
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 0) << p.stderr_text();
}

TEST(apps, bench_against_echo_checks_every_byte) {
  test::child srv({echo_bin(), "--listen=127.0.0.1:0"});
  endpoint at = start_echo(srv);
  test::child b({bench_bin(), "echo", "--target=" + at.to_string(), "--connections=8", "--size=1000",
                 "--pipeline=4", "--duration=1s", "--warmup=0s", "--json"});
  std::string json = b.read_line(30s);
  EXPECT_EQ(b.wait(30s), 0) << json << b.stderr_text();
  EXPECT_NE(json.find("\"mismatches\":0"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"messages\":0,"), std::string::npos) << "some messages went through: " << json;
  srv.signal(SIGINT);
  EXPECT_EQ(srv.wait(), 0);
}

// sluice-echo and sluice-bench on the io_uring transport (issue 18), where it can run.
TEST(apps, bench_against_echo_on_io_uring_checks_every_byte) {
  const transport_entry* e = find_transport("io_uring");
  if (e == nullptr) GTEST_SKIP() << "the io_uring transport is not built here";
  if (auto why = e->probe(); !why.empty()) GTEST_SKIP() << why;
  test::child srv({echo_bin(), "--listen=127.0.0.1:0", "--transport=io_uring"});
  endpoint at = start_echo(srv);
  test::child b({bench_bin(), "echo", "--target=" + at.to_string(), "--transport=io_uring", "--connections=8",
                 "--size=1000", "--pipeline=4", "--duration=1s", "--warmup=0s", "--json"});
  std::string json = b.read_line(30s);
  EXPECT_EQ(b.wait(30s), 0) << json << b.stderr_text();
  EXPECT_NE(json.find("\"mismatches\":0"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"messages\":0,"), std::string::npos) << "some messages went through: " << json;
  srv.signal(SIGINT);
  EXPECT_EQ(srv.wait(), 0);
}

// Echoes, but flips one byte in every 1000th message: sluice-bench must notice.
class corrupting_echo final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    while (c.input().size() >= 64) {
      std::string msg(*c.input().next(64));
      if (++count_ % 1000 == 0) msg[10] ^= 1;
      (void)c.write(msg);
    }
  }

 private:
  unsigned count_ = 0;
};

TEST(apps, bench_reports_mismatched_bytes) {
  runtime_config cfg;
  cfg.transport = "epoll";
  cfg.handle_signals = false;
  runtime rt(cfg);
  rt.listen(endpoint::loopback_v4(0), [](loop_base&) { return std::make_unique<corrupting_echo>(); });
  ASSERT_TRUE(rt.start().ok());
  test::child b({bench_bin(), "echo", "--target=" + rt.bound().front().to_string(), "--connections=4", "--size=64",
                 "--duration=1s", "--warmup=0s", "--json"});
  std::string json = b.read_line(30s);
  EXPECT_EQ(b.wait(30s), 1) << json;
  EXPECT_EQ(json.find("\"mismatches\":0"), std::string::npos) << json;
  EXPECT_NE(b.stderr_text().find("differ"), std::string::npos);
  rt.stop(0s);
  rt.wait();
}

TEST(apps, bench_without_server_fails_clearly) {
  auto [holder, port] = test::reserve_closed_port();
  test::child b({bench_bin(), "echo", "--target=127.0.0.1:" + std::to_string(port), "--duration=1s"});
  EXPECT_EQ(b.wait(30s), 1);
  std::string out;
  for (std::string l; !(l = b.read_line(1s)).empty();) out += l + "\n";
  EXPECT_NE(out.find("connect_refused"), std::string::npos) << out;
  ::close(holder);
}

TEST(apps, udp_echo_app) {
  test::child p({echo_bin(), "--udp", "--listen=127.0.0.1:0"});
  endpoint at = start_echo(p);
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(::connect(fd, at.data(), at.size()), 0);
  ASSERT_EQ(::send(fd, "datagram", 8, 0), 8);
  ASSERT_TRUE(test::wait_for(fd, POLLIN, 5s) & POLLIN);
  char buf[64];
  EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 8);
  EXPECT_EQ(std::string(buf, 8), "datagram");
  ::close(fd);
  p.signal(SIGINT);
  EXPECT_EQ(p.wait(), 0);
}

}  // namespace
}  // namespace sluice
