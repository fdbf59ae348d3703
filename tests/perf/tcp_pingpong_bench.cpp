// sluice-tcp-pingpong: the round trip of a small TCP message between two
// sluice stacks entirely in user space, next to the kernel's TCP loopback
// round trip, in the same run.
//
// sluice: two loop<dpdk_transport>, each with its own inet stack (10.0.0.1
// and 10.0.0.2), in this process, joined by two rte
// rings made into two ports (rte_eth_from_rings): port A's TX ring is port
// B's RX ring and the other way round. B listens and runs sluice-echo's TCP
// echo handler; A connects and sends one message at a time, the next when
// the echo of the last one is back (one outstanding). Both loops busy-poll
// on ONE thread, alternating A.run_once() and B.run_once(): a round trip is
// the end of A's iteration (the request's segment leaves), one whole
// iteration of B (RX, TCP, the echo, its segment leaves) and the start of
// A's next (RX, TCP, the handler sees the reply). So it is the CPU cost of
// both stacks on one message each way, with no cross-core wakeup in it.
// It runs twice: over IPv4 (10.0.0.1 -> 10.0.0.2) and over IPv6 (fd00::1
// -> fd00::2), the same TCP over the other network layer, and reports the
// IPv6/IPv4 ratio (issue 17: within 1.1x).
//
// kernel: the same exchange over 127.0.0.1 with TCP_NODELAY, measured three
// ways so that one of them has the same shape as the sluice figure:
//   one thread   both sockets non-blocking, served by one spinning thread:
//                send on A, spin on recv at B, send back, spin on recv at A
//                (loopback delivers inside send(), so nobody waits): the
//                kernel's CPU cost per round trip. This is the peer of the
//                sluice figure (the ratio uses it).
//   two threads, spinning   the echo on its own thread and CPU, both sides
//                spinning on non-blocking recv (no sleep, no wakeup).
//   two threads, blocking   the same with blocking recv (the usual setup).
//
// Each round trip is timed with the TSC (rte_rdtsc) from just before the
// request is handed to the stack to just after the whole reply was seen.
// The first tenth of the round trips warms up and is not counted.
//
// Usage: sluice-tcp-pingpong [--count=N] [--size=BYTES] [--cpu=C]
//   [--server-cpu=S] [--json] [--eal="EXTRA EAL ARGS"]
// Bounded: N round trips per mode (default 200,000) and at most 30 s each.
// --cpu pins the main thread (sluice, kernel one-thread, kernel clients),
// --server-cpu the kernel echo thread (defaults 1 and 0; -1: no pinning).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_eal.hpp"
#include "echo_handlers.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/dpdk/dpdk_device.hpp"
#include "sluice/dpdk/dpdk_queue.hpp"
#include "sluice/dpdk/dpdk_transport.hpp"

namespace {

using namespace sluice;

constexpr std::uint32_t client_ip = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t server_ip = 0x0a000002;  // 10.0.0.2
constexpr std::uint16_t echo_port = 7;

struct options {
  std::uint64_t count = 200'000;
  unsigned size = 64;
  int cpu = 1;
  int server_cpu = 0;
  bool json = false;
  std::string eal;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fail(const std::string& why) {
  std::fprintf(stderr, "sluice-tcp-pingpong: error: %s\n", why.c_str());
  return 2;
}

// A CPU number, or -1 for no pinning.
std::function<sluice::result<void>(std::string_view)> cpu_option(int& target) {
  return [&target](std::string_view v) -> sluice::result<void> {
    if (v == "-1") {
      target = -1;
      return {};
    }
    auto n = sluice::parse_count(v);
    if (!n || *n > 1023) return sluice::error{"'" + std::string(v) + "' is not a CPU number (or -1)", {}};
    target = static_cast<int>(*n);
    return {};
  };
}

bool pin(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Round-trip times in TSC cycles, the warm-up left out; room reserved up
// front so that recording allocates nothing.
class samples {
 public:
  samples(std::uint64_t count) : warmup_(count / 10), target_(warmup_ + count) { rtt_.reserve(count); }
  // Returns false once the target is reached.
  bool add(std::uint64_t cycles) noexcept {
    if (seen_++ >= warmup_) rtt_.push_back(cycles);
    return seen_ < target_;
  }
  [[nodiscard]] std::uint64_t target() const noexcept { return target_; }
  [[nodiscard]] std::uint64_t seen() const noexcept { return seen_; }
  std::vector<std::uint64_t>& values() noexcept { return rtt_; }

 private:
  std::uint64_t warmup_, target_, seen_ = 0;
  std::vector<std::uint64_t> rtt_;
};

struct summary {
  double p50_us = 0, p99_us = 0, mean_us = 0, per_s = 0;
  std::uint64_t n = 0;
};

summary summarise(std::vector<std::uint64_t>& v, double seconds) {
  summary s;
  s.n = v.size();
  if (v.empty()) return s;
  const double us = 1e6 / static_cast<double>(rte_get_tsc_hz());
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  s.p50_us = static_cast<double>(v[v.size() / 2]) * us;
  s.p99_us = static_cast<double>(v[std::min(v.size() - 1, v.size() * 99 / 100)]) * us;
  s.mean_us = sum / static_cast<double>(v.size()) * us;
  s.per_s = seconds > 0 ? static_cast<double>(v.size()) / seconds : 0;
  return s;
}

// ---- sluice ------------------------------------------------------------------

// The ring PMD gives every port the same MAC address and cannot change it,
// and a stack rightly refuses ARP from a sender with its own address: this
// wrapper gives each stack an address of its own (the rings deliver every
// frame anyway). It costs one more virtual call per burst, not per packet.
const inet::mac_address mac_a{{0x02, 0, 0, 0, 0xaa, 0x01}};
const inet::mac_address mac_b{{0x02, 0, 0, 0, 0xaa, 0x02}};

class own_mac_port final : public inet::packet_port {
 public:
  own_mac_port(std::unique_ptr<dpdk::dpdk_queue> q, inet::mac_address mac) : q_(std::move(q)), mac_(mac) {}
  std::size_t receive(inet::packet** out, std::size_t n) noexcept override { return q_->receive(out, n); }
  std::size_t transmit(inet::packet** pkts, std::size_t n) noexcept override { return q_->transmit(pkts, n); }
  std::size_t allocate(inet::packet** out, std::size_t n) noexcept override { return q_->allocate(out, n); }
  [[nodiscard]] inet::mac_address mac() const noexcept override { return mac_; }
  [[nodiscard]] const inet::port_capabilities& capabilities() const noexcept override { return q_->capabilities(); }
  [[nodiscard]] segment_release_fn release_function() const noexcept override { return q_->release_function(); }
  void metrics(const std::string& prefix, metric_list& out) const override { q_->metrics(prefix, out); }

 private:
  std::unique_ptr<dpdk::dpdk_queue> q_;
  inet::mac_address mac_;
};

// The connecting side: one message out, wait for all of it to come back,
// note the time, the next one. Owner loop only.
class pingpong_client final : public handler {
 public:
  pingpong_client(samples& s, unsigned size) : samples_(s), message_(size, 'x') {}

  void on_open(connection& c) noexcept override {
    opened_ = true;
    send_one(c);
  }
  void on_data(connection& c) noexcept override {
    if (c.input().size() < message_.size()) return;
    const std::uint64_t t = rte_rdtsc();
    if (c.input().size() != message_.size() || c.input().at(0) != 'x') ++bad_;
    (void)c.input().skip(c.input().size());
    if (!samples_.add(t - sent_at_)) {
      done_ = true;
      c.close();
      return;
    }
    send_one(c);
  }
  void on_close(connection&, close_reason) noexcept override { closed_ = true; }

  [[nodiscard]] bool opened() const noexcept { return opened_; }
  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] std::uint64_t bad() const noexcept { return bad_; }

 private:
  void send_one(connection& c) noexcept {
    sent_at_ = rte_rdtsc();
    if (!c.write_and_flush(message_)) ++bad_;
  }

  samples& samples_;
  std::string message_;
  std::uint64_t sent_at_ = 0, bad_ = 0;
  bool opened_ = false, done_ = false, closed_ = false;
};

struct sluice_result {
  summary s;
  std::uint64_t bad = 0;
  std::string error;
  // The 30 s bound came first: the figures stand on fewer round trips
  // (summary::n says how many); a note, not a failure.
  bool out_of_time = false;
};

// The exchange over IPv4 (10.0.0.1 -> 10.0.0.2) or, with ipv6, over IPv6
// (fd00::1 -> fd00::2): the same TCP, the other network layer (issue 17's
// benchmark: IPv6 within 1.1x of IPv4, both measured in this run).
sluice_result sluice_pingpong(const options& o, bool ipv6) {
  sluice_result out;
  const std::string tag = ipv6 ? "6" : "4";
  rte_ring* ab = rte_ring_create(("pp_ab" + tag).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* ba = rte_ring_create(("pp_ba" + tag).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (ab == nullptr || ba == nullptr) return {{}, 0, "rte_ring_create"};
  // A receives what B sends (ba) and sends into ab; B the other way round.
  const int port_a = rte_eth_from_rings(("pp_a" + tag).c_str(), &ba, 1, &ab, 1, 0);
  const int port_b = rte_eth_from_rings(("pp_b" + tag).c_str(), &ab, 1, &ba, 1, 0);
  if (port_a < 0 || port_b < 0) return {{}, 0, "rte_eth_from_rings"};
  dpdk::device_config cfg;
  cfg.queue_nodes = {0};
  cfg.held_per_loop = 2048;
  auto dev_a = dpdk::dpdk_device::open(static_cast<std::uint16_t>(port_a), cfg);
  if (!dev_a) return {{}, 0, dev_a.err().message};
  auto dev_b = dpdk::dpdk_device::open(static_cast<std::uint16_t>(port_b), cfg);
  if (!dev_b) return {{}, 0, dev_b.err().message};
  {
    loop_options lo;
    lo.busy_poll = true;
    inet::inet_transport_options ta, tb;
    ta.stack.iface = inet::interface_config::parse("10.0.0.1/24", "", {"fd00::1/64"}, "").value();
    tb.stack.iface = inet::interface_config::parse("10.0.0.2/24", "", {"fd00::2/64"}, "").value();
    ta.transport_name = tb.transport_name = "dpdk";
    loop<dpdk::dpdk_transport> a(
        lo, 0, std::make_unique<own_mac_port>(std::make_unique<dpdk::dpdk_queue>(**dev_a, 0), mac_a), ta);
    loop<dpdk::dpdk_transport> b(
        lo, 0, std::make_unique<own_mac_port>(std::make_unique<dpdk::dpdk_queue>(**dev_b, 0), mac_b), tb);
    echo_app::echo_handler echo;
    const endpoint server = ipv6 ? endpoint::parse("[fd00::2]:7").value() : endpoint::ipv4(server_ip, echo_port);
    if (!b.listen(server, echo).ok()) return {{}, 0, "listen"};
    samples s(o.count);
    pingpong_client client(s, o.size);
    if (!a.connect(server, client).ok()) return {{}, 0, "connect"};
    const double deadline = now_s() + 30;
    double t_start = 0, t_end = 0;
    bool counting = false;
    for (std::uint64_t i = 0; !client.done(); ++i) {
      a.run_once();
      b.run_once();
      if (!counting && s.seen() >= s.target() / 11) {  // the warm-up is over
        counting = true;
        t_start = now_s();
      }
      if ((i & 1023) == 0 && now_s() > deadline) break;
    }
    t_end = now_s();
    if (!client.opened()) {
      out.error = "the connection did not open";
      metric_list m;
      a.transport_metrics("a.", m);
      b.transport_metrics("b.", m);
      std::fprintf(stderr, "%s", format_metrics(m).c_str());
    }
    else if (!client.done()) out.out_of_time = true;
    // Let the close handshake finish before the loops go.
    for (int i = 0; i < 64; ++i) {
      a.run_once();
      b.run_once();
    }
    out.bad = client.bad();
    out.s = summarise(s.values(), t_end - t_start);
  }
  dev_a->reset();
  dev_b->reset();
  return out;
}

// ---- kernel ------------------------------------------------------------------

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

bool nodelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
}

bool nonblocking(int fd) { return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0; }

// A connected pair over 127.0.0.1: (client, accepted).
bool loopback_pair(fd_guard& c, fd_guard& s) {
  fd_guard l;
  l.fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l.fd < 0 || bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l.fd, 1) != 0 ||
      getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return false;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c.fd < 0 || connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
  s.fd = accept(l.fd, nullptr, nullptr);
  return s.fd >= 0 && nodelay(c.fd) && nodelay(s.fd);
}

// Reads exactly n bytes; spins on EAGAIN for a non-blocking socket.
bool read_all(int fd, char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r > 0) got += static_cast<std::size_t>(r);
    else if (r == 0 || (errno != EAGAIN && errno != EINTR)) return false;
  }
  return true;
}

bool write_all(int fd, const char* buf, std::size_t n) {
  std::size_t put = 0;
  while (put < n) {
    const ssize_t r = send(fd, buf + put, n - put, MSG_NOSIGNAL);
    if (r > 0) put += static_cast<std::size_t>(r);
    else if (r < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  return true;
}

enum class kernel_mode { one_thread, two_threads_spinning, two_threads_blocking };

sluice_result kernel_pingpong(const options& o, kernel_mode mode) {
  sluice_result out;
  fd_guard c, s;
  if (!loopback_pair(c, s)) return {{}, 0, std::string("loopback pair: ") + std::strerror(errno)};
  if (mode != kernel_mode::two_threads_blocking && !(nonblocking(c.fd) && nonblocking(s.fd)))
    return {{}, 0, "O_NONBLOCK"};
  std::vector<char> msg(o.size, 'x'), buf(o.size), sbuf(o.size);
  samples smp(o.count);
  std::thread echo;
  std::atomic<bool> echo_failed{false};
  if (mode != kernel_mode::one_thread) {
    // The echo ends when the client closes its socket (EOF).
    echo = std::thread([&, fd = s.fd] {
      (void)pin(o.server_cpu);
      while (read_all(fd, sbuf.data(), sbuf.size())) {
        if (!write_all(fd, sbuf.data(), sbuf.size())) {
          echo_failed = true;
          return;
        }
      }
    });
  }
  const double deadline = now_s() + 30;
  double t_start = 0;
  bool ok = true, more = true;
  for (std::uint64_t i = 0; more && ok; ++i) {
    if (i == smp.target() / 11) t_start = now_s();
    const std::uint64_t t0 = rte_rdtsc();
    ok = write_all(c.fd, msg.data(), msg.size());
    if (ok && mode == kernel_mode::one_thread)
      ok = read_all(s.fd, sbuf.data(), sbuf.size()) && write_all(s.fd, sbuf.data(), sbuf.size());
    ok = ok && read_all(c.fd, buf.data(), buf.size());
    const std::uint64_t t1 = rte_rdtsc();
    if (ok && buf[0] != 'x') ++out.bad;
    more = smp.add(t1 - t0);
    if ((i & 1023) == 0 && now_s() > deadline) break;
  }
  const double t_end = now_s();
  if (!ok) out.error = std::string("socket I/O: ") + std::strerror(errno);
  else if (more) out.out_of_time = true;
  ::shutdown(c.fd, SHUT_RDWR);
  if (echo.joinable()) echo.join();
  if (echo_failed) out.error = "the echo thread failed";
  out.s = summarise(smp.values(), t_end - t_start);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  sluice::cli args("sluice-tcp-pingpong",
                   "TCP round trip between two sluice stacks in user space, next to the kernel's loopback TCP.");
  args.custom("--count", "N", "round trips per mode (default 200000); range 10 to 10000000",
              [&o](std::string_view v) -> sluice::result<void> {
                auto n = sluice::parse_count(v, {10, 10'000'000});
                if (!n) return n.err();
                o.count = *n;
                return {};
              });
  args.count_option("--size", "BYTES", "message size (default 64)", o.size, {1, 1400});
  args.custom("--cpu", "C", "CPU of the main thread (default 1; -1: no pinning)", cpu_option(o.cpu));
  args.custom("--server-cpu", "S", "CPU of the kernel echo thread (default 0; -1: no pinning)",
              cpu_option(o.server_cpu));
  args.flag("--json", "print one JSON object instead of the table", o.json);
  args.option("--eal", "ARGS", "further EAL arguments, space-separated", o.eal);
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (!pin(o.cpu)) return fail("cannot pin to CPU " + std::to_string(o.cpu));

  // The EAL runs on the main thread's CPU; its own pinning is not used (the
  // loops are driven from this thread).
  const std::string lcore = "--lcores=0@" + std::to_string(o.cpu < 0 ? 0 : o.cpu);
  if (std::string why = sluice::bench::init_eal("sluice-tcp-pingpong", lcore, o.eal); !why.empty()) return fail(why);

  struct row {
    const char* key;
    const char* label;
    sluice_result r;
  };
  std::vector<row> rows;
  rows.push_back({"sluice", "sluice <-> sluice, ring ports, one thread", sluice_pingpong(o, false)});
  rows.push_back({"sluice_v6", "the same over IPv6", sluice_pingpong(o, true)});
  rows.push_back({"kernel", "kernel loopback, one thread, non-blocking", kernel_pingpong(o, kernel_mode::one_thread)});
  rows.push_back({"kernel_spin", "kernel loopback, two threads, spinning",
                  kernel_pingpong(o, kernel_mode::two_threads_spinning)});
  rows.push_back({"kernel_block", "kernel loopback, two threads, blocking",
                  kernel_pingpong(o, kernel_mode::two_threads_blocking)});
  int rc = 0;
  for (auto& r : rows) {
    if (!r.r.error.empty() || r.r.bad != 0) {
      std::fprintf(stderr, "sluice-tcp-pingpong: %s: %s (%llu bad replies)\n", r.key, r.r.error.c_str(),
                   static_cast<unsigned long long>(r.r.bad));
      rc = 1;
    }
    if (r.r.out_of_time) {
      std::fprintf(stderr, "sluice-tcp-pingpong: note: %s stopped at the 30 s bound after %llu counted round trips\n",
                   r.key, static_cast<unsigned long long>(r.r.s.n));
    }
  }
  const double ratio = rows[2].r.s.p50_us > 0 ? rows[0].r.s.p50_us / rows[2].r.s.p50_us : 0;
  // IPv6 against IPv4: p50 and the mean round trip (issue 17: within 1.1x).
  const double v6_p50 = rows[0].r.s.p50_us > 0 ? rows[1].r.s.p50_us / rows[0].r.s.p50_us : 0;
  const double v6_mean = rows[0].r.s.mean_us > 0 ? rows[1].r.s.mean_us / rows[0].r.s.mean_us : 0;
  if (o.json) {
    std::printf("{");
    for (auto& r : rows) {
      std::printf("\"%s\": {\"p50_us\": %.3f, \"p99_us\": %.3f, \"mean_us\": %.3f, \"per_s\": %.0f, \"n\": %llu}, ",
                  r.key, r.r.s.p50_us, r.r.s.p99_us, r.r.s.mean_us, r.r.s.per_s,
                  static_cast<unsigned long long>(r.r.s.n));
    }
    std::printf("\"size\": %u, \"ratio_p50\": %.3f, \"ipv6_ratio_p50\": %.3f, \"ipv6_ratio_mean\": %.3f, \"ok\": %s}\n",
                o.size, ratio, v6_p50, v6_mean, rc == 0 ? "true" : "false");
  } else {
    std::printf("TCP ping-pong, %u-byte messages, one outstanding, %llu round trips each (usec)\n", o.size,
                static_cast<unsigned long long>(o.count));
    for (auto& r : rows) {
      std::printf("  %-44s p50 %7.2f  p99 %7.2f  mean %7.2f  %9.0f round trips/s\n", r.label, r.r.s.p50_us,
                  r.r.s.p99_us, r.r.s.mean_us, r.r.s.per_s);
    }
    std::printf("  ratio sluice / kernel one-thread, p50: %.2fx\n", ratio);
    std::printf("  ratio sluice IPv6 / IPv4: p50 %.3fx, mean %.3fx\n", v6_p50, v6_mean);
  }
  rte_eal_cleanup();
  return rc;
}
