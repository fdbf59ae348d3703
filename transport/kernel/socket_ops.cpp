#include "kernel/socket_ops.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sluice/platform/socket_options.hpp"

namespace sluice::sockets {

namespace {

int make_socket(int family, int type) noexcept {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = ::socket(family, type, 0);
  if (fd >= 0 && !make_nonblocking(fd)) {
    ::close(fd);
    return -1;
  }
  return fd;
#endif
}

void set_flag(int fd, int level, int opt) noexcept {
  int one = 1;
  (void)::setsockopt(fd, level, opt, &one, sizeof one);
}

error socket_error(std::string_view what, const endpoint& at, int err) {
  return error::from_errno(err, std::string(what) + " " + at.to_string());
}

}  // namespace

bool make_nonblocking(int fd) noexcept {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
  return ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

result<int> open_listener(const endpoint& at, const listen_options& opts) {
  if (at.empty()) return error{"cannot listen: no address given", {}};
  if (opts.exclusive && at.port() != 0) {
    // SO_REUSEADDR alone still fails on a port someone listens on (even with
    // SO_REUSEPORT), but not on one that only has TIME_WAIT leftovers.
    int probe = make_socket(at.family(), SOCK_STREAM);
    if (probe < 0) return socket_error("cannot listen on", at, errno);
    set_flag(probe, SOL_SOCKET, SO_REUSEADDR);
    if (at.is_v6()) set_flag(probe, IPPROTO_IPV6, IPV6_V6ONLY);
    int rc = ::bind(probe, at.data(), at.size());
    int err = errno;
    ::close(probe);
    if (rc != 0) return socket_error("cannot listen on", at, err);
  }
  int fd = make_socket(at.family(), SOCK_STREAM);
  if (fd < 0) return socket_error("cannot listen on", at, errno);
  set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
  // Where the kernel spreads connections over the sockets of one port
  // (platform::set_reuse_port picks SO_REUSEPORT_LB on FreeBSD).
  if (opts.reuse_port) (void)platform::set_reuse_port(fd);
  // An IPv6 address means IPv6 only, whatever the sysctl default: listen on
  // 0.0.0.0 as well to take IPv4.
  if (at.is_v6()) set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
  if (::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, opts.backlog) != 0) {
    int err = errno;
    ::close(fd);
    return socket_error("cannot listen on", at, err);
  }
  return fd;
}

result<connect_start> start_connect(const endpoint& to, bool start) {
  if (to.empty() || to.port() == 0) return error{"cannot connect: bad address " + to.to_string(), {}};
  int fd = make_socket(to.family(), SOCK_STREAM);
  if (fd < 0) return socket_error("cannot connect to", to, errno);
  set_nodelay(fd);
  connect_start s;
  s.fd = fd;
  if (start && ::connect(fd, to.data(), to.size()) != 0) s.connect_errno = errno;
  if (s.connect_errno == 0) s.connect_errno = EINPROGRESS;  // completes through writability like the rest
  return s;
}

result<int> open_udp(const endpoint& at, bool reuse_port) {
  int fd = make_socket(at.family(), SOCK_DGRAM);
  if (fd < 0) return socket_error("cannot bind UDP", at, errno);
  set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
  if (reuse_port) (void)platform::set_reuse_port(fd);
  if (at.is_v6()) set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
  if (::bind(fd, at.data(), at.size()) != 0) {
    int err = errno;
    ::close(fd);
    return socket_error("cannot bind UDP", at, err);
  }
  return fd;
}

endpoint local_address(int fd) noexcept {
  endpoint e;
  socklen_t len = endpoint::capacity();
  if (::getsockname(fd, e.data(), &len) != 0) return endpoint{};
  return endpoint(e.data(), len);
}

void set_nodelay(int fd) noexcept { set_flag(fd, IPPROTO_TCP, TCP_NODELAY); }

void close_with_reset(int fd) noexcept {
  linger lg{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

int pending_error(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

close_reason reason_for_errno(int err, bool connecting) noexcept {
  switch (err) {
    case ECONNRESET:
    case EPIPE:
      return connecting ? close_reason::connect_refused : close_reason::peer_reset;
    case ECONNREFUSED:
      return close_reason::connect_refused;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return close_reason::unreachable;
    case ETIMEDOUT:
      return connecting ? close_reason::connect_timeout : close_reason::io_error;
    default:
      return close_reason::io_error;
  }
}

}  // namespace sluice::sockets
