// sluice-bench: load generator for sluice and its peers.
//
//   sluice-bench echo --target=HOST:PORT [--connections=N] [--size=BYTES]
//                [--pipeline=K] [--duration=S] [--warmup=S] [--rate=R] [--json]
//
// Closed loop (default): every connection keeps K messages in flight and sends
// the next as soon as one comes back. Open loop (--rate): messages are due at
// fixed intended times and latency is measured from the intended time, so a
// stalled server cannot hide its stalls (no coordinated omission).
//
// Every echoed byte is checked against what was sent; a mismatch is counted,
// reported and makes the exit code 1.

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "report.hpp"
#include "sluice/core/app_options.hpp"
#include "sluice/core/cli.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/histogram.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/runtime.hpp"

namespace {

using namespace sluice;

struct settings {
  std::string mode;
  std::string target_text;
  endpoint target;
  unsigned connections = 50;
  std::size_t size = 64;
  unsigned pipeline = 0;  // 0: 1 in closed loop, 1000 in open loop
  duration run_time = std::chrono::seconds(5);
  duration warmup = std::chrono::seconds(1);
  double rate = 0;
  // Stop after this many messages in all (0: run for --duration).
  std::uint64_t messages = 0;
  bool json = false;
};

// Message `seq` of connection `conn`: reproducible pseudo-random bytes, so the
// checker regenerates instead of remembering what was sent.
void fill_message(std::byte* out, std::size_t n, std::uint32_t conn, std::uint64_t seq) noexcept {
  std::uint64_t x = (static_cast<std::uint64_t>(conn) << 40) ^ seq ^ 0x9E3779B97F4A7C15ULL;
  std::size_t i = 0;
  while (i < n) {
    // splitmix64
    x += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    std::size_t k = std::min<std::size_t>(8, n - i);
    std::memcpy(out + i, &z, k);
    i += k;
  }
}

struct conn_state {
  std::uint32_t id = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t quota = UINT64_MAX;  // messages this connection sends in all
  bool opened = false;
  connection_handle handle;
};

// One per loop: drives that loop's share of the connections.
class echo_worker final : public handler {
 public:
  echo_worker(loop_base& l, const settings& s, unsigned first, unsigned count)
      : loop_(l), s_(s), conns_(count), send_times_(static_cast<std::size_t>(count) * s.pipeline),
        expected_(s.size) {
    for (unsigned i = 0; i < count; ++i) {
      conns_[i].id = first + i;
      // An even share of --messages (the first ones take the remainder).
      if (s.messages != 0) {
        conns_[i].quota = s.messages / s.connections + (conns_[i].id < s.messages % s.connections ? 1 : 0);
        if (conns_[i].quota == 0) ++finished_;
      }
    }
    warmup_timer_.bind<&echo_worker::warmup_done>(this);
    end_timer_.bind<&echo_worker::finish>(this);
    tick_timer_.bind<&echo_worker::tick>(this);
  }

  result<void> begin() {
    start_ = loop_.now();
    for (auto& st : conns_) {
      auto h = loop_.connect(s_.target, *this, &st);
      if (!h) return h.err();
      st.handle = *h;
    }
    loop_.timers().arm(warmup_timer_, start_ + s_.warmup);
    if (s_.messages == 0) loop_.timers().arm(end_timer_, start_ + s_.warmup + s_.run_time);
    if (finished_ == conns_.size()) finish();
    if (s_.rate > 0) {
      per_conn_interval_ = duration(static_cast<std::int64_t>(1e9 * s_.connections / s_.rate));
      loop_.timers().arm_after(tick_timer_, tick_);
    }
    return {};
  }

  void on_open(connection& c) noexcept override {
    auto& st = *c.context_as<conn_state>();
    st.opened = true;
    opened_at_ = std::max(opened_at_, loop_.now());
    if (s_.rate > 0) return;  // the tick sends on schedule
    for (unsigned i = 0; i < s_.pipeline; ++i) send_one(c, st, steady_now());
  }

  void on_data(connection& c) noexcept override {
    auto& st = *c.context_as<conn_state>();
    const time_point arrived = steady_now();
    buffer_chain& in = c.input();
    while (in.size() >= s_.size) {
      auto got = in.next(s_.size);
      if (!got) break;
      fill_message(expected_.data(), s_.size, st.id, st.received);
      if (std::memcmp(got->data(), expected_.data(), s_.size) != 0) {
        ++mismatches_;
        if (first_error_.empty()) {
          first_error_ = "connection " + std::to_string(st.id) + " message " + std::to_string(st.received) +
                         ": echoed bytes differ from the bytes sent";
        }
      }
      time_point sent_at = send_times_[slot(st, st.received)];
      ++st.received;
      progress_.fetch_add(1, std::memory_order_relaxed);
      if (measuring_) {
        latency_.record(static_cast<std::uint64_t>((arrived - sent_at).count()));
        ++messages_;
      }
      if (st.received == st.quota) {
        if (++finished_ == conns_.size()) finish();
        return;
      }
      if (s_.rate == 0 && !stopping_) send_one(c, st, arrived);
    }
    if (s_.rate > 0) send_due(c, st);
  }

  void on_close(connection& c, close_reason why) noexcept override {
    auto& st = *c.context_as<conn_state>();
    if (stopping_) return;
    std::string what;
    if (!st.opened) {
      ++connect_failures_;
      what = "cannot connect to " + s_.target.to_string() + ": " + std::string(to_string(why));
    } else {
      ++closed_early_;
      what = "connection " + std::to_string(st.id) + " closed by " + std::string(to_string(why));
    }
    if (c.error() != 0) what += " (" + std::string(std::strerror(c.error())) + ")";
    if (first_error_.empty()) first_error_ = what;
    // Every connection failed: nothing to measure, stop now.
    if (++gone_ == conns_.size()) finish();
  }

  // Results, read once the loop has ended.
  const histogram& latency() const { return latency_; }
  std::uint64_t messages() const { return messages_; }
  double window_seconds() const { return std::chrono::duration<double>(measure_end_ - measure_start_).count(); }
  std::uint64_t connect_failures() const { return connect_failures_; }
  std::uint64_t closed_early() const { return closed_early_; }
  std::uint64_t mismatches() const { return mismatches_; }
  const std::string& first_error() const { return first_error_; }
  // Any thread.
  std::uint64_t progress() const { return progress_.load(std::memory_order_relaxed); }

 private:
  std::size_t slot(const conn_state& st, std::uint64_t seq) const {
    return static_cast<std::size_t>(st.id - conns_.front().id) * s_.pipeline + seq % s_.pipeline;
  }

  void send_one(connection& c, conn_state& st, time_point intended) noexcept {
    if (st.sent >= st.quota) return;
    send_times_[slot(st, st.sent)] = intended;
    auto room = s_.size <= loop_.pool().segment_size() ? c.output().reserve(s_.size) : std::span<std::byte>{};
    if (!room.empty()) {
      fill_message(room.data(), s_.size, st.id, st.sent);
      c.output().commit(s_.size);
      c.flush();
    } else {
      fill_message(expected_.data(), s_.size, st.id, st.sent);
      if (!c.write(std::string_view(reinterpret_cast<const char*>(expected_.data()), s_.size))) return;
    }
    ++st.sent;
  }

  // Open loop: send every message whose intended time has come, up to the
  // in-flight cap; the rest wait, their latency still counted from their
  // intended time.
  void send_due(connection& c, conn_state& st) noexcept {
    if (stopping_) return;
    const time_point now = steady_now();
    while (st.sent - st.received < s_.pipeline) {
      time_point intended = opened_at_ + per_conn_interval_ * static_cast<std::int64_t>(st.sent);
      if (intended > now) break;
      send_one(c, st, intended);
    }
  }

  void tick() noexcept {
    for (auto& st : conns_) {
      if (connection* c = loop_.get(st.handle); c != nullptr && c->is_open()) send_due(*c, st);
    }
    if (!stopping_) loop_.timers().arm_after(tick_timer_, tick_);
  }

  void warmup_done() noexcept {
    measuring_ = true;
    latency_.reset();
    messages_ = 0;
    measure_start_ = steady_now();
  }

  void finish() noexcept {
    if (stopping_) return;
    measure_end_ = steady_now();
    if (!measuring_) measure_start_ = measure_end_;
    measuring_ = false;
    stopping_ = true;
    tick_timer_.cancel();
    warmup_timer_.cancel();
    end_timer_.cancel();
    loop_.stop(duration::zero());
  }

  loop_base& loop_;
  const settings& s_;
  std::vector<conn_state> conns_;
  std::vector<time_point> send_times_;
  std::vector<std::byte> expected_;
  histogram latency_;
  std::uint64_t messages_ = 0;
  std::uint64_t connect_failures_ = 0;
  std::uint64_t closed_early_ = 0;
  std::uint64_t mismatches_ = 0;
  std::size_t gone_ = 0;
  std::size_t finished_ = 0;  // connections that reached their quota
  std::string first_error_;
  std::atomic<std::uint64_t> progress_{0};
  bool measuring_ = false;
  bool stopping_ = false;
  time_point start_{};
  time_point opened_at_{};
  time_point measure_start_{};
  time_point measure_end_{};
  duration per_conn_interval_{};
  duration tick_ = std::chrono::microseconds(50);
  timer warmup_timer_;
  timer end_timer_;
  timer tick_timer_;
};

}  // namespace

int main(int argc, char** argv) {
  cli args("sluice-bench", "Load generator: drives a server with N connections and reports throughput and latency.");
  app_options app;
  settings s;
  app.declare(args, "");
  args.positional("MODE", "echo: send messages and check every echoed byte", s.mode, true);
  args.option("--target", "HOST:PORT", "server to load (required)", s.target_text);
  args.option("--connections", "N", "connections in all (default 50)", s.connections);
  args.custom("--size", "BYTES", "message size (default 64)", [&](std::string_view v) -> result<void> {
    auto n = parse_size(v);
    if (!n) return n.err();
    if (*n == 0 || *n > (64u << 20)) return error{"must be between 1 and 64m", {}};
    s.size = static_cast<std::size_t>(*n);
    return {};
  });
  args.option("--pipeline", "K", "messages in flight per connection (default 1; open loop: at most 1000)", s.pipeline);
  args.duration_option("--duration", "how long to measure (default 5s)", s.run_time);
  args.duration_option("--warmup", "load before measuring, not counted (default 1s)", s.warmup);
  args.option("--rate", "R", "open loop: R messages per second in all, latency from intended send times", s.rate);
  args.option("--messages", "N",
              "stop after N messages in all instead of after --duration (no warm-up; for counting syscalls)",
              s.messages);
  args.flag("--json", "print the result as one JSON object on stdout", s.json);
  args.note("Example: sluice-bench echo --target=127.0.0.1:7000 --connections=50 --size=64 --duration=5s");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;
  if (s.mode != "echo") return args.fail("unknown mode '" + s.mode + "' (modes: echo)");
  if (s.target_text.empty()) return args.fail("--target=HOST:PORT is required");
  auto target = endpoint::parse(s.target_text);
  if (!target) return args.fail("--target: " + target.err().message);
  if (target->port() == 0) return args.fail("--target needs a port");
  s.target = *target;
  if (s.connections == 0) return args.fail("--connections must be at least 1");
  if (s.rate < 0) return args.fail("--rate must be positive");
  if (s.pipeline == 0) s.pipeline = s.rate > 0 ? 1000 : 1;
  if (s.run_time <= duration::zero()) return args.fail("--duration must be positive");
  if (s.messages != 0) {
    if (s.rate > 0) return args.fail("--messages and --rate do not go together");
    s.warmup = duration::zero();
  }

  runtime_config cfg = app.runtime;
  cfg.handle_signals = false;
  // The schedule of an open loop needs fine timers.
  if (s.rate > 0) {
    cfg.loop.timer_resolution = std::chrono::microseconds(10);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  }
  runtime rt(cfg);
  std::vector<std::unique_ptr<echo_worker>> workers;
  rt.on_start([&](loop_base& l) -> result<void> {
    // Start hooks run one loop at a time, loop 0 first.
    const unsigned loops = rt.loop_count();
    if (l.id() == 0) workers.resize(loops);
    unsigned i = l.id();
    unsigned first = s.connections * i / loops;
    unsigned last = s.connections * (i + 1) / loops;
    workers[i] = std::make_unique<echo_worker>(l, s, first, last - first);
    return workers[i]->begin();
  });
  if (auto r = rt.start(); !r) {
    std::fprintf(stderr, "sluice-bench: error: %s\n", r.err().message.c_str());
    return 2;
  }
  const bool tty = isatty(STDERR_FILENO) != 0 && !s.json;
  const time_point t0 = steady_now();
  std::uint64_t last = 0;
  time_point last_t = t0;
  while (!rt.wait_for(std::chrono::seconds(1))) {
    if (!tty) continue;
    std::uint64_t total = 0;
    for (auto& w : workers) total += w->progress();
    time_point now = steady_now();
    double dt = std::chrono::duration<double>(now - last_t).count();
    double elapsed = std::chrono::duration<double>(now - t0).count();
    bool warm = now - t0 < s.warmup;
    std::fprintf(stderr, "\r  %5.1fs  %10.0f msgs/s  %s   ", elapsed, static_cast<double>(total - last) / dt,
                 warm ? "(warm-up)" : "          ");
    last = total;
    last_t = now;
  }
  if (tty) std::fprintf(stderr, "\r%60s\r", "");
  rt.wait();

  bench::summary sum;
  sum.mode = s.mode;
  sum.target = s.target.to_string();
  sum.connections = s.connections;
  sum.size = s.size;
  sum.pipeline = s.pipeline;
  sum.rate = s.rate;
  sum.loops = rt.loop_count();
  double window = 0;
  for (auto& w : workers) {
    sum.latency.merge(w->latency());
    sum.messages += w->messages();
    window = std::max(window, w->window_seconds());
    sum.connect_failures += w->connect_failures();
    sum.closed_early += w->closed_early();
    sum.mismatches += w->mismatches();
    if (sum.first_error.empty()) sum.first_error = w->first_error();
  }
  sum.seconds = window;
  sum.bytes = sum.messages * s.size;
  std::fputs((s.json ? bench::to_json(sum) : bench::to_text(sum)).c_str(), stdout);
  bool bad = sum.mismatches != 0 || sum.connect_failures != 0 || sum.closed_early != 0 || sum.messages == 0;
  if (bad && s.json && !sum.first_error.empty()) std::fprintf(stderr, "sluice-bench: %s\n", sum.first_error.c_str());
  return bad ? 1 : 0;
}
