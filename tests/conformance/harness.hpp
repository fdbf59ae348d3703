#pragma once
// What the conformance tests drive a transport with: a loop on its own thread
// (threaded_loop) or one stepped by the test (stepped_loop), observations the
// test waits on (events, with deadlines; no sleeps), reproducible byte
// streams with a checksum, and a few handlers. Transport-neutral: the
// transport comes in as a traits type (transports.hpp).

#include <poll.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/udp_socket.hpp"

namespace sluice::conformance {

using namespace std::chrono_literals;

// ---- byte streams ----------------------------------------------------------------------

// A reproducible pseudo-random byte stream: byte i depends only on (seed, i),
// so a receiver checks any piece at any offset without keeping a copy.
class byte_stream {
 public:
  explicit byte_stream(std::uint64_t seed) noexcept : seed_(seed) {}
  void fill(std::uint64_t pos, char* dst, std::size_t n) const noexcept {
    while (n > 0) {
      std::uint64_t w = word(pos / 8);
      std::size_t off = pos % 8;
      std::size_t take = std::min<std::size_t>(8 - off, n);
      std::memcpy(dst, reinterpret_cast<const char*>(&w) + off, take);
      dst += take;
      pos += take;
      n -= take;
    }
  }
  std::string bytes(std::uint64_t pos, std::size_t n) const {
    std::string s(n, '\0');
    fill(pos, s.data(), n);
    return s;
  }
  // True if `piece` is what the stream holds at `pos`.
  [[nodiscard]] bool matches(std::uint64_t pos, std::string_view piece) const {
    char buf[4096];
    while (!piece.empty()) {
      std::size_t n = std::min(piece.size(), sizeof buf);
      fill(pos, buf, n);
      if (std::memcmp(buf, piece.data(), n) != 0) return false;
      pos += n;
      piece.remove_prefix(n);
    }
    return true;
  }

 private:
  [[nodiscard]] std::uint64_t word(std::uint64_t k) const noexcept {
    std::uint64_t z = seed_ + (k + 1) * 0x9e3779b97f4a7c15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t seed_;
};

// FNV-1a, 64 bits: order-sensitive, so a reordered or altered byte changes it.
class checksum {
 public:
  void update(std::string_view s) noexcept {
    for (unsigned char ch : s) h_ = (h_ ^ ch) * 0x100000001b3ull;
  }
  [[nodiscard]] std::uint64_t value() const noexcept { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

inline std::uint64_t checksum_of(const byte_stream& s, std::uint64_t n) {
  checksum sum;
  std::string buf(1 << 16, '\0');
  for (std::uint64_t pos = 0; pos < n; pos += buf.size()) {
    std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), n - pos));
    s.fill(pos, buf.data(), k);
    sum.update(std::string_view(buf.data(), k));
  }
  return sum.value();
}

// ---- observations --------------------------------------------------------------------------

// What handlers saw, for the test thread to wait on. Any thread.
struct observations {
  std::mutex mu;
  std::condition_variable cv;
  int opened = 0;
  std::map<close_reason, int> closed;
  std::vector<int> close_errors;

  void note_open() {
    std::lock_guard l(mu);
    ++opened;
    cv.notify_all();
  }
  void note_close(close_reason r, int err) {
    std::lock_guard l(mu);
    ++closed[r];
    close_errors.push_back(err);
    cv.notify_all();
  }
  // Runs f under the lock and wakes waiters (for handler-specific state).
  template <class F>
  void update(F&& f) {
    std::lock_guard l(mu);
    f();
    cv.notify_all();
  }
  // Waits until pred() (called under the lock) holds, at most `limit`.
  template <class P>
  bool wait(P pred, std::chrono::milliseconds limit = 20s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, limit, pred);
  }
  // Connections closed so far, for any reason. Takes the lock: not for use
  // inside wait() (whose predicate already holds it; use closes there).
  int total_closed() {
    std::lock_guard l(mu);
    return closes();
  }
  // The same, with the lock held by the caller.
  [[nodiscard]] int closes() const { return static_cast<int>(close_errors.size()); }
};

// ---- loops -----------------------------------------------------------------------------------

// A loop running on its own thread, made there (as the runtime does). The
// test talks to it through call(), which runs a function on the loop's thread
// and waits for its result. Destroying it stops the loop, lets it close what
// is open, and records what it still held (tests assert nothing leaked).
template <class Traits>
class threaded_loop {
 public:
  using loop_type = typename Traits::loop_type;

  explicit threaded_loop(loop_options opts = {}, std::uint16_t id = 0) {
    std::promise<void> made;
    thread_ = std::thread([this, opts, id, &made] {
      loop_ = Traits::make(opts, id);
      made.set_value();
      loop_->run();
      // Everything closed: what is still held is a leak.
      segments_left_ = loop_->pool().segments_in_use();
      connections_left_ = loop_->connection_count();
      loop_.reset();
    });
    made.get_future().wait();
  }
  threaded_loop(const threaded_loop&) = delete;
  threaded_loop& operator=(const threaded_loop&) = delete;
  ~threaded_loop() { stop(); }

  // Runs fn(loop) on the loop's thread; returns its result.
  template <class F>
  auto call(F&& fn) -> decltype(fn(std::declval<loop_type&>())) {
    using R = decltype(fn(std::declval<loop_type&>()));
    std::packaged_task<R()> task([&] { return fn(*loop_); });
    auto result = task.get_future();
    loop_->post([&task] { task(); });
    return result.get();
  }
  // Graceful stop with `grace`; returns once the loop has ended.
  void stop(duration grace = 0s) {
    if (!thread_.joinable()) return;
    loop_->request_stop(grace);
    thread_.join();
  }
  // Any thread (counters only).
  [[nodiscard]] const loop_stats& stats() const { return loop_->stats(); }
  [[nodiscard]] std::size_t segments_left() const { return segments_left_; }
  [[nodiscard]] std::size_t connections_left() const { return connections_left_; }

 private:
  std::unique_ptr<loop_type> loop_;
  std::thread thread_;
  std::size_t segments_left_ = 0;
  std::size_t connections_left_ = 0;
};

// A loop the test steps itself (run_once never blocks), usually with a
// manual clock: deadlines and backpressure are then exact and repeatable.
template <class Traits>
class stepped_loop {
 public:
  using loop_type = typename Traits::loop_type;

  explicit stepped_loop(loop_options opts, manual_clock* clock = nullptr) {
    if (clock != nullptr) opts.clock.manual = clock;
    loop_ = Traits::make(opts, 0);
  }
  ~stepped_loop() { finish(); }

  loop_type& operator*() { return *loop_; }
  loop_type* operator->() { return loop_.get(); }

  // Steps until pred holds, at most `steps` iterations. Kernel sockets move
  // bytes inside the system calls of the test's own clients, so there is
  // normally nothing to wait for; only an iteration that found no event at
  // all yields the CPU for a moment (a peer in another thread may be late).
  bool step_until(const std::function<bool()>& pred, int steps = 5000) {
    for (int i = 0; i < steps; ++i) {
      if (pred()) return true;
      std::uint64_t before = loop_->stats().events.get();
      loop_->run_once();
      if (pred()) return true;
      if (loop_->stats().events.get() == before) {
        pollfd none{-1, 0, 0};
        ::poll(&none, 0, 1);
      }
    }
    return pred();
  }
  void steps(int n) {
    for (int i = 0; i < n; ++i) loop_->run_once();
  }
  // Stops, closes what is left, and returns the segments still in use
  // (0 unless something leaked).
  std::size_t finish() {
    if (!loop_) return 0;
    loop_->stop(0s);
    for (int i = 0; i < 1000 && loop_->connection_count() != 0; ++i) loop_->run_once();
    loop_->run_once();
    std::size_t left = loop_->pool().segments_in_use();
    loop_.reset();
    return left;
  }

 private:
  std::unique_ptr<loop_type> loop_;
};

// ---- handlers ---------------------------------------------------------------------------------

// Echoes everything; after the peer's FIN, echoes what is left, then closes.
class echo_handler : public handler {
 public:
  explicit echo_handler(observations* obs) : obs_(obs) {}
  void on_open(connection&) noexcept override {
    if (obs_) obs_->note_open();
  }
  void on_data(connection& c) noexcept override {
    if (!c.writable()) return;  // backpressure: on_writable brings us back
    if (!c.input().empty()) (void)c.send(std::move(c.input()));
    if (c.peer_shut() && c.input().empty()) c.close(close_reason::peer_closed);
  }
  void on_writable(connection& c) noexcept override { on_data(c); }
  void on_peer_shutdown(connection& c) noexcept override { on_data(c); }
  void on_close(connection& c, close_reason r) noexcept override {
    if (obs_) obs_->note_close(r, c.error());
  }

 private:
  observations* obs_;
};

// Records what the connection received and how it ended; optionally runs a
// function at open, on data, and at the peer's FIN. One per connection.
class scripted_handler : public handler {
 public:
  explicit scripted_handler(observations* obs) : obs_(obs) {}
  std::function<void(connection&)> at_open;
  std::function<void(connection&)> at_data;
  std::function<void(connection&)> at_peer_shutdown;
  std::function<void(connection&)> at_writable;

  // Read after obs says the connection closed (the lock orders it).
  std::string received;
  close_reason reason = close_reason::none;
  int error = 0;
  bool opened = false;
  bool peer_shut_seen = false;
  connection_handle handle{};

  void on_open(connection& c) noexcept override {
    handle = c.handle();
    obs_->update([&] { opened = true; });
    obs_->note_open();
    if (at_open) at_open(c);
  }
  void on_data(connection& c) noexcept override {
    std::string got;
    while (!c.input().empty()) got += std::string(*c.input().next(std::min<std::size_t>(c.input().size(), 16384)));
    obs_->update([&] { received += got; });
    if (at_data) at_data(c);
  }
  void on_writable(connection& c) noexcept override {
    if (at_writable) at_writable(c);
  }
  void on_peer_shutdown(connection& c) noexcept override {
    obs_->update([&] { peer_shut_seen = true; });
    if (at_peer_shutdown) {
      at_peer_shutdown(c);
    } else {
      c.close(close_reason::peer_closed);
    }
  }
  void on_close(connection& c, close_reason r) noexcept override {
    obs_->update([&] {
      reason = r;
      error = c.error();
    });
    obs_->note_close(r, c.error());
  }
  // The bytes received so far (any thread).
  std::string got() {
    std::lock_guard l(obs_->mu);
    return received;
  }

 private:
  observations* obs_;
};

// Echoes datagrams to their sender.
class datagram_echo final : public datagram_handler {
 public:
  void on_datagram(udp_socket& s, const endpoint& from, std::string_view payload) noexcept override {
    (void)s.send_to(from, payload);
  }
};

}  // namespace sluice::conformance
