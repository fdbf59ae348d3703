#include "sluice/io_uring/io_uring_transport.hpp"

#include <netinet/in.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "kernel/readiness_io.hpp"
#include "kernel/socket_ops.hpp"
#include "sluice/platform/socket_options.hpp"
#include "sluice/transport/loop.hpp"

namespace sluice::io_uring {

std::string_view to_string(ring_mode m) noexcept {
  switch (m) {
    case ring_mode::single_issuer_defer_taskrun:
      return "SINGLE_ISSUER|DEFER_TASKRUN";
    case ring_mode::coop_taskrun:
      return "COOP_TASKRUN";
    default:
      return "none";
  }
}

int setup_ring(::io_uring* ring, unsigned entries, ring_mode* mode) noexcept {
  struct attempt {
    unsigned flags;
    ring_mode mode;
  };
  const attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, ring_mode::single_issuer_defer_taskrun},
      {IORING_SETUP_COOP_TASKRUN, ring_mode::coop_taskrun},
      {0, ring_mode::plain},
  };
  int r = -EINVAL;
  for (const attempt& a : attempts) {
    io_uring_params p{};
    p.flags = a.flags;
    r = io_uring_queue_init_params(entries, ring, &p);
    if (r == 0) {
      *mode = a.mode;
      return 0;
    }
    if (r != -EINVAL) return r;  // refused outright (EPERM, ENOSYS, ENOMEM): flags do not matter
  }
  return r;
}

io_uring_transport::io_uring_transport(transport_loop& loop, std::size_t zerocopy_threshold)
    : loop_(loop), zc_threshold_(zerocopy_threshold) {
  int r = setup_ring(&ring_, ring_entries, &mode_);
  if (r < 0) throw std::runtime_error(std::string("io_uring_setup: ") + std::strerror(-r));
  (void)io_uring_register_ring_fd(&ring_);  // an optimization only: fine if refused
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int err = errno;
    io_uring_queue_exit(&ring_);
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(err));
  }
  // The buffer ring's capacity: a power of two, at most a quarter of what
  // the pool may hold, so receives never take the pool's last segments.
  const segment_pool::options& po = loop_.options().pool;
  const std::size_t pool_segments = po.segment_size == 0 ? 0 : po.max_bytes / po.segment_size;
  const std::size_t cap = std::clamp<std::size_t>(pool_segments / 4, 1, buf_ring_max);
  br_entries_ = 1;
  while (br_entries_ * 2 <= cap) br_entries_ *= 2;
  br_target_ = std::min(buf_ring_initial, br_entries_);
  br_bytes_ = br_entries_ * sizeof(::io_uring_buf);
  void* mem = ::mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    int err = errno;
    ::close(wakefd_);
    io_uring_queue_exit(&ring_);
    throw std::runtime_error(std::string("mmap (buffer ring): ") + std::strerror(err));
  }
  br_ = static_cast<::io_uring_buf_ring*>(mem);
  br_segs_.assign(br_entries_, nullptr);
  br_free_.reserve(br_entries_);
  for (unsigned i = br_entries_; i-- > 0;) br_free_.push_back(static_cast<std::uint16_t>(i));
  arm_wake();
}

io_uring_transport::~io_uring_transport() {
  // loop<T>'s destructor released every connection (each cancelled its own
  // operations). What is left: accepts, UDP receives, the wake-up read. Cancel
  // them all synchronously: once that returns, the kernel no longer touches
  // the buffers below, so they may go whatever the completions still queued.
  io_uring_sync_cancel_reg reg{};
  reg.flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
  reg.fd = -1;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  (void)io_uring_register_sync_cancel(&ring_, &reg);
  // Reap what is there without waiting (another thread may not wait on a
  // SINGLE_ISSUER ring): accepted sockets in late completions are closed,
  // released connections' states freed, zero-copy sends' segments let go.
  auto reap_at_exit = [this] {
    ::io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const std::uint64_t ud = cqe->user_data;
      const auto o = static_cast<op>(ud & 7);
      if (o == op_accept && cqe->res >= 0) ::close(cqe->res);
      if ((o == op_recv || o == op_send || o == op_connect) && (cqe->flags & IORING_CQE_F_MORE) == 0) {
        auto* io = reinterpret_cast<conn_io*>(ud & ~std::uint64_t{7});
        if (o == op_send) {
          if (io->send_zc) ++zc_done_;
          io->send_zc = false;
          unhold(*io);
        }
        if (--io->inflight == 0 && io->conn == nullptr) delete io;
      }
      io_uring_cqe_seen(&ring_, cqe);
    }
  };
  (void)io_uring_get_events(&ring_);
  reap_at_exit();
  // A zero-copy send's notification comes once the kernel has freed the
  // packets that point into its segments: wait for those (bounded, on the
  // ring's own thread only), so that no segment is given back while the
  // kernel may still read it.
  for (int i = 0; i < 100 && zc_done_ != zc_sent_; ++i) {
    ::io_uring_cqe* cqe;
    __kernel_timespec ts{0, 10'000'000};
    if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) == -EEXIST) break;
    reap_at_exit();
  }
  // Every operation is over: the buffers (those the kernel took included)
  // go back to the pool.
  if (br_registered_) (void)io_uring_unregister_buf_ring(&ring_, 0);
  for (segment*& seg : br_segs_) {
    if (seg != nullptr) segment_unref(seg);
    seg = nullptr;
  }
  ::munmap(br_, br_bytes_);
  if (ubr_registered_) (void)io_uring_unregister_buf_ring(&ring_, 1);
  if (ubr_ != nullptr) ::munmap(ubr_, ubr_bytes_);
  for (auto& l : loop_.listeners())
    if (l->io.fd >= 0) ::close(l->io.fd);
  ::close(wakefd_);
  io_uring_queue_exit(&ring_);
}

// ---- submissions and completions -------------------------------------------------------

::io_uring_sqe* io_uring_transport::sqe() noexcept {
  ::io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s == nullptr) {
    (void)io_uring_submit(&ring_);  // the queue is full: hand it over, then take a fresh entry
    s = io_uring_get_sqe(&ring_);
  }
  if (s != nullptr) ++inflight_;
  return s;
}

std::size_t io_uring_transport::poll(duration timeout) noexcept {
  int r;
  if (timeout == duration::zero()) {
    r = io_uring_submit_and_get_events(&ring_);
  } else if (timeout == duration::max()) {
    r = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout.count() / 1'000'000'000;
    ts.tv_nsec = timeout.count() % 1'000'000'000;
    ::io_uring_cqe* first = nullptr;
    r = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &ts, nullptr);
  }
  (void)r;  // -ETIME, -EINTR: nothing came; the loop comes round again
  return reap();
}

std::size_t io_uring_transport::reap() noexcept {
  std::size_t n = 0;
  ::io_uring_cqe* cqe;
  // Reap in bounded rounds: completions dispatched here may queue others.
  for (unsigned round = 0; round < 4; ++round) {
    unsigned head;
    unsigned got = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ::io_uring_cqe copy = *cqe;
      ++got;
      io_uring_cq_advance(&ring_, 1);  // free the entry before dispatching (handlers may submit)
      dispatch(copy);
    }
    n += got;
    if (got == 0) break;
  }
  if (br_registered_ && recv_armed_ != 0 && br_count_ < br_target_) refill();
  return n;
}

void io_uring_transport::dispatch(const ::io_uring_cqe& cqe) noexcept {
  const std::uint64_t ud = cqe.user_data;
  const auto o = static_cast<op>(ud & 7);
  void* p = reinterpret_cast<void*>(ud & ~std::uint64_t{7});
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (!more && o != op_none) --inflight_;
  switch (o) {
    case op_recv:
      on_recv(*static_cast<conn_io*>(p), cqe.res, cqe.flags);
      break;
    case op_send:
      if (static_cast<conn_io*>(p)->send_zc) {
        on_send_zc(*static_cast<conn_io*>(p), cqe.res, cqe.flags);
      } else {
        on_send(*static_cast<conn_io*>(p), cqe.res);
      }
      break;
    case op_connect:
      on_connect(*static_cast<conn_io*>(p), cqe.res);
      break;
    case op_accept:
      on_accept(*static_cast<listen_io*>(p), cqe.res, more);
      break;
    case op_udp_recv:
      on_udp_recv(*static_cast<udp_io*>(p), cqe.res, cqe.flags);
      break;
    case op_wake:
      arm_wake();
      break;
    default:
      break;
  }
}

void io_uring_transport::completed(conn_io& io) noexcept {
  if (--io.inflight == 0 && io.conn == nullptr) delete &io;
}

bool io_uring_transport::cancel_fd(int fd) noexcept {
  // A submission still queued here (a receive armed this iteration) is not
  // the kernel's yet, so the cancel would not find it: hand it over first.
  if (io_uring_sq_ready(&ring_) != 0) (void)io_uring_submit(&ring_);
  io_uring_sync_cancel_reg reg{};
  reg.fd = fd;
  reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  // With CANCEL_ALL: the number of operations cancelled.
  int r = io_uring_register_sync_cancel(&ring_, &reg);
  // A cancelled operation lets go of its file (the socket) only once its
  // completion is posted, which a DEFER_TASKRUN ring does only when asked:
  // ask now, or close() below would leave the socket open (no FIN, no RST)
  // until the next poll. The completions wait in the queue for that poll.
  if (r > 0) (void)io_uring_get_events(&ring_);
  return r >= 0 || r == -ENOENT;
}

// ---- connections ----------------------------------------------------------------------------

io_uring_transport::conn_io* io_uring_transport::attach(connection& c) noexcept {
  auto* io = new (std::nothrow) conn_io;
  if (io == nullptr) return nullptr;
  io->conn = &c;
  io->fd = transport_loop::slot(c).fd;
  transport_loop::slot(c).ptr = io;
  return io;
}

void io_uring_transport::read(connection& c) noexcept {
  auto* io = static_cast<conn_io*>(transport_loop::slot(c).ptr);
  if (io != nullptr) arm_recv(c, *io);
}

void io_uring_transport::arm_recv(connection& c, conn_io& io) noexcept {
  if (io.recv_busy) return;
  if (!loop_.may_read(c)) {
    loop_.set_read_pending(c, true);  // resume_reading / the input limit bring it back to read()
    return;
  }
  if (!ensure_buffers()) {
    if (!br_registered_) {  // the kernel refused the buffer ring: no way to receive
      loop_.failed(c, close_reason::resource_limit, ENOMEM);
      return;
    }
    loop_.read_starved(c);  // the pool is exhausted: read() again once segments come back
    return;
  }
  ::io_uring_sqe* s = sqe();
  if (s == nullptr) {
    loop_.read_later(c);
    return;
  }
  io.recv_busy = true;
  io.recv_stopping = false;
  ++io.inflight;
  ++recv_armed_;
  loop_.set_read_pending(c, false);
  io_uring_prep_recv_multishot(s, io.fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = 0;
  io_uring_sqe_set_data64(s, tag(&io, op_recv));
}

void io_uring_transport::stop_recv(conn_io& io) noexcept {
  if (!io.recv_busy || io.recv_stopping) return;
  ::io_uring_sqe* s = sqe();
  if (s == nullptr) return;  // the next completion tries again
  io.recv_stopping = true;
  io_uring_prep_cancel64(s, tag(&io, op_recv), 0);
  io_uring_sqe_set_data64(s, tag(nullptr, op_cancel));
}

segment* io_uring_transport::take_buffer(std::uint32_t cqe_flags) noexcept {
  if ((cqe_flags & IORING_CQE_F_BUFFER) == 0) return nullptr;
  const auto bid = static_cast<std::uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  if (bid >= br_segs_.size()) return nullptr;
  segment* seg = br_segs_[bid];
  br_segs_[bid] = nullptr;
  if (seg != nullptr) {
    br_free_.push_back(bid);
    --br_count_;
  }
  return seg;
}

bool io_uring_transport::ensure_buffers() noexcept {
  if (!br_registered_) {
    io_uring_buf_ring_init(br_);
    ::io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = br_entries_;
    reg.bgid = 0;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) return false;
    br_registered_ = true;
  }
  if (br_count_ < br_target_) refill();
  return br_count_ != 0;
}

void io_uring_transport::refill() noexcept {
  const unsigned mask = br_entries_ - 1;
  unsigned added = 0;
  segment_pool& pool = loop_.pool();
  while (br_count_ < br_target_ && !br_free_.empty()) {
    segment* seg = pool.allocate();
    if (seg == nullptr) break;
    const std::uint16_t bid = br_free_.back();
    br_free_.pop_back();
    br_segs_[bid] = seg;
    io_uring_buf_ring_add(br_, seg->base + seg->end, seg->tailroom(), bid, static_cast<int>(mask), static_cast<int>(added));
    ++added;
    ++br_count_;
  }
  if (added != 0) io_uring_buf_ring_advance(br_, static_cast<int>(added));
}

void io_uring_transport::drain_buffers() noexcept {
  // No receive is in flight, so each buffer the kernel took has its
  // completion posted (a synchronous cancel posts them): reap those first,
  // their segments come back through take_buffer.
  if (io_uring_cq_has_overflow(&ring_)) (void)io_uring_get_events(&ring_);
  (void)reap();
  if (recv_armed_ != 0 || io_uring_cq_has_overflow(&ring_)) return;  // a completion armed one again
  if (io_uring_unregister_buf_ring(&ring_, 0) != 0) return;
  br_registered_ = false;
  for (std::size_t bid = 0; bid < br_segs_.size(); ++bid) {
    if (br_segs_[bid] == nullptr) continue;
    segment_unref(br_segs_[bid]);
    br_segs_[bid] = nullptr;
    br_free_.push_back(static_cast<std::uint16_t>(bid));
  }
  br_count_ = 0;
}

void io_uring_transport::on_recv(conn_io& io, int res, std::uint32_t flags) noexcept {
  segment* seg = take_buffer(flags);
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  connection* c = io.conn;
  if (!more) {
    // The multishot receive is over (end of stream, error, ENOBUFS, cancel).
    if (io.recv_busy) --recv_armed_;
    io.recv_busy = false;
    io.recv_stopping = false;
    completed(io);  // may free io: not touched below
  }
  loop_.stats().read_calls.add();
  const bool live = c != nullptr && (c->current_state() == connection::state::open ||
                                     c->current_state() == connection::state::closing);
  if (!live) {
    if (seg != nullptr) segment_unref(seg);
    return;
  }
  if (res > 0 && seg != nullptr) {
    seg->end += static_cast<std::uint32_t>(res);
    c->input().append(seg);
    loop_.stats().bytes_read.add(static_cast<std::uint64_t>(res));
    loop_.data_arrived(*c);
    auto st = c->current_state();
    if (st != connection::state::open && st != connection::state::closing) return;
    auto& cio = *static_cast<conn_io*>(transport_loop::slot(*c).ptr);
    if (!cio.recv_busy) {
      arm_recv(*c, cio);  // the kernel ended it after data: arm a new one
    } else if (!loop_.may_read(*c)) {
      stop_recv(cio);  // paused or full: resume_reading / the input limit call read() again
      loop_.set_read_pending(*c, true);
    }
    return;
  }
  if (seg != nullptr) segment_unref(seg);
  auto& cio = *static_cast<conn_io*>(transport_loop::slot(*c).ptr);
  if (res == 0) {
    loop_.peer_shutdown(*c);
  } else if (res == -ENOBUFS) {
    // The ring ran dry: more buffers next time, then receive again (the
    // bytes wait in the socket). No buffer to be had: wait for the pool.
    ++br_exhausted_;
    br_target_ = std::min(br_target_ * 2, br_entries_);
    arm_recv(*c, cio);
  } else if (res == -ECANCELED || res == -EINTR || res == -EAGAIN) {
    arm_recv(*c, cio);  // stopped for a pause: may_read says whether to go on
  } else if (res < 0) {
    loop_.failed(*c, sockets::reason_for_errno(-res, false), -res);
  } else if (!more) {
    arm_recv(*c, cio);
  }
}

void io_uring_transport::flush(connection& c) noexcept {
  auto* io = static_cast<conn_io*>(transport_loop::slot(c).ptr);
  if (io == nullptr || c.output().empty()) return;
  // One send per connection in flight: its completion reports what went and
  // asks for the rest (flush_ready). Until then the output counts as blocked.
  if (!io->send_busy) {
    ::io_uring_sqe* s = sqe();
    if (s == nullptr) {
      loop_.write_blocked(c);
      loop_.flush_ready(c);  // try again in the next flush phase
      return;
    }
    const bool zc = zc_threshold_ != 0 && c.output().size() >= zc_threshold_;
    // The unconsumed pieces, segment by segment (as for_each_piece walks
    // them); a zero-copy send also takes a reference on each segment.
    int n = 0;
    std::size_t skip = c.output().consumed();
    for (const segment& seg : c.output().segments()) {
      const std::uint32_t len = seg.size();
      if (skip >= len) {
        skip -= len;
        continue;
      }
      io->iov[n] = {const_cast<std::byte*>(seg.data()) + skip, len - skip};
      skip = 0;
      if (zc) {
        segment* root = seg.parent != nullptr ? seg.parent : const_cast<segment*>(&seg);
        ++root->refs;
        io->hold[n] = root;
      }
      if (++n == send_iov) break;
    }
    if (zc) {
      io->held = n;
      io->send_zc = true;
      io->send_res = 0;
      ++zc_sent_;
    }
    if (n == 1) {
      if (zc) {
        io_uring_prep_send_zc(s, io->fd, io->iov[0].iov_base, io->iov[0].iov_len, MSG_NOSIGNAL, 0);
      } else {
        io_uring_prep_send(s, io->fd, io->iov[0].iov_base, io->iov[0].iov_len, MSG_NOSIGNAL);
      }
    } else {
      io->msg = {};
      io->msg.msg_iov = io->iov;
      io->msg.msg_iovlen = static_cast<decltype(io->msg.msg_iovlen)>(n);
      if (zc) {
        io_uring_prep_sendmsg_zc(s, io->fd, &io->msg, MSG_NOSIGNAL);
      } else {
        io_uring_prep_sendmsg(s, io->fd, &io->msg, MSG_NOSIGNAL);
      }
    }
    io_uring_sqe_set_data64(s, tag(io, op_send));
    io->send_busy = true;
    ++io->inflight;
    sends_queued_ = true;
    loop_.stats().write_calls.add();
  }
  loop_.write_blocked(c);
}

void io_uring_transport::unhold(conn_io& io) noexcept {
  for (int i = 0; i < io.held; ++i) segment_unref(io.hold[i]);
  io.held = 0;
}

void io_uring_transport::on_send_zc(conn_io& io, int res, std::uint32_t flags) noexcept {
  if ((flags & IORING_CQE_F_NOTIF) == 0) {
    io.send_res = res;
    if ((flags & IORING_CQE_F_MORE) != 0) return;  // the notification follows: the segments are still the kernel's
  } else {
    ++zc_notified_;
  }
  ++zc_done_;
  // The kernel is done with the segments: report the result now.
  unhold(io);
  io.send_zc = false;
  on_send(io, io.send_res);
}

void io_uring_transport::flushed() noexcept {
  if (!sends_queued_) return;
  sends_queued_ = false;
  (void)io_uring_submit(&ring_);
  // Sends that went at once completed inside that call: take their
  // completions now, or the next poll would return for them alone.
  if (io_uring_cq_ready(&ring_) != 0) (void)reap();
}

void io_uring_transport::on_send(conn_io& io, int res) noexcept {
  io.send_busy = false;
  connection* c = io.conn;
  completed(io);
  if (c == nullptr) return;
  if (res >= 0) {
    loop_.wrote(*c, static_cast<std::size_t>(res));
    if (c->current_state() != connection::state::closed) loop_.flush_ready(*c);
  } else if (res == -EINTR || res == -EAGAIN || res == -ECANCELED) {
    loop_.flush_ready(*c);
  } else {
    loop_.failed(*c, sockets::reason_for_errno(-res, false), -res);
  }
}

void io_uring_transport::shutdown_write(connection& c) noexcept { ::shutdown(transport_loop::slot(c).fd, SHUT_WR); }

void io_uring_transport::release(connection& c) noexcept {
  int fd = transport_loop::slot(c).fd;
  auto* io = static_cast<conn_io*>(transport_loop::slot(c).ptr);
  transport_loop::slot(c).fd = -1;
  transport_loop::slot(c).ptr = nullptr;
  if (io != nullptr) {
    io->conn = nullptr;
    // Cancel first: the receive's segment and the send's pieces are the
    // kernel's until their operations end. After a synchronous cancel they
    // have; the completions still come, and free io.
    bool cancelled = io->inflight == 0 || cancel_fd(fd);
    if (cancelled && io->recv_busy) {
      // Over for the kernel; its last completion, still to come, frees io.
      io->recv_busy = false;
      --recv_armed_;
    }
    io->fd = -1;
    if (io->inflight == 0) delete io;
  }
  if (fd < 0) return;
  if (transport_loop::abort_requested(c)) {
    sockets::close_with_reset(fd);
  } else {
    ::close(fd);
  }
}

// ---- connecting ---------------------------------------------------------------------------

result<connection_handle> io_uring_transport::connect(const endpoint& to, handler& h, void* context) {
  auto started = readiness::begin_connect(loop_, to, h, context, false);
  if (!started) return started.err();
  connection* c = *started;
  if (c->current_state() != connection::state::connecting) return c->handle();  // failed at once
  conn_io* io = attach(*c);
  ::io_uring_sqe* s = io != nullptr ? sqe() : nullptr;
  if (s == nullptr) {
    loop_.failed(*c, close_reason::resource_limit, ENOMEM);
    return c->handle();
  }
  // The loop's connect timeout closes c, and release() cancels this connect.
  io->peer = to;
  io_uring_prep_connect(s, io->fd, io->peer.data(), io->peer.size());
  io_uring_sqe_set_data64(s, tag(io, op_connect));
  ++io->inflight;
  return c->handle();
}

void io_uring_transport::on_connect(conn_io& io, int res) noexcept {
  connection* c = io.conn;
  completed(io);
  if (c == nullptr || c->current_state() != connection::state::connecting) return;
  const int err = res < 0 ? -res : 0;
  if (err != 0) {
    loop_.failed(*c, sockets::reason_for_errno(err, true), err);
    return;
  }
  loop_.opened(*c);
  if (c->current_state() == connection::state::open || c->current_state() == connection::state::closing) read(*c);
}

// ---- accepting ------------------------------------------------------------------------------

result<listener*> io_uring_transport::listen(const endpoint& at, handler& h, const listen_options& opts) {
  auto li = std::make_unique<listen_io>();
  auto l = readiness::listen_and_watch(loop_, at, h, opts, &io_uring_transport::retry_accept,
                                       [&](int, listener& lr) {
                                         li->l = &lr;
                                         return 0;
                                       });
  if (!l) return l;
  listen_io* raw = li.get();
  listeners_.push_back(std::move(li));
  arm_accept(*raw);
  return l;
}

void io_uring_transport::arm_accept(listen_io& li) noexcept {
  listener& l = *li.l;
  if (li.armed || l.io.closed || l.io.paused || l.io.fd < 0) return;
  ::io_uring_sqe* s = sqe();
  if (s == nullptr) {
    loop_.timers().arm_after(l.io.retry, loop_.options().accept_retry);
    return;
  }
  io_uring_prep_multishot_accept(s, l.io.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, tag(&li, op_accept));
  li.armed = true;
}

void io_uring_transport::on_accept(listen_io& li, int res, bool more) noexcept {
  if (!more) li.armed = false;
  listener& l = *li.l;
  if (res >= 0) {
    if (l.io.closed) {
      ::close(res);
      return;
    }
    endpoint peer;
    socklen_t len = endpoint::capacity();
    endpoint from;
    if (::getpeername(res, const_cast<sockaddr*>(from.data()), &len) == 0) peer = endpoint(from.data(), len);
    ++l.io.accepted;
    if (!l.hand_off(res, peer)) adopt(res, peer, l.get_handler());
  } else {
    switch (-res) {
      case ECANCELED:
        return;  // closed (or the loop ends): not re-armed
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        // Out of descriptors: the connection waits in the backlog. Accepting
        // resumes when a connection of this loop closes or the timer fires.
        loop_.stats().accept_fd_exhausted.add();
        l.io.paused = true;
        loop_.note_accept_paused();
        loop_.timers().arm_after(l.io.retry, loop_.options().accept_retry);
        return;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case EAGAIN:
        break;
      default:
        loop_.stats().accept_errors.add();
        break;
    }
  }
  if (!li.armed) arm_accept(li);  // the kernel ended the multishot: arm a new one
}

void io_uring_transport::adopt(int fd, const endpoint& peer, handler& h) noexcept {
  connection* c = readiness::adopt_socket(loop_, fd, peer, h);
  if (c == nullptr) return;
  if (attach(*c) == nullptr) {
    loop_.failed(*c, close_reason::resource_limit, ENOMEM);
    return;
  }
  loop_.opened(*c);
  if (c->current_state() == connection::state::open || c->current_state() == connection::state::closing) read(*c);
}

io_uring_transport::listen_io* io_uring_transport::find(const listener& l) noexcept {
  for (auto& li : listeners_)
    if (li->l == &l) return li.get();
  return nullptr;
}

void io_uring_transport::retry_accept(timer& t) noexcept {
  auto* l = static_cast<listener*>(t.context());
  auto& self = static_cast<loop<io_uring_transport>&>(l->loop()).transport();
  l->io.paused = false;
  if (listen_io* li = self.find(*l)) self.arm_accept(*li);
}

void io_uring_transport::fd_released() noexcept {
  if (br_registered_ && recv_armed_ == 0) drain_buffers();
  for (auto& li : listeners_) {
    listener& l = *li->l;
    if (!l.io.paused) continue;
    l.io.retry.cancel();
    l.io.paused = false;
    arm_accept(*li);
  }
}

void io_uring_transport::close_listener(listener& l) noexcept {
  if (l.io.closed) return;
  l.io.closed = true;
  l.io.retry.cancel();
  if (listen_io* li = find(l); li != nullptr && li->armed) (void)cancel_fd(l.io.fd);
  ::close(l.io.fd);
  l.io.fd = -1;
}

// ---- UDP ------------------------------------------------------------------------------------

result<udp_socket*> io_uring_transport::udp_bind(const endpoint& at, datagram_handler& h) {
  if (!ensure_udp_ring()) return error{"cannot bind UDP " + at.to_string() + ": the kernel refused io_uring's UDP buffer ring", {}};
  auto u = std::make_unique<udp_io>();
  auto s = readiness::bind_udp_and_watch(loop_, at, h, [&](int, udp_socket& sr) {
    u->s = &sr;
    return 0;
  });
  if (!s) return s;
  udp_io* raw = u.get();
  udp_.push_back(std::move(u));
  arm_udp(*raw);
  return s;
}

bool io_uring_transport::ensure_udp_ring() noexcept {
  if (ubr_registered_) return true;
  if (ubr_ == nullptr) {
    // One mapping: the ring's entries, then the buffers. A buffer holds what
    // multishot recvmsg lays out: its header, the peer's address, the payload.
    ubuf_size_ = sizeof(::io_uring_recvmsg_out) + endpoint::capacity() + udp_slot_bytes;
    ubuf_size_ = (ubuf_size_ + 63) & ~std::size_t{63};
    const std::size_t ring_bytes = (udp_ring_buffers * sizeof(::io_uring_buf) + 4095) & ~std::size_t{4095};
    ubr_bytes_ = ring_bytes + udp_ring_buffers * ubuf_size_;
    void* mem = ::mmap(nullptr, ubr_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return false;
    ubr_ = static_cast<::io_uring_buf_ring*>(mem);
    ubufs_ = static_cast<std::byte*>(mem) + ring_bytes;
  }
  io_uring_buf_ring_init(ubr_);
  ::io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(ubr_);
  reg.ring_entries = udp_ring_buffers;
  reg.bgid = 1;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) return false;
  ubr_registered_ = true;
  for (unsigned bid = 0; bid < udp_ring_buffers; ++bid)
    io_uring_buf_ring_add(ubr_, ubufs_ + bid * ubuf_size_, static_cast<unsigned>(ubuf_size_), static_cast<unsigned short>(bid),
                          static_cast<int>(udp_ring_buffers - 1), static_cast<int>(bid));
  io_uring_buf_ring_advance(ubr_, static_cast<int>(udp_ring_buffers));
  return true;
}

void io_uring_transport::give_back_udp(std::uint16_t bid) noexcept {
  io_uring_buf_ring_add(ubr_, ubufs_ + bid * ubuf_size_, static_cast<unsigned>(ubuf_size_), bid,
                        static_cast<int>(udp_ring_buffers - 1), 0);
  io_uring_buf_ring_advance(ubr_, 1);
}

void io_uring_transport::arm_udp(udp_io& u) noexcept {
  if (u.armed || u.s->io.closed) return;
  ::io_uring_sqe* s = sqe();
  if (s == nullptr) return;
  u.msg = {};
  u.msg.msg_namelen = endpoint::capacity();
  io_uring_prep_recvmsg_multishot(s, u.s->io.fd, &u.msg, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = 1;
  io_uring_sqe_set_data64(s, tag(&u, op_udp_recv));
  u.armed = true;
}

void io_uring_transport::on_udp_recv(udp_io& u, int res, std::uint32_t flags) noexcept {
  if ((flags & IORING_CQE_F_MORE) == 0) u.armed = false;
  udp_socket& s = *u.s;
  if ((flags & IORING_CQE_F_BUFFER) != 0) {
    const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    std::byte* buf = ubufs_ + std::size_t{bid} * ubuf_size_;
    if (res >= 0 && !s.io.closed) {
      loop_.stats().read_calls.add();
      if (::io_uring_recvmsg_out* out = io_uring_recvmsg_validate(buf, res, &u.msg)) {
        const socklen_t namelen = std::min<socklen_t>(out->namelen, endpoint::capacity());
        endpoint peer(static_cast<const sockaddr*>(io_uring_recvmsg_name(out)), namelen);
        const auto* payload = static_cast<const char*>(io_uring_recvmsg_payload(out, &u.msg));
        const std::size_t len = io_uring_recvmsg_payload_length(out, res, &u.msg);
        segment_pool& pool = loop_.pool();
        pool.set_deferred(true);
        readiness::datagram_arrived(loop_, s, peer, std::string_view(payload, len), (out->flags & MSG_TRUNC) != 0);
        pool.set_deferred(false);
        pool.reclaim();
      }
    }
    give_back_udp(bid);  // the handler copied what it keeps
  }
  // Ended (ENOBUFS when a burst outran the buffers, which are back now; an
  // error): receive again unless the socket is closed.
  if (res == -ECANCELED || s.io.closed || u.armed) return;
  ++udp_rearmed_;
  arm_udp(u);
}

io_uring_transport::udp_io* io_uring_transport::find(const udp_socket& s) noexcept {
  for (auto& u : udp_)
    if (u->s == &s) return u.get();
  return nullptr;
}

void io_uring_transport::flush_udp(udp_socket& s) noexcept { readiness::send_queued_datagrams(loop_, s); }

void io_uring_transport::close_udp(udp_socket& s) noexcept {
  if (s.io.closed) return;
  s.io.closed = true;
  if (udp_io* u = find(s); u != nullptr && u->armed) (void)cancel_fd(s.io.fd);
  ::close(s.io.fd);
  s.io.fd = -1;
}

// ---- wake-ups -------------------------------------------------------------------------------

void io_uring_transport::arm_wake() noexcept {
  ::io_uring_sqe* s = sqe();
  if (s == nullptr) return;
  io_uring_prep_read(s, wakefd_, &wake_buf_, sizeof wake_buf_, 0);
  io_uring_sqe_set_data64(s, tag(nullptr, op_wake));
}

void io_uring_transport::wake() noexcept {
  std::uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;  // EAGAIN: a wake-up is already pending
}

}  // namespace sluice::io_uring
