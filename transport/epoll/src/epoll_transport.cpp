#include "sluice/epoll/epoll_transport.hpp"

#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

#include "sluice/transport/loop.hpp"
#include "kernel/readiness_io.hpp"
#include "kernel/socket_ops.hpp"

namespace sluice::epoll {

namespace {

constexpr std::uint32_t stream_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

}  // namespace

epoll_transport::epoll_transport(transport_loop& loop) : loop_(loop) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    ::close(epfd_);
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag(nullptr, k_wakeup);
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
}

epoll_transport::~epoll_transport() {
  for (auto& l : loop_.listeners())
    if (l->io.fd >= 0) ::close(l->io.fd);
  ::close(wakefd_);
  ::close(epfd_);
}

// ---- polling ------------------------------------------------------------------------

int epoll_transport::wait(duration timeout) noexcept {
  if (!pending_accepts_.empty()) timeout = duration::zero();
  int n;
  if (timeout == duration::max()) {
    n = ::epoll_wait(epfd_, events_.data(), max_events, -1);
  } else {
    // epoll_pwait2 takes nanoseconds; timers need better than epoll_wait's ms.
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    n = ::epoll_pwait2(epfd_, events_.data(), max_events, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
      n = ::epoll_wait(epfd_, events_.data(), max_events, static_cast<int>(std::min<long long>(ms, INT_MAX)));
    }
  }
  return n < 0 ? 0 : n;  // EINTR: the loop simply comes round again
}

void epoll_transport::serve_pending_accepts() noexcept {
  if (pending_accepts_.empty()) return;
  accept_batch_.swap(pending_accepts_);
  for (listener* l : accept_batch_) accept_ready(*l);
  accept_batch_.clear();
}

void epoll_transport::dispatch(const epoll_event& ev) noexcept {
  const std::uint64_t k = ev.data.u64 & 3;
  void* p = reinterpret_cast<void*>(ev.data.u64 & ~std::uint64_t{3});
  switch (k) {
    case k_connection:
      on_connection_event(*static_cast<connection*>(p), ev.events);
      break;
    case k_listener:
      accept_ready(*static_cast<listener*>(p));
      break;
    case k_udp:
      udp_ready(*static_cast<udp_socket*>(p));
      break;
    default:
      drain_wakeup();
      break;
  }
}

void epoll_transport::on_connection_event(connection& c, std::uint32_t events) noexcept {
  using st = connection::state;
  // Closed earlier in this batch (by a handler): its slot is still ours until
  // the close phase, so the pointer is safe; the event is simply stale.
  if (c.current_state() == st::closed || c.current_state() == st::free) return;
  if (c.current_state() == st::connecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = sockets::pending_error(transport_loop::slot(c).fd);
    if (err == 0 && (events & EPOLLHUP) != 0) err = ECONNREFUSED;
    if (err != 0) {
      loop_.failed(c, sockets::reason_for_errno(err, true), err);
      return;
    }
    loop_.opened(c);
    if (c.current_state() == st::closed) return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) readiness::note_hangup(c, 0);
    loop_.set_read_pending(c, true);
    read(c);
    if (c.current_state() == st::closed) return;
  }
  if ((events & EPOLLOUT) != 0) loop_.flush_ready(c);
}

// ---- reading --------------------------------------------------------------------------

void epoll_transport::read(connection& c) noexcept { readiness::read(loop_, c); }

// ---- writing ---------------------------------------------------------------------------

void epoll_transport::flush(connection& c) noexcept {
  // A short write ends in write_blocked(); the edge-triggered EPOLLOUT that
  // follows calls flush_ready(). Nothing to re-arm.
  (void)readiness::flush(loop_, c, MSG_NOSIGNAL);
}

void epoll_transport::shutdown_write(connection& c) noexcept { ::shutdown(transport_loop::slot(c).fd, SHUT_WR); }

void epoll_transport::release(connection& c) noexcept {
  int fd = transport_loop::slot(c).fd;
  if (fd < 0) return;
  transport_loop::slot(c).fd = -1;
  if (transport_loop::abort_requested(c)) {
    sockets::close_with_reset(fd);
  } else {
    ::close(fd);  // closing removes it from the epoll set
  }
}

// ---- accepting ---------------------------------------------------------------------------

result<listener*> epoll_transport::listen(const endpoint& at, handler& h, const listen_options& opts) {
  auto l = readiness::listen_and_watch(loop_, at, h, opts, &epoll_transport::retry_accept, [&](int fd, listener& lr) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = tag(&lr, k_listener);
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
  });
  if (!l) return l;
  pending_accepts_.reserve(loop_.listeners().size());
  accept_batch_.reserve(loop_.listeners().size());
  // Connections may already be waiting (the edge happened before we watched).
  accept_ready(**l);
  return l;
}

void epoll_transport::accept_ready(listener& l) noexcept {
  if (l.io.closed || l.io.paused) return;
  const bool more = readiness::accept_batch(loop_, l, loop_.options().accept_batch,
                                            [this](int fd, const endpoint& peer, handler& h) { adopt(fd, peer, h); });
  // Stopped: drained, or paused out of descriptors: no edge will come for the
  // waiting connections, and that is right: fd_released() or the retry
  // timer resumes.
  if (!more) return;
  // Batch used up: more may be waiting, and the edge will not come again.
  if (std::find(pending_accepts_.begin(), pending_accepts_.end(), &l) == pending_accepts_.end()) {
    pending_accepts_.push_back(&l);
  }
}

void epoll_transport::adopt(int fd, const endpoint& peer, handler& h) noexcept {
  connection* c = readiness::adopt_socket(loop_, fd, peer, h);
  if (c == nullptr) return;
  epoll_event ev{};
  ev.events = stream_events;
  ev.data.u64 = tag(c, k_connection);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    loop_.failed(*c, close_reason::resource_limit, err);
    return;
  }
  loop_.opened(*c);
}

void epoll_transport::retry_accept(timer& t) noexcept {
  auto* l = static_cast<listener*>(t.context());
  auto& self = static_cast<loop<epoll_transport>&>(l->loop()).transport();
  l->io.paused = false;
  self.accept_ready(*l);
}

void epoll_transport::fd_released() noexcept {
  for (auto& l : loop_.listeners()) {
    if (!l->io.paused) continue;
    l->io.retry.cancel();
    l->io.paused = false;
    accept_ready(*l);
  }
}

void epoll_transport::close_listener(listener& l) noexcept {
  if (l.io.closed) return;
  l.io.closed = true;
  l.io.retry.cancel();
  ::close(l.io.fd);
  l.io.fd = -1;
  std::erase(pending_accepts_, &l);
}

// ---- connecting ---------------------------------------------------------------------------

result<connection_handle> epoll_transport::connect(const endpoint& to, handler& h, void* context) {
  auto started = readiness::begin_connect(loop_, to, h, context);
  if (!started) return started.err();
  connection* c = *started;
  if (c->current_state() != connection::state::connecting) return c->handle();  // failed at once
  // Watch only now: an unconnected socket reads as writable and hung up.
  epoll_event ev{};
  ev.events = stream_events;
  ev.data.u64 = tag(c, k_connection);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, transport_loop::slot(*c).fd, &ev) != 0) {
    loop_.failed(*c, close_reason::resource_limit, errno);
  }
  return c->handle();
}

// ---- UDP ------------------------------------------------------------------------------------

result<udp_socket*> epoll_transport::udp_bind(const endpoint& at, datagram_handler& h) {
  if (!udp_rx_) udp_rx_.reset(new std::byte[udp_batch * udp_slot_bytes]);
  return readiness::bind_udp_and_watch(loop_, at, h, [&](int fd, udp_socket& s) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = tag(&s, k_udp);
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
  });
}

void epoll_transport::udp_ready(udp_socket& s) noexcept {
  if (s.io.closed) return;
  mmsghdr msgs[udp_batch];
  iovec iov[udp_batch];
  endpoint from[udp_batch];
  segment_pool& pool = loop_.pool();
  // Bounded rounds per readiness: other sockets get their turn; the edge is
  // re-armed by leaving data unread only if we ask again, so loop to EAGAIN.
  for (;;) {
    for (int i = 0; i < udp_batch; ++i) {
      iov[i] = {udp_rx_.get() + static_cast<std::size_t>(i) * udp_slot_bytes, udp_slot_bytes};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = from[i].data();
      msgs[i].msg_hdr.msg_namelen = endpoint::capacity();
    }
    int n = ::recvmmsg(s.io.fd, msgs, udp_batch, MSG_DONTWAIT, nullptr);
    loop_.stats().read_calls.add();
    if (n <= 0) return;  // EAGAIN (drained) or an error we cannot act on
    pool.set_deferred(true);
    for (int i = 0; i < n && !s.io.closed; ++i) {
      const msghdr& h = msgs[i].msg_hdr;
      endpoint peer(h.msg_name ? static_cast<const sockaddr*>(h.msg_name) : nullptr, h.msg_namelen);
      readiness::datagram_arrived(loop_, s, peer,
                                  std::string_view(reinterpret_cast<const char*>(iov[i].iov_base), msgs[i].msg_len),
                                  (h.msg_flags & MSG_TRUNC) != 0);
    }
    pool.set_deferred(false);
    pool.reclaim();
    if (n < udp_batch) return;  // fewer than asked for: drained
  }
}

void epoll_transport::flush_udp(udp_socket& s) noexcept { readiness::send_queued_datagrams(loop_, s); }

void epoll_transport::close_udp(udp_socket& s) noexcept {
  if (s.io.closed) return;
  s.io.closed = true;
  ::close(s.io.fd);
  s.io.fd = -1;
}

// ---- wakeups -------------------------------------------------------------------------------

void epoll_transport::wake() noexcept {
  std::uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;  // EAGAIN means a wakeup is already pending: fine
}

void epoll_transport::drain_wakeup() noexcept {
  std::uint64_t v;
  ssize_t r = ::read(wakefd_, &v, sizeof v);
  (void)r;
}

}  // namespace sluice::epoll
