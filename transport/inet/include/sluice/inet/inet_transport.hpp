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

struct inet_transport_options {
  stack_options stack;
  duration min_sleep = std::chrono::microseconds(20);
  duration max_sleep = std::chrono::milliseconds(1);
  // The transport's name, for messages.
  std::string_view transport_name = "inet";
};

class inet_transport {
 public:
  inet_transport(transport_loop& loop, std::unique_ptr<packet_port> port, const inet_transport_options& opts);
  inet_transport(const inet_transport&) = delete;
  inet_transport& operator=(const inet_transport&) = delete;
  ~inet_transport();

  // ---- data path (transport_backend) ----
  std::size_t poll(duration timeout) noexcept;
  // TCP connections are the stack's tcp_layer's (see tcp_control_block.hpp).
  void read(connection& c) noexcept { stack_->tcp().read(c); }
  // Segments leave in this iteration, one burst per connection (as UDP's do).
  void flush(connection& c) noexcept {
    stack_->tcp().flush(c);
    (void)stack_->flush();
  }
  void shutdown_write(connection& c) noexcept {
    stack_->tcp().shutdown_write(c);
    (void)stack_->flush();
  }
  // The FIN or RST a release sends leaves in this iteration too.
  void release(connection& c) noexcept {
    stack_->tcp().release(c);
    (void)stack_->flush();
  }
  void flush_udp(udp_socket& s) noexcept;
  void fd_released() noexcept {}
  void wake() noexcept;

  // ---- control plane ----
  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts);
  result<connection_handle> connect(const endpoint& to, handler& h, void* context);
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  void close_listener(listener& l) noexcept { stack_->tcp().close_listener(l); }
  void close_udp(udp_socket& s) noexcept { stack_->udp_close(s); }

  [[nodiscard]] stack& ip() noexcept { return *stack_; }
  [[nodiscard]] packet_port& port() noexcept { return *port_; }
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
