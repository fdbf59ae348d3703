#include "sluice/inet/inet_transport.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sluice::inet {

inet_transport::inet_transport(transport_loop& loop, std::unique_ptr<packet_port> port, const inet_transport_options& opts)
    : loop_(loop), port_(std::move(port)), opts_(opts), backoff_(opts.min_sleep) {
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  stack_ = std::make_unique<stack>(loop, *port_, opts_.stack);
  mark_ = steady_now();
}

inet_transport::~inet_transport() {
  stack_.reset();  // gives its buffers back to the port first
  ::close(wakefd_);
}

std::size_t inet_transport::poll(duration timeout) noexcept {
  inet_stats& st = stack_->stats();
  if (!started_) {
    // The first poll is the first moment the loop serves: announce ourselves.
    started_ = true;
    stack_->start();
  }
  time_point t = steady_now();
  (last_useful_ ? st.work_ns : st.idle_poll_ns).add(static_cast<std::uint64_t>((t - mark_).count()));
  // The ACKs the last burst still owes (the applications' answers, sent in
  // the flush phase, carried the others).
  stack_->tcp().send_pending_acks();
  (void)stack_->flush();
  if (timeout != duration::zero() && !stack_->tx_pending()) {
    // Idle long enough (the loop's spin budget): sleep, a little longer each
    // time, but never past the next timer; wake() cuts it short.
    const duration d = std::min(timeout, backoff_);
    backoff_ = std::min(backoff_ * 2, opts_.max_sleep);
    timespec ts{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
    pollfd p{wakefd_, POLLIN, 0};
    if (::ppoll(&p, 1, &ts, nullptr) > 0) drain_wakeup();
    const time_point after = steady_now();
    st.sleeps.add();
    st.sleep_ns.add(static_cast<std::uint64_t>((after - t).count()));
    t = after;
  }
  mark_ = t;
  const std::size_t n = stack_->poll();
  last_useful_ = n != 0;
  if (n != 0) {
    backoff_ = opts_.min_sleep;
    st.polls_useful.add();
  } else {
    st.polls_empty.add();
  }
  (void)stack_->flush();
  return n;
}

void inet_transport::flush_udp(udp_socket& s) noexcept {
  stack_->send_queued(s);
  (void)stack_->flush();  // replies leave in this iteration, as one burst per socket
}

void inet_transport::wake() noexcept {
  std::uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;  // EAGAIN: a wakeup is already pending
}

void inet_transport::drain_wakeup() noexcept {
  std::uint64_t v;
  ssize_t r = ::read(wakefd_, &v, sizeof v);
  (void)r;
}

result<listener*> inet_transport::listen(const endpoint& at, handler& h, const listen_options& opts) {
  return stack_->tcp().listen(at, h, opts);
}

result<connection_handle> inet_transport::connect(const endpoint& to, handler& h, void* context) {
  return stack_->tcp().connect(to, h, context);
}

result<udp_socket*> inet_transport::udp_bind(const endpoint& at, datagram_handler& h) { return stack_->udp_bind(at, h); }

}  // namespace sluice::inet
