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

#include "sluice/core/loop.hpp"
#include "sluice/transport/socket_ops.hpp"

namespace sluice::epoll {

namespace {

constexpr std::uint32_t stream_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
// Segments handed to one readv; 2 covers the tail room plus a fresh segment.
constexpr int read_iov = 2;
constexpr int write_iov = 64;
// Tail room smaller than this is not worth an iovec of its own.
constexpr std::size_t min_tail_room = 512;
// slot().bits: the peer's FIN (or a hang-up) has been signalled. A short read
// then no longer proves the socket drained: the end of stream still waits to
// be read, and edge-triggered epoll will not report it again.
constexpr std::uint32_t peer_hup = 1;

}  // namespace

epoll_transport::epoll_transport(loop_base& loop) : loop_(loop) {
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

std::size_t epoll_transport::poll(duration timeout) noexcept {
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
  if (n < 0) n = 0;  // EINTR: the loop simply comes round again
  for (int i = 0; i < n; ++i) dispatch(events_[static_cast<std::size_t>(i)]);
  if (!pending_accepts_.empty()) {
    accept_batch_.swap(pending_accepts_);
    for (listener* l : accept_batch_) accept_ready(*l);
    accept_batch_.clear();
  }
  return static_cast<std::size_t>(n);
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
    int err = sockets::pending_error(c.slot().fd);
    if (err == 0 && (events & EPOLLHUP) != 0) err = ECONNREFUSED;
    if (err != 0) {
      loop_.failed(c, sockets::reason_for_errno(err, true), err);
      return;
    }
    loop_.opened(c);
    if (c.current_state() == st::closed) return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) c.slot().bits |= peer_hup;
    loop_.set_read_pending(c, true);
    read(c);
    if (c.current_state() == st::closed) return;
  }
  if ((events & EPOLLOUT) != 0) loop_.flush_ready(c);
}

// ---- reading --------------------------------------------------------------------------

void epoll_transport::read(connection& c) noexcept {
  if (!loop_.may_read(c)) return;  // read_pending stays set; the loop comes back
  buffer_chain& in = c.input();
  segment_pool& pool = loop_.pool();
  const std::size_t budget = loop_.options().read_budget;
  const std::size_t limit = loop_.options().max_input_bytes;
  std::size_t total = 0;
  int err = 0;
  bool eof = false;
  bool starved = false;
  for (;;) {
    iovec iov[read_iov];
    int n = 0;
    std::span<std::byte> tail = in.tail_room();
    if (tail.size() >= min_tail_room) iov[n++] = {tail.data(), tail.size()};
    segment* fresh = pool.allocate();
    if (fresh != nullptr) iov[n++] = {fresh->base + fresh->end, fresh->tailroom()};
    if (n == 0) {
      starved = true;  // out of buffer memory: read again when segments come back
      break;
    }
    std::size_t space = 0;
    for (int i = 0; i < n; ++i) space += iov[i].iov_len;
    // One buffer is the common case (an empty input chain): read(2) skips
    // importing an iovec array.
    ssize_t r = n == 1 ? ::read(c.slot().fd, iov[0].iov_base, iov[0].iov_len) : ::readv(c.slot().fd, iov, n);
    loop_.stats().read_calls.add();
    if (r > 0) {
      auto got = static_cast<std::size_t>(r);
      std::size_t in_tail = 0;
      if (tail.size() >= min_tail_room) {
        in_tail = std::min(got, tail.size());
        in.commit(in_tail);
      }
      if (fresh != nullptr) {
        if (got > in_tail) {
          fresh->end += static_cast<std::uint32_t>(got - in_tail);
          in.append(fresh);
        } else {
          segment_unref(fresh);
        }
      }
      total += got;
      if (got < space && (c.slot().bits & peer_hup) == 0) {
        loop_.set_read_pending(c, false);  // a short read: the socket is drained
        break;
      }
      if (total >= budget || in.size() >= limit) break;  // more may wait: read_pending stays
      continue;
    }
    if (fresh != nullptr) segment_unref(fresh);
    if (r == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      loop_.set_read_pending(c, false);
      break;
    }
    err = errno;
    break;
  }
  if (total != 0) {
    loop_.stats().bytes_read.add(total);
    loop_.data_arrived(c);
    if (c.current_state() == connection::state::closed) return;
  }
  if (err != 0) {
    loop_.failed(c, sockets::reason_for_errno(err, false), err);
  } else if (eof) {
    loop_.peer_shutdown(c);
  } else if (starved) {
    loop_.read_starved(c);
  } else if (loop_base::read_pending(c) && total >= budget) {
    loop_.read_later(c);  // fairness: others first, then the rest of this one
  }
}

// ---- writing ---------------------------------------------------------------------------

void epoll_transport::flush(connection& c) noexcept {
  while (!c.output().empty() && c.current_state() != connection::state::closed) {
    iovec iov[write_iov];
    int n = 0;
    std::size_t bytes = 0;
    c.output().for_each_piece([&](std::string_view piece) {
      iov[n++] = {const_cast<char*>(piece.data()), piece.size()};
      bytes += piece.size();
      return n < write_iov;
    });
    ssize_t r;
    if (n == 1) {
      // One piece (the common case): send(2) avoids the msghdr and iovec import.
      r = ::send(c.slot().fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(n);
      r = ::sendmsg(c.slot().fd, &msg, MSG_NOSIGNAL);
    }
    loop_.stats().write_calls.add();
    if (r >= 0) {
      loop_.wrote(c, static_cast<std::size_t>(r));
      if (static_cast<std::size_t>(r) < bytes) {
        loop_.write_blocked(c);  // the socket buffer is full: EPOLLOUT will tell
        return;
      }
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      loop_.write_blocked(c);
      return;
    }
    int err = errno;
    loop_.failed(c, sockets::reason_for_errno(err, false), err);
    return;
  }
}

void epoll_transport::shutdown_write(connection& c) noexcept { ::shutdown(c.slot().fd, SHUT_WR); }

void epoll_transport::release(connection& c) noexcept {
  int fd = c.slot().fd;
  if (fd < 0) return;
  c.slot().fd = -1;
  if (loop_base::abort_requested(c)) {
    sockets::close_with_reset(fd);
  } else {
    ::close(fd);  // closing removes it from the epoll set
  }
}

// ---- accepting ---------------------------------------------------------------------------

result<listener*> epoll_transport::listen(const endpoint& at, handler& h, const listen_options& opts) {
  auto fd = sockets::open_listener(at, opts);
  if (!fd) return fd.err();
  auto l = std::make_unique<listener>(loop_, h, opts);
  l->io.fd = *fd;
  l->io.local = sockets::local_address(*fd);
  l->io.retry.set_callback(&epoll_transport::retry_accept, l.get());
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = tag(l.get(), k_listener);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, *fd, &ev) != 0) {
    int err = errno;
    ::close(*fd);
    return error::from_errno(err, "cannot watch listener " + at.to_string());
  }
  listener* raw = l.get();
  loop_.track_listener(std::move(l));
  pending_accepts_.reserve(loop_.listeners().size());
  accept_batch_.reserve(loop_.listeners().size());
  // Connections may already be waiting (the edge happened before we watched).
  accept_ready(*raw);
  return raw;
}

void epoll_transport::accept_ready(listener& l) noexcept {
  if (l.io.closed || l.io.paused) return;
  const unsigned batch = loop_.options().accept_batch;
  for (unsigned i = 0; i < batch; ++i) {
    endpoint peer;
    socklen_t len = endpoint::capacity();
    int fd = ::accept4(l.io.fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
          continue;  // that one connection is gone; take the next
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          // Out of descriptors: the connection waits in the backlog. Never
          // spin on it; resume when one of ours closes or after a pause.
          loop_.stats().accept_fd_exhausted.add();
          l.io.paused = true;
          loop_.note_accept_paused();
          loop_.timers().arm_after(l.io.retry, loop_.options().accept_retry);
          return;
        default:
          loop_.stats().accept_errors.add();
          return;
      }
    }
    ++l.io.accepted;
    endpoint from(peer.data(), len);
    if (l.hand_off(fd, from)) continue;  // another loop serves it (--balance)
    adopt(fd, from, l.get_handler());
  }
  // Batch used up: more may be waiting, and the edge will not come again.
  if (std::find(pending_accepts_.begin(), pending_accepts_.end(), &l) == pending_accepts_.end()) {
    pending_accepts_.push_back(&l);
  }
}

void epoll_transport::adopt(int fd, const endpoint& peer, handler& h) noexcept {
  connection* c = loop_.new_connection(h, peer, false);
  if (c == nullptr) {
    ::close(fd);  // over max_connections: counted by the loop
    return;
  }
  sockets::set_nodelay(fd);
  c->slot().fd = fd;
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
  auto s = sockets::start_connect(to);
  if (!s) return s.err();
  connection* c = loop_.new_connection(h, to, true);
  if (c == nullptr) {
    ::close(s->fd);
    return error{"cannot connect to " + to.to_string() + ": connection limit reached on this loop", {}};
  }
  c->set_context(context);
  c->slot().fd = s->fd;
  if (s->connect_errno != EINPROGRESS) {
    // Refused or unreachable at once: reported like a late failure, through
    // on_close in the close phase, so callers see one path.
    loop_.failed(*c, sockets::reason_for_errno(s->connect_errno, true), s->connect_errno);
    return c->handle();
  }
  // Watch only now: an unconnected socket reads as writable and hung up.
  epoll_event ev{};
  ev.events = stream_events;
  ev.data.u64 = tag(c, k_connection);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
    loop_.failed(*c, close_reason::resource_limit, errno);
  }
  return c->handle();
}

// ---- UDP ------------------------------------------------------------------------------------

result<udp_socket*> epoll_transport::udp_bind(const endpoint& at, datagram_handler& h) {
  auto fd = sockets::open_udp(at, true);
  if (!fd) return fd.err();
  if (!udp_rx_) udp_rx_.reset(new std::byte[udp_batch * udp_slot_bytes]);
  auto s = std::make_unique<udp_socket>(loop_, h);
  s->io.fd = *fd;
  s->io.local = sockets::local_address(*fd);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = tag(s.get(), k_udp);
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, *fd, &ev) != 0) {
    int err = errno;
    ::close(*fd);
    return error::from_errno(err, "cannot watch UDP socket " + at.to_string());
  }
  udp_socket* raw = s.get();
  loop_.track_udp(std::move(s));
  return raw;
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
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        loop_.stats().datagrams_dropped.add();
        continue;
      }
      loop_.stats().datagrams_in.add();
      loop_.stats().bytes_read.add(msgs[i].msg_len);
      endpoint peer(h.msg_name ? static_cast<const sockaddr*>(h.msg_name) : nullptr, h.msg_namelen);
      s.get_handler().on_datagram(
          s, peer, std::string_view(reinterpret_cast<const char*>(iov[i].iov_base), msgs[i].msg_len));
    }
    pool.set_deferred(false);
    pool.reclaim();
    if (n < udp_batch) return;  // fewer than asked for: drained
  }
}

void epoll_transport::flush_udp(udp_socket& s) noexcept {
  std::size_t total = s.queued_count();
  std::size_t done = 0;
  while (done < total) {
    mmsghdr msgs[udp_batch];
    iovec iov[udp_batch];
    std::size_t n = std::min<std::size_t>(total - done, udp_batch);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& q = s.queued_at(done + i);
      iov[i] = {const_cast<std::byte*>(s.arena() + q.offset), q.size};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(q.to.data());
      msgs[i].msg_hdr.msg_namelen = q.to.size();
    }
    int r = ::sendmmsg(s.io.fd, msgs, static_cast<unsigned>(n), MSG_NOSIGNAL);
    loop_.stats().write_calls.add();
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      // Socket buffer full or the destination refused: UDP may drop, but we count it.
      loop_.stats().datagrams_dropped.add(n);
      done += n;
      continue;
    }
    for (int i = 0; i < r; ++i) loop_.stats().bytes_written.add(msgs[i].msg_len);
    loop_.stats().datagrams_out.add(static_cast<std::uint64_t>(r));
    done += static_cast<std::size_t>(r);
  }
  s.dequeue(total);
}

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
