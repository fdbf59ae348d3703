#include "sluice/kqueue/kqueue_transport.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "sluice/transport/loop.hpp"
#include "sluice/platform/socket_options.hpp"
#include "kernel/readiness_io.hpp"
#include "kernel/socket_ops.hpp"

namespace sluice::kqueue {

namespace {

// Connections: read reported on every arrival (EV_CLEAR); write reported once
// per arming (EV_DISPATCH), armed when a write falls short.
constexpr unsigned short read_flags = EV_ADD | EV_CLEAR;
constexpr unsigned short write_flags = EV_ADD | EV_CLEAR | EV_DISPATCH;
// The EVFILT_USER event that wake() triggers.
constexpr std::uintptr_t wake_ident = 1;
// slot().bits next to readiness::peer_hup: input was signalled while the
// connect was still completing; read it once the connection opens.
constexpr std::uint32_t early_read = 2;

// struct kevent's udata is void* on FreeBSD and macOS, intptr_t on NetBSD.
using udata_type = decltype(std::declval<struct kevent>().udata);

// Templates, so that only the branch for this system's type is compiled.
template <class U = udata_type>
U to_udata(std::uintptr_t v) noexcept {
  if constexpr (std::is_pointer_v<U>) {
    return reinterpret_cast<U>(v);
  } else {
    return static_cast<U>(v);
  }
}

template <class U = udata_type>
std::uintptr_t from_udata(U u) noexcept {
  if constexpr (std::is_pointer_v<U>) {
    return reinterpret_cast<std::uintptr_t>(u);
  } else {
    return static_cast<std::uintptr_t>(u);
  }
}

// Field by field rather than EV_SET: some systems' EV_SET is a C compound
// literal, which ISO C++ (and -Wpedantic) rejects.
struct kevent make_change(std::uintptr_t ident, short filter, unsigned short flags, std::uintptr_t udata) noexcept {
  struct kevent kev;
  std::memset(&kev, 0, sizeof kev);
  kev.ident = ident;
  kev.filter = static_cast<decltype(kev.filter)>(filter);
  kev.flags = static_cast<decltype(kev.flags)>(flags);
  kev.udata = to_udata(udata);
  return kev;
}

std::uintptr_t tag_of(void* object, std::uintptr_t k) noexcept { return reinterpret_cast<std::uintptr_t>(object) | k; }

}  // namespace

kqueue_transport::kqueue_transport(transport_loop& loop) : loop_(loop) {
  kq_ = ::kqueue();
  if (kq_ < 0) throw std::runtime_error(std::string("kqueue: ") + std::strerror(errno));
  (void)::fcntl(kq_, F_SETFD, FD_CLOEXEC);
  if (int err = register_now(wake_ident, EVFILT_USER, EV_ADD | EV_CLEAR, nullptr, k_wakeup); err != 0) {
    ::close(kq_);
    throw std::runtime_error(std::string("kevent(EVFILT_USER): ") + std::strerror(err));
  }
}

kqueue_transport::~kqueue_transport() {
  for (auto& l : loop_.listeners())
    if (l->io.fd >= 0) ::close(l->io.fd);
  ::close(kq_);
}

// ---- interest changes -----------------------------------------------------------------

void kqueue_transport::change(int fd, short filter, unsigned short flags, void* object, kind k) noexcept {
  if (nchanges_ == max_changes) submit_changes();
  changes_[static_cast<std::size_t>(nchanges_++)] =
      make_change(static_cast<std::uintptr_t>(fd), filter, flags, tag_of(object, k));
}

void kqueue_transport::submit_changes() noexcept {
  // EV_RECEIPT: every change reports back in receipts_, so this call neither
  // waits nor returns events, and a failing change is not lost.
  for (int i = 0; i < nchanges_; ++i) changes_[static_cast<std::size_t>(i)].flags |= EV_RECEIPT;
  const timespec zero{};
  int n = ::kevent(kq_, changes_.data(), nchanges_, receipts_.data(), nchanges_, &zero);
  nchanges_ = 0;
  for (int i = 0; i < n; ++i) {
    const struct kevent& r = receipts_[static_cast<std::size_t>(i)];
    if ((r.flags & EV_ERROR) != 0 && r.data != 0) change_failed(r);
  }
}

int kqueue_transport::register_now(std::uintptr_t ident, short filter, unsigned short flags, void* object,
                                   kind k) noexcept {
  struct kevent kev = make_change(ident, filter, static_cast<unsigned short>(flags | EV_RECEIPT), tag_of(object, k));
  struct kevent out;
  const timespec zero{};
  int n = ::kevent(kq_, &kev, 1, &out, 1, &zero);
  if (n < 0) return errno;
  if (n == 1 && (out.flags & EV_ERROR) != 0) return static_cast<int>(out.data);
  return 0;
}

void kqueue_transport::forget_changes(int fd) noexcept {
  // A change for a descriptor about to be closed would fail (or, were the
  // number reused before the next kevent(), reach the wrong socket).
  int kept = 0;
  for (int i = 0; i < nchanges_; ++i) {
    const struct kevent& c = changes_[static_cast<std::size_t>(i)];
    if (c.ident != static_cast<std::uintptr_t>(fd)) changes_[static_cast<std::size_t>(kept++)] = c;
  }
  nchanges_ = kept;
}

// ---- polling --------------------------------------------------------------------------

std::size_t kqueue_transport::poll(duration timeout) noexcept {
  timespec ts{};
  const timespec* wait = nullptr;  // no limit
  if (timeout != duration::max()) {
    // kevent() caps a wait at 24 hours (kqueue(2), BUGS); say so rather than
    // rely on it.
    const duration d = std::min<duration>(timeout, std::chrono::hours(24));
    ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
    wait = &ts;
  }
  // The changes queued since the last call go in with the wait: one system
  // call per iteration.
  int n = ::kevent(kq_, changes_.data(), nchanges_, events_.data(), max_events, wait);
  // Applied even when interrupted (kqueue(2): "When kevent() call fails with
  // EINTR error, all changes in the changelist have been applied").
  nchanges_ = 0;
  if (n < 0) return 0;  // EINTR: the loop comes round again
  for (int i = 0; i < n; ++i) dispatch(events_[static_cast<std::size_t>(i)]);
  return static_cast<std::size_t>(n);
}

void kqueue_transport::dispatch(const struct kevent& ev) noexcept {
  if ((ev.flags & EV_ERROR) != 0) {
    if (ev.data != 0) change_failed(ev);
    return;
  }
  const std::uintptr_t u = from_udata(ev.udata);
  void* p = reinterpret_cast<void*>(u & ~std::uintptr_t{3});
  switch (static_cast<kind>(u & 3)) {
    case k_connection: {
      connection& c = *static_cast<connection*>(p);
      if (ev.filter == EVFILT_READ) {
        on_read_event(c, ev);
      } else {
        on_write_event(c, ev);
      }
      break;
    }
    case k_listener:
      accept_ready(*static_cast<listener*>(p), static_cast<std::int64_t>(ev.data));
      break;
    case k_udp:
      udp_ready(*static_cast<udp_socket*>(p));
      break;
    case k_wakeup:
      break;  // it only ended the wait; the loop drains its inbox next
  }
}

void kqueue_transport::change_failed(const struct kevent& ev) noexcept {
  const std::uintptr_t u = from_udata(ev.udata);
  void* p = reinterpret_cast<void*>(u & ~std::uintptr_t{3});
  const int err = static_cast<int>(ev.data);
  switch (static_cast<kind>(u & 3)) {
    case k_connection: {
      // Slots never move, so the pointer is safe; the fd check makes sure the
      // change was for this connection's current socket.
      connection& c = *static_cast<connection*>(p);
      if (transport_loop::slot(c).fd == static_cast<int>(ev.ident)) loop_.failed(c, close_reason::resource_limit, err);
      break;
    }
    default:
      loop_.stats().accept_errors.add();  // a listener could not be re-armed
      break;
  }
}

void kqueue_transport::on_read_event(connection& c, const struct kevent& ev) noexcept {
  using st = connection::state;
  // Closed earlier in this batch (by a handler): its slot is still ours until
  // the close phase, so the pointer is safe; the event is simply stale.
  if (c.current_state() == st::closed || c.current_state() == st::free) return;
  if ((ev.flags & EV_EOF) != 0) readiness::note_hangup(c, static_cast<int>(ev.fflags));
  if (c.current_state() == st::connecting) {
    if ((ev.flags & EV_EOF) != 0) {
      // Hung up before it was established: the connect failed.
      int err = ev.fflags != 0 ? static_cast<int>(ev.fflags) : sockets::pending_error(transport_loop::slot(c).fd);
      if (err == 0) err = ECONNREFUSED;
      loop_.failed(c, sockets::reason_for_errno(err, true), err);
    } else {
      transport_loop::slot(c).bits |= early_read;  // read it once the write event opens it
    }
    return;
  }
  loop_.set_read_pending(c, true);
  read(c);
}

void kqueue_transport::on_write_event(connection& c, const struct kevent& ev) noexcept {
  using st = connection::state;
  if (c.current_state() == st::closed || c.current_state() == st::free) return;
  if (c.current_state() != st::connecting) {
    loop_.flush_ready(c);  // armed because a write fell short: room again
    return;
  }
  // Connect completion. The error comes with EV_EOF (which reading may have
  // cleared from the socket) or from SO_ERROR.
  int err = (ev.flags & EV_EOF) != 0 && ev.fflags != 0 ? static_cast<int>(ev.fflags)
                                                        : sockets::pending_error(transport_loop::slot(c).fd);
  if (err == 0 && (ev.flags & EV_EOF) != 0) err = ECONNREFUSED;  // hung up without a reason
  if (err != 0) {
    loop_.failed(c, sockets::reason_for_errno(err, true), err);
    return;
  }
  loop_.opened(c);
  if (c.current_state() == st::closed) return;
  if ((transport_loop::slot(c).bits & early_read) != 0) {
    transport_loop::slot(c).bits &= ~early_read;
    loop_.set_read_pending(c, true);
    read(c);
  }
}

// ---- reading and writing ---------------------------------------------------------------------

void kqueue_transport::read(connection& c) noexcept { readiness::read(loop_, c); }

void kqueue_transport::flush(connection& c) noexcept {
  if (readiness::flush(loop_, c, platform::send_nosignal) == readiness::flush_result::blocked) {
    // Arm the write filter for one report (EV_DISPATCH disarms it again). Its
    // registration runs the filter, so room that appeared meanwhile is not
    // missed. kevent() replaces udata on every change: pass it again.
    change(transport_loop::slot(c).fd, EVFILT_WRITE, EV_ENABLE, &c, k_connection);
  }
}

void kqueue_transport::shutdown_write(connection& c) noexcept { ::shutdown(transport_loop::slot(c).fd, SHUT_WR); }

void kqueue_transport::release(connection& c) noexcept {
  int fd = transport_loop::slot(c).fd;
  if (fd < 0) return;
  transport_loop::slot(c).fd = -1;
  forget_changes(fd);
  if (transport_loop::abort_requested(c)) {
    sockets::close_with_reset(fd);
  } else {
    ::close(fd);  // closing removes its knotes
  }
}

// ---- accepting ---------------------------------------------------------------------------------

result<listener*> kqueue_transport::listen(const endpoint& at, handler& h, const listen_options& opts) {
  // Level-triggered: while connections wait, every kevent() reports them, so
  // a batch cut short by accept_batch goes on in the next iteration. The
  // registration runs the filter: connections already waiting are reported.
  return readiness::listen_and_watch(loop_, at, h, opts, &kqueue_transport::retry_accept, [&](int fd, listener& lr) {
    return register_now(static_cast<std::uintptr_t>(fd), EVFILT_READ, EV_ADD, &lr, k_listener);
  });
}

void kqueue_transport::accept_ready(listener& l, std::int64_t waiting) noexcept {
  if (l.io.closed || l.io.paused || l.io.fd < 0) return;
  // The filter said how many connections wait: take that many (within the
  // batch) and no accept() ends in EAGAIN. More than a batch: the
  // level-triggered filter reports the rest next time.
  unsigned n = loop_.options().accept_batch;
  if (waiting > 0 && static_cast<std::uint64_t>(waiting) < n) n = static_cast<unsigned>(waiting);
  readiness::accept_batch(loop_, l, n, [this](int fd, const endpoint& peer, handler& h) { adopt(fd, peer, h); });
  // Out of descriptors: the level-triggered filter would report the waiting
  // connection on every kevent(); disable it until a connection closes
  // (fd_released) or accept_retry passes.
  if (l.io.paused) change(l.io.fd, EVFILT_READ, EV_DISABLE, &l, k_listener);
}

void kqueue_transport::retry_accept(timer& t) noexcept {
  auto* l = static_cast<listener*>(t.context());
  auto& self = static_cast<loop<kqueue_transport>&>(l->loop()).transport();
  if (l->io.closed || !l->io.paused) return;
  l->io.paused = false;
  // Enabling runs the filter: waiting connections are reported in the next poll.
  self.change(l->io.fd, EVFILT_READ, EV_ENABLE, l, k_listener);
}

void kqueue_transport::fd_released() noexcept {
  for (auto& l : loop_.listeners()) {
    if (!l->io.paused || l->io.closed) continue;
    l->io.retry.cancel();
    l->io.paused = false;
    change(l->io.fd, EVFILT_READ, EV_ENABLE, l.get(), k_listener);
  }
}

void kqueue_transport::adopt(int fd, const endpoint& peer, handler& h) noexcept {
  connection* c = readiness::adopt_socket(loop_, fd, peer, h);
  if (c == nullptr) return;
  change(fd, EVFILT_READ, read_flags, c, k_connection);
  // The write filter starts disarmed: a new socket has room; flush() arms it
  // when a write falls short.
  change(fd, EVFILT_WRITE, write_flags | EV_DISABLE, c, k_connection);
  loop_.opened(*c);
}

void kqueue_transport::close_listener(listener& l) noexcept {
  if (l.io.closed) return;
  l.io.closed = true;
  l.io.retry.cancel();
  if (l.io.fd >= 0) {
    forget_changes(l.io.fd);
    ::close(l.io.fd);
    l.io.fd = -1;
  }
}

// ---- connecting -------------------------------------------------------------------------------

result<connection_handle> kqueue_transport::connect(const endpoint& to, handler& h, void* context) {
  auto started = readiness::begin_connect(loop_, to, h, context);
  if (!started) return started.err();
  connection* c = *started;
  if (c->current_state() != connection::state::connecting) return c->handle();  // failed at once
  // The write filter reports the connect's completion (or failure).
  change(transport_loop::slot(*c).fd, EVFILT_READ, read_flags, c, k_connection);
  change(transport_loop::slot(*c).fd, EVFILT_WRITE, write_flags, c, k_connection);
  return c->handle();
}

// ---- UDP --------------------------------------------------------------------------------------

result<udp_socket*> kqueue_transport::udp_bind(const endpoint& at, datagram_handler& h) {
  if (!udp_rx_) udp_rx_.reset(new std::byte[udp_slot_bytes]);
  return readiness::bind_udp_and_watch(loop_, at, h, [&](int fd, udp_socket& s) {
    platform::suppress_sigpipe(fd);
    return register_now(static_cast<std::uintptr_t>(fd), EVFILT_READ, EV_ADD | EV_CLEAR, &s, k_udp);
  });
}

void kqueue_transport::udp_ready(udp_socket& s) noexcept {
  if (s.io.closed) return;
  segment_pool& pool = loop_.pool();
  pool.set_deferred(true);
  // EV_CLEAR: read until the socket is empty, or the next datagram would
  // bring no new report.
  while (!s.io.closed) {
    endpoint from;
    iovec iov{udp_rx_.get(), udp_slot_bytes};
    msghdr msg{};
    msg.msg_name = from.data();
    msg.msg_namelen = endpoint::capacity();
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t r = ::recvmsg(s.io.fd, &msg, 0);
    loop_.stats().read_calls.add();
    if (r < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN (drained), or an error UDP cannot act on
    }
    readiness::datagram_arrived(loop_, s, endpoint(from.data(), msg.msg_namelen),
                                std::string_view(reinterpret_cast<const char*>(udp_rx_.get()), static_cast<std::size_t>(r)),
                                (msg.msg_flags & MSG_TRUNC) != 0);
  }
  pool.set_deferred(false);
  pool.reclaim();
}

void kqueue_transport::flush_udp(udp_socket& s) noexcept {
  const std::size_t total = s.queued_count();
  for (std::size_t i = 0; i < total; ++i) {
    const auto& q = s.queued_at(i);
    ssize_t r;
    do {
      r = ::sendto(s.io.fd, s.arena() + q.offset, q.size, platform::send_nosignal, q.to.data(), q.to.size());
    } while (r < 0 && errno == EINTR);
    loop_.stats().write_calls.add();
    if (r < 0) {
      // Socket buffer full or the destination refused: UDP may drop, but we count it.
      loop_.stats().datagrams_dropped.add();
      continue;
    }
    loop_.stats().bytes_written.add(static_cast<std::uint64_t>(r));
    loop_.stats().datagrams_out.add();
  }
  s.dequeue(total);
}

void kqueue_transport::close_udp(udp_socket& s) noexcept {
  if (s.io.closed) return;
  s.io.closed = true;
  forget_changes(s.io.fd);
  ::close(s.io.fd);
  s.io.fd = -1;
}

// ---- wakeups ----------------------------------------------------------------------------------

void kqueue_transport::wake() noexcept {
  struct kevent kev = make_change(wake_ident, EVFILT_USER, 0, tag_of(nullptr, k_wakeup));
  kev.fflags = NOTE_TRIGGER;
  (void)::kevent(kq_, &kev, 1, nullptr, 0, nullptr);
}

}  // namespace sluice::kqueue
