#pragma once
// The runtime: one run-to-completion loop per planned core, each on its own
// thread, each owning its transport instance, connections, pool and timers.
// One exception: run() with a single loop on a kernel transport runs that
// loop on the calling thread, so that a one-core server is a single-threaded
// process (glibc then skips the cancellation bookkeeping that it wraps around
// every system call of a process with threads).
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
#include "sluice/core/mail_hub.hpp"
#include "sluice/base/result.hpp"
#include "sluice/platform/binding.hpp"
#include "sluice/platform/cpu_claim.hpp"
#include "sluice/platform/placement.hpp"
#include "sluice/platform/topology.hpp"

namespace sluice {

struct transport_entry;  // the transport contract (sluice/transport/registry.hpp)

// How connections reach loops on kernel transports.
enum class balance_policy {
  reuse_port,   // every loop has its own listening socket; the kernel spreads them
  round_robin,  // one acceptor (loop 0) hands connections out in turn
  least_conn,   // one acceptor hands each to the loop with the fewest open
  source_hash,  // one acceptor: the same source address always to the same loop
};
// The policy --balance names: "reuseport", "round-robin", "least-conn" or
// "source-hash"; anything else is an error listing them.
result<balance_policy> parse_balance(std::string_view name);
// reuse_port where the kernel spreads connections over per-loop sockets
// (Linux SO_REUSEPORT, FreeBSD SO_REUSEPORT_LB); round_robin where it does
// not (macOS: SO_REUSEPORT shares a port without balancing).
balance_policy default_balance() noexcept;
// The policy's --balance name ("reuseport", "round-robin", ...).
std::string_view to_string(balance_policy p) noexcept;

// Everything a runtime needs to know before it starts; app_options fills it in
// from the shared flags. A plain value, copied into the runtime.
struct runtime_config {
  // A registry name or "auto". A transport's own settings (DPDK's EAL
  // arguments, the user-space stack's address) are its flags, declared by
  // the transport itself (app_options::declare).
  std::string transport = "auto";
  // Which cores run loops (--cores, --cpuset, --numa-node, --nic, ...).
  platform::placement_request placement{};
  // Bind each loop's thread to its planned CPU (real machines only).
  bool pin = true;
  balance_policy balance = default_balance();  // how connections reach loops (kernel transports; --balance)
  // Plan against this topology instead of discovering the machine (tests).
  std::shared_ptr<const platform::topology> topology;
  loop_options loop{};  // every loop's options (limits, timeouts, pool, polling)
  // Graceful stop: how long open connections may take to finish.
  duration shutdown_timeout = std::chrono::seconds(5);
  // SIGINT and SIGTERM stop the runtime gracefully (run() only).
  bool handle_signals = true;
  // When the loops have ended, print metrics() to stderr (--print-metrics).
  bool print_metrics = false;
};

// A set of loops on their own threads (see the file comment): the way an app
// serves. Configure it (listen, udp_bind, on_start), then run() or
// start()/stop()/wait().
class runtime {
 public:
  // Makes the handler of one loop, on that loop's thread; called once per loop
  // and listen().
  using handler_factory = std::function<std::unique_ptr<handler>(loop_base&)>;
  // Makes the datagram handler of one loop, on that loop's thread; once per
  // loop and udp_bind().
  using datagram_factory = std::function<std::unique_ptr<datagram_handler>(loop_base&)>;
  // Runs on a loop's thread before it serves; an error stops the whole start.
  using start_hook = std::function<result<void>(loop_base&)>;
  // Runs once, when every loop is up (see on_serving()).
  using serving_hook = std::function<void()>;

  // A runtime for cfg; nothing starts until start() or run().
  explicit runtime(runtime_config cfg);
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  // Stops and joins the loops if they still run.
  ~runtime();

  // Listens on `at`: with balance reuse_port, on every loop with one
  // SO_REUSEPORT socket each; otherwise loop 0 accepts and hands connections
  // to loops by the policy. Each loop gets its own handler from make_handler
  // (called on that loop's thread).
  void listen(const endpoint& at, handler_factory make_handler);
  // Binds a UDP socket on every loop (SO_REUSEPORT).
  void udp_bind(const endpoint& at, datagram_factory make_handler);
  // Runs on each loop's thread before it serves, in loop order.
  void on_start(start_hook hook);
  // Runs once, on loop 0's thread, after every loop has started (each is
  // pinned, named and ran its start hooks; every address is bound, so
  // bound() holds the ports chosen for port 0) and before loop 0 serves. The
  // place to announce "serving on ADDRESS": a reader of that line may count
  // on the whole process being up. Not run when a start failed.
  void on_serving(serving_hook hook);

  // Starts every loop; returns once all are serving, or the first error.
  result<void> start();
  // Blocks until every loop has ended.
  void wait();
  // Waits up to d for every loop to end; true if they all have (then call wait()).
  [[nodiscard]] bool wait_for(duration d);
  // start(), then wait for SIGINT/SIGTERM (if handle_signals) or for the loops
  // to end by themselves; stops gracefully. With one loop on a kernel
  // transport, that loop runs here, on the calling thread (pinned to its CPU
  // while it runs; the thread's binding is put back after). Returns an exit code: 0, or 2 after
  // printing a start-up error to stderr as one line.
  int run(std::string_view program);
  // Graceful stop of every loop (stop accepting, drain for `grace`). Any thread.
  void stop(duration grace);
  // stop() with the configured shutdown_timeout as the grace period.
  void stop() { stop(cfg_.shutdown_timeout); }

  // After start(): the addresses each listen() call is bound to, in call order
  // (port 0 resolved).
  [[nodiscard]] const std::vector<endpoint>& bound() const noexcept { return bound_; }
  // After start(): the addresses each udp_bind() call is bound to, in call
  // order (port 0 resolved).
  [[nodiscard]] std::vector<endpoint> udp_bound() const { return udp_bound_; }
  // The number of loops: one per planned core (0 before start()).
  [[nodiscard]] unsigned loop_count() const noexcept { return static_cast<unsigned>(plan_.loops.size()); }
  // After start(): where each loop runs.
  [[nodiscard]] const platform::placement_plan& plan() const noexcept { return plan_; }
  // After start(): per loop, whether its thread is really pinned (else why not).
  [[nodiscard]] const std::vector<std::string>& pinning() const noexcept { return pinning_; }
  // Loop i (valid between start() and the end of wait()). Its owner thread
  // alone may use it, except for its any-thread methods (stats, post, ...).
  [[nodiscard]] loop_base& loop(unsigned i) noexcept { return *loops_[i]; }
  // The configuration it was made with.
  [[nodiscard]] const runtime_config& config() const noexcept { return cfg_; }
  // The selected transport's name ("none" before start()).
  [[nodiscard]] std::string_view transport_name() const noexcept;
  // Every loop's counters ("loopN.NAME"), its transport's ("loopN.inet...."),
  // then the process-wide ones (device statistics). Valid while the loops
  // exist (after start(), until wait() returns). Any thread; control plane.
  [[nodiscard]] metric_list metrics() const;

 private:
  struct balancer;
  result<void> start_loops(bool on_caller);
  // A loop's life on the thread that runs it: pinning, making the loop and
  // its start hooks (in turn, loop 0 first), then serving until it ends.
  void thread_main(unsigned index);
  void prepare_loop(unsigned index);
  void serve_loop(unsigned index);
  result<void> start_loop(loop_base& l, unsigned index);
  void finish_transport() noexcept;
  static bool distribute(void* ctx, int fd, const endpoint& peer) noexcept;

  runtime_config cfg_;
  const transport_entry* entry_ = nullptr;
  std::shared_ptr<const platform::topology> topo_;
  platform::placement_plan plan_;
  // Busy-polling loops' CPU claims (cpu_claim.hpp), held from start until
  // wait() has finished the transport.
  platform::cpu_claims claims_;
  std::vector<std::string> pinning_;
  std::vector<std::unique_ptr<platform::numa_memory>> memory_;
  std::unique_ptr<mail_hub> hub_;
  std::vector<std::unique_ptr<balancer>> balancers_;

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
  std::vector<serving_hook> serving_hooks_;
  std::vector<endpoint> bound_;
  std::vector<endpoint> udp_bound_;

  std::vector<std::thread> threads_;
  // run() with one loop on a transport that allows it: the loop runs on
  // run()'s thread (no thread is made), pinned there until it ends.
  bool on_caller_ = false;
  std::unique_ptr<platform::thread_binding_keeper> caller_binding_;
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
  bool transport_started_ = false;  // init_process ran: finish_process is owed
};

}  // namespace sluice
