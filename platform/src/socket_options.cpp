#include "sluice/platform/socket_options.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace sluice::platform {

namespace {

bool set_int_option(int fd, int level, int option) noexcept {
  int one = 1;
  return ::setsockopt(fd, level, option, &one, sizeof one) == 0;
}

}  // namespace

void suppress_sigpipe(int fd) noexcept {
#if defined(SO_NOSIGPIPE)
  (void)set_int_option(fd, SOL_SOCKET, SO_NOSIGPIPE);
#else
  (void)fd;  // send_nosignal (MSG_NOSIGNAL) does it per call
#endif
}

int accept_nonblocking(int listen_fd, sockaddr* addr, socklen_t* len) noexcept {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  // Linux and FreeBSD: one system call.
  return ::accept4(listen_fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  // macOS: no accept4. The flags are set before anyone else can see the fd;
  // a failure closes it and reports like accept() would.
  int fd = ::accept(listen_fd, addr, len);
  if (fd < 0) return -1;
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
#endif
}

bool kernel_balances_listeners() noexcept {
#if defined(__APPLE__)
  return false;
#else
  return true;
#endif
}

bool set_reuse_port(int fd) noexcept {
#if defined(SO_REUSEPORT_LB)
  // FreeBSD 12+: plain SO_REUSEPORT would give every connection to the last
  // socket bound; the _LB variant spreads them.
  return set_int_option(fd, SOL_SOCKET, SO_REUSEPORT_LB);
#elif defined(SO_REUSEPORT)
  return set_int_option(fd, SOL_SOCKET, SO_REUSEPORT);
#else
  (void)fd;
  return false;
#endif
}

std::string os_name() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.sysname;
}

}  // namespace sluice::platform
