#pragma once
// The few socket calls whose spelling differs between Linux, FreeBSD and
// macOS, so that the kernel transports (epoll, kqueue) need no OS test of
// their own: how to accept a non-blocking socket in one call, how to stop a
// write to a reset peer from raising SIGPIPE, and which option lets several
// listening sockets share a port with the kernel spreading connections.
//
// Plain functions with no state: any thread.

#include <sys/socket.h>

#include <string>

namespace sluice::platform {

// Flags for send()/sendmsg() that make a write to a reset peer fail with
// EPIPE instead of raising SIGPIPE, where the OS has such a flag
// (MSG_NOSIGNAL: Linux, FreeBSD); 0 where it must be set per socket instead
// (suppress_sigpipe(): macOS).
#if defined(MSG_NOSIGNAL)
inline constexpr int send_nosignal = MSG_NOSIGNAL;
#else
inline constexpr int send_nosignal = 0;
#endif

// Marks a socket so that writes to a reset peer never raise SIGPIPE where the
// OS needs a per-socket option for it (SO_NOSIGPIPE: macOS, FreeBSD); does
// nothing where send_nosignal covers it. Call once per socket.
void suppress_sigpipe(int fd) noexcept;

// accept() that returns a non-blocking, close-on-exec socket: one call where
// the OS has accept4 (Linux, FreeBSD), accept plus fcntl elsewhere (macOS).
// Returns -1 with errno set as accept() does.
int accept_nonblocking(int listen_fd, sockaddr* addr, socklen_t* len) noexcept;

// True where several sockets may listen on one port and the kernel spreads
// incoming connections over them (Linux SO_REUSEPORT, FreeBSD
// SO_REUSEPORT_LB). False on macOS, where SO_REUSEPORT lets sockets share the
// port but hands every connection to one of them: there one acceptor must
// hand connections to the other loops.
[[nodiscard]] bool kernel_balances_listeners() noexcept;

// Sets the balancing reuse-port option on a socket before bind (see
// kernel_balances_listeners; plain SO_REUSEPORT where the kernel does not
// balance). Returns false if the option could not be set.
bool set_reuse_port(int fd) noexcept;

// The operating system's name as uname() reports it ("Linux", "FreeBSD",
// "Darwin"), for messages.
[[nodiscard]] std::string os_name();

}  // namespace sluice::platform
