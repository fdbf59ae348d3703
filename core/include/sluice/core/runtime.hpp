#pragma once
// The runtime: one run-to-completion loop per planned core, each on its own
// thread, each owning its transport instance, connections, pool and timers.
//
// Start-up is sequential and checked: loops are made on their own threads,
// then run their start hooks one at a time, loop 0 first (so that a port-0
// listener is resolved by loop 0 and the others join the same port), and any
// error stops the whole start with a plain message. After that the loops run
// independently until stop().
//
// Thread safety: construct, configure (listen, on_start) and run from one
// thread; stop() and request_stop() from any thread.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/core/endpoint.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/loop_options.hpp"
#include "sluice/core/result.hpp"
#include "sluice/transport/registry.hpp"

namespace sluice {

struct runtime_config {
  // A registry name or "auto".
  std::string transport = "auto";
  transport_settings transport_opts{};
  // Number of loops (threads).
  unsigned loops = 1;
  loop_options loop{};
  // Graceful stop: how long open connections may take to finish.
  duration shutdown_timeout = std::chrono::seconds(5);
  // SIGINT and SIGTERM stop the runtime gracefully (run() only).
  bool handle_signals = true;
};

class runtime {
 public:
  using handler_factory = std::function<std::unique_ptr<handler>(loop_base&)>;
  using datagram_factory = std::function<std::unique_ptr<datagram_handler>(loop_base&)>;
  using start_hook = std::function<result<void>(loop_base&)>;

  explicit runtime(runtime_config cfg);
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  // Stops and joins the loops if they still run.
  ~runtime();

  // Listens on `at` on every loop with one SO_REUSEPORT socket each; each
  // loop gets its own handler from make_handler (called on that loop's thread).
  void listen(const endpoint& at, handler_factory make_handler);
  // Binds a UDP socket on every loop (SO_REUSEPORT).
  void udp_bind(const endpoint& at, datagram_factory make_handler);
  // Runs on each loop's thread before it serves, in loop order.
  void on_start(start_hook hook);

  // Starts every loop; returns once all are serving, or the first error.
  result<void> start();
  // Blocks until every loop has ended.
  void wait();
  // Waits up to d for every loop to end; true if they all have (then call wait()).
  [[nodiscard]] bool wait_for(duration d);
  // start(), then wait for SIGINT/SIGTERM (if handle_signals) or for the loops
  // to end by themselves; stops gracefully. Returns an exit code: 0, or 2 after
  // printing a start-up error to stderr as one line.
  int run(std::string_view program);
  // Graceful stop of every loop (stop accepting, drain for `grace`). Any thread.
  void stop(duration grace);
  void stop() { stop(cfg_.shutdown_timeout); }

  // After start(): the addresses each listen() call is bound to, in call order
  // (port 0 resolved).
  [[nodiscard]] const std::vector<endpoint>& bound() const noexcept { return bound_; }
  [[nodiscard]] std::vector<endpoint> udp_bound() const { return udp_bound_; }
  [[nodiscard]] unsigned loop_count() const noexcept { return cfg_.loops; }
  // Loop i (valid between start() and the end of wait()). Its owner thread
  // alone may use it, except for its any-thread methods (stats, post, ...).
  [[nodiscard]] loop_base& loop(unsigned i) noexcept { return *loops_[i]; }
  [[nodiscard]] const runtime_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::string_view transport_name() const noexcept;

 private:
  void thread_main(unsigned index);
  result<void> start_loop(loop_base& l, unsigned index);

  runtime_config cfg_;
  const transport_entry* entry_ = nullptr;

  struct listen_spec {
    endpoint at;
    handler_factory make;
  };
  struct udp_spec {
    endpoint at;
    datagram_factory make;
  };
  std::vector<listen_spec> listens_;
  std::vector<udp_spec> udps_;
  std::vector<start_hook> hooks_;
  std::vector<endpoint> bound_;
  std::vector<endpoint> udp_bound_;

  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<loop_base>> loops_;
  // Handlers per loop, destroyed after their loop.
  std::vector<std::vector<std::unique_ptr<handler>>> handlers_;
  std::vector<std::vector<std::unique_ptr<datagram_handler>>> datagram_handlers_;

  std::mutex mu_;
  std::condition_variable cv_;
  unsigned turn_ = 0;        // which loop runs its start hooks now
  unsigned started_ = 0;     // loops done starting (ok or not)
  unsigned finished_ = 0;    // loops whose run() returned
  bool failed_ = false;
  std::string error_;
  int done_fd_ = -1;         // eventfd: written when the last loop ends
};

}  // namespace sluice
