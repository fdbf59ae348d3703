#pragma once
// The loop backend for the user-space stack (it satisfies transport_backend,
// loop.hpp): one packet_port and one stack per loop. The DPDK transport
// (transport/dpdk) and the memory transport (transport/memory) are this
// class with their own name and port.
//
// Adaptive polling. While frames flow the loop polls without sleeping; once
// the loop's spin budget (--spin) has passed without work, the loop lets the
// poll block, and this transport then sleeps between polls (it has no file
// descriptor to wait on: a DPDK queue raises no event), starting at
// min_sleep and doubling up to max_sleep, until a frame arrives, a timer is
// due or another thread wakes it. So an idle gateway costs a few hundred
// wakeups a second, not a core; the first frame after a quiet spell waits at
// most max_sleep. Work, idle polling and sleep are counted apart
// (inet_stats: work_ns, idle_poll_ns, sleep_ns).
//
// Owner core only, except wake() (any thread).

#include <memory>
#include <string>
#include <string_view>

#include "sluice/transport/loop.hpp"
#include "sluice/inet/packet_port.hpp"
#include "sluice/inet/stack.hpp"

namespace sluice::inet {

// How an inet_transport is set up: its stack and its adaptive polling.
struct inet_transport_options {
  stack_options stack;                                 // addresses, TCP settings and limits of the stack
  duration min_sleep = std::chrono::microseconds(20);  // first sleep of an idle loop between polls
  duration max_sleep = std::chrono::milliseconds(1);   // longest sleep between polls (the latency of the first frame after a quiet spell)
  // The transport's name, for messages.
  std::string_view transport_name = "inet";
};

// The user-space stack as the transport of one loop (see the file comment);
// loop<dpdk_transport> and loop<memory_transport> own one each. Its public
// members are the transport_backend contract (loop.hpp) plus access to the
// stack and the port.
class inet_transport {
 public:
  // A transport over `port` (owned from now on) for loop; makes the stack and
  // an eventfd for wake(); throws std::runtime_error if the eventfd cannot be
  // had.
  inet_transport(transport_loop& loop, std::unique_ptr<packet_port> port, const inet_transport_options& opts);
  inet_transport(const inet_transport&) = delete;
  inet_transport& operator=(const inet_transport&) = delete;
  ~inet_transport();

  // ---- data path (transport_backend) ----
  // Sends the ACKs still owed; if allowed to block (timeout not zero), sleeps
  // as the file comment says; then receives and processes one burst from the
  // port and sends what it produced. Returns the frames handled.
  std::size_t poll(duration timeout) noexcept;
  // TCP connections are the stack's tcp_layer's (see tcp_control_block.hpp).
  void read(connection& c) noexcept { stack_->tcp().read(c); }
  // Segments leave in this iteration, one burst per connection (as UDP's do).
  void flush(connection& c) noexcept {
    stack_->tcp().flush(c);
    (void)stack_->flush();
  }
  // Queues c's FIN; it leaves in this iteration.
  void shutdown_write(connection& c) noexcept {
    stack_->tcp().shutdown_write(c);
    (void)stack_->flush();
  }
  // The FIN or RST a release sends leaves in this iteration too.
  void release(connection& c) noexcept {
    stack_->tcp().release(c);
    (void)stack_->flush();
  }
  // Sends s's queued datagrams, in one burst.
  void flush_udp(udp_socket& s) noexcept;
  // Nothing to do: the stack has no descriptors to run out of.
  void fd_released() noexcept {}
  // Interrupts a sleep between polls (writes the eventfd). Any thread.
  void wake() noexcept;

  // ---- control plane ----
  // Listens on `at` in the stack's TCP (see loop_base::listen).
  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts);
  // Starts a TCP handshake to `to` (see loop_base::connect).
  result<connection_handle> connect(const endpoint& to, handler& h, void* context);
  // Binds a UDP port of the stack (see loop_base::udp_bind).
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  // Stops accepting on l.
  void close_listener(listener& l) noexcept { stack_->tcp().close_listener(l); }
  // Closes s.
  void close_udp(udp_socket& s) noexcept { stack_->udp_close(s); }

  // The stack of this loop (addresses, ARP, TCP, statistics).
  [[nodiscard]] stack& ip() noexcept { return *stack_; }
  // The port under the stack.
  [[nodiscard]] packet_port& port() noexcept { return *port_; }
  // The stack's counters, names prefixed with `prefix` (control plane).
  void metrics(const std::string& prefix, metric_list& out) const { stack_->metrics(prefix, out); }

 private:
  void drain_wakeup() noexcept;

  transport_loop& loop_;
  std::unique_ptr<packet_port> port_;  // before the stack: it must outlive it
  std::unique_ptr<stack> stack_;
  inet_transport_options opts_;
  int wakefd_ = -1;
  bool started_ = false;
  duration backoff_;
  // Where the time between two polls goes (see the class comment).
  time_point mark_{};
  bool last_useful_ = false;
};

}  // namespace sluice::inet
