#include "kernel/readiness_io.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sluice/core/handler.hpp"
#include "sluice/platform/socket_options.hpp"
#include "kernel/socket_ops.hpp"

namespace sluice::readiness {

namespace {

// Segments handed to one readv; 2 covers the tail room plus a fresh segment.
constexpr int read_iov = 2;
constexpr int write_iov = 64;
// Tail room smaller than this is not worth an iovec of its own.
constexpr std::size_t min_tail_room = 512;

int hangup_error(connection& c) noexcept { return static_cast<int>(transport_loop::slot(c).bits >> error_shift); }

}  // namespace

void read(transport_loop& loop, connection& c) noexcept {
  if (!loop.may_read(c)) return;  // read_pending stays set; the loop comes back
  buffer_chain& in = c.input();
  segment_pool& pool = loop.pool();
  const std::size_t budget = loop.options().read_budget;
  const std::size_t limit = loop.options().max_input_bytes;
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
    ssize_t r = n == 1 ? ::read(transport_loop::slot(c).fd, iov[0].iov_base, iov[0].iov_len) : ::readv(transport_loop::slot(c).fd, iov, n);
    loop.stats().read_calls.add();
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
      if (got < space && (transport_loop::slot(c).bits & peer_hup) == 0) {
        loop.set_read_pending(c, false);  // a short read: the socket is drained
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
      loop.set_read_pending(c, false);
      break;
    }
    err = errno;
    break;
  }
  if (total != 0) {
    loop.stats().bytes_read.add(total);
    loop.data_arrived(c);
    if (c.current_state() == connection::state::closed) return;
  }
  // The end of stream after an error the poller reported (and reading may
  // have cleared): a reset, not a clean FIN.
  if (eof && hangup_error(c) != 0) err = hangup_error(c);
  if (err != 0) {
    loop.failed(c, sockets::reason_for_errno(err, false), err);
  } else if (eof) {
    loop.peer_shutdown(c);
  } else if (starved) {
    loop.read_starved(c);
  } else if (transport_loop::read_pending(c) && total >= budget) {
    loop.read_later(c);  // fairness: others first, then the rest of this one
  }
}

flush_result flush(transport_loop& loop, connection& c, int send_flags) noexcept {
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
      r = ::send(transport_loop::slot(c).fd, iov[0].iov_base, iov[0].iov_len, send_flags);
    } else {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(n);
      r = ::sendmsg(transport_loop::slot(c).fd, &msg, send_flags);
    }
    loop.stats().write_calls.add();
    if (r >= 0) {
      loop.wrote(c, static_cast<std::size_t>(r));
      if (static_cast<std::size_t>(r) < bytes) {
        loop.write_blocked(c);  // the socket buffer is full: the poller will tell
        return flush_result::blocked;
      }
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      loop.write_blocked(c);
      return flush_result::blocked;
    }
    int err = errno;
    loop.failed(c, sockets::reason_for_errno(err, false), err);
    return flush_result::failed;
  }
  return flush_result::drained;
}

result<connection*> begin_connect(transport_loop& loop, const endpoint& to, handler& h, void* context, bool start) {
  auto s = sockets::start_connect(to, start);
  if (!s) return s.err();
  connection* c = loop.new_connection(h, to, true);
  if (c == nullptr) {
    ::close(s->fd);
    return error{"cannot connect to " + to.to_string() + ": connection limit reached on this loop", {}};
  }
  c->set_context(context);
  transport_loop::slot(*c).fd = s->fd;
  platform::suppress_sigpipe(s->fd);
  if (s->connect_errno != EINPROGRESS) loop.failed(*c, sockets::reason_for_errno(s->connect_errno, true), s->connect_errno);
  return c;
}

connection* adopt_socket(transport_loop& loop, int fd, const endpoint& peer, handler& h) noexcept {
  connection* c = loop.new_connection(h, peer, false);
  if (c == nullptr) {
    ::close(fd);  // over max_connections: counted by the loop
    return nullptr;
  }
  sockets::set_nodelay(fd);
  platform::suppress_sigpipe(fd);
  transport_loop::slot(*c).fd = fd;
  return c;
}

accept_step accept_one(transport_loop& loop, listener& l, int* fd, endpoint* peer) noexcept {
  socklen_t len = endpoint::capacity();
  endpoint from;
  *fd = platform::accept_nonblocking(l.io.fd, from.data(), &len);
  if (*fd >= 0) {
    *peer = endpoint(from.data(), len);
    return accept_step::accepted;
  }
  switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return accept_step::stop;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      return accept_step::next;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      // Out of descriptors: the connection waits in the backlog.
      loop.stats().accept_fd_exhausted.add();
      l.io.paused = true;
      loop.note_accept_paused();
      loop.timers().arm_after(l.io.retry, loop.options().accept_retry);
      return accept_step::stop;
    default:
      loop.stats().accept_errors.add();
      return accept_step::stop;
  }
}

void datagram_arrived(transport_loop& loop, udp_socket& s, const endpoint& from, std::string_view payload,
                      bool truncated) noexcept {
  if (truncated) {
    loop.stats().datagrams_dropped.add();
    return;
  }
  loop.stats().datagrams_in.add();
  loop.stats().bytes_read.add(payload.size());
  s.get_handler().on_datagram(s, from, payload);
}

#if defined(__linux__)
void send_queued_datagrams(transport_loop& loop, udp_socket& s) noexcept {
  constexpr std::size_t batch = 16;
  const std::size_t total = s.queued_count();
  std::size_t done = 0;
  while (done < total) {
    mmsghdr msgs[batch];
    iovec iov[batch];
    const std::size_t n = std::min<std::size_t>(total - done, batch);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& q = s.queued_at(done + i);
      iov[i] = {const_cast<std::byte*>(s.arena() + q.offset), q.size};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(q.to.data());
      msgs[i].msg_hdr.msg_namelen = q.to.size();
    }
    const int r = ::sendmmsg(s.io.fd, msgs, static_cast<unsigned>(n), MSG_NOSIGNAL);
    loop.stats().write_calls.add();
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      // Socket buffer full or the destination refused: UDP may drop, but we count it.
      loop.stats().datagrams_dropped.add(n);
      done += n;
      continue;
    }
    for (int i = 0; i < r; ++i) loop.stats().bytes_written.add(msgs[i].msg_len);
    loop.stats().datagrams_out.add(static_cast<std::uint64_t>(r));
    done += static_cast<std::size_t>(r);
  }
  s.dequeue(total);
}
#endif

}  // namespace sluice::readiness
