#pragma once
// Kernel-socket helpers shared by the readiness transports (epoll, kqueue):
// creating listening, connecting and UDP sockets with the options sluice
// wants, and turning errno values into close reasons. POSIX only: nothing here
// is Linux- or BSD-specific (OS differences live in platform/).

#include <cstddef>
#include <string_view>

#include "sluice/core/close_reason.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/core/listener.hpp"
#include "sluice/base/result.hpp"

namespace sluice::sockets {

// A non-blocking, close-on-exec listening TCP socket bound to `at`.
// With opts.exclusive, first checks that nobody listens on the port (a plain
// SO_REUSEPORT bind would silently share it with another process).
// Errors read "cannot listen on ADDR: address already in use".
result<int> open_listener(const endpoint& at, const listen_options& opts);

// What start_connect() made.
struct connect_start {
  int fd = -1;            // the socket, owned by the caller
  int connect_errno = 0;  // 0 or EINPROGRESS: wait for writability
};
// A non-blocking TCP socket with connect() started. `connect_errno` tells
// whether completion must be waited for. Fails only if no socket could be
// made; a refused or unreachable peer is reported through `connect_errno`.
// With start == false the socket is only made (connect_errno EINPROGRESS):
// a completion transport issues the connect itself.
result<connect_start> start_connect(const endpoint& to, bool start = true);

// A non-blocking UDP socket bound to `at` (SO_REUSEPORT when reuse_port).
result<int> open_udp(const endpoint& at, bool reuse_port);

// The address a socket is bound to.
endpoint local_address(int fd) noexcept;
// TCP_NODELAY on (latency first: no Nagle).
void set_nodelay(int fd) noexcept;
// Closes so that the peer sees a reset (SO_LINGER with zero timeout).
void close_with_reset(int fd) noexcept;
// The pending error of a socket (SO_ERROR), 0 if none.
int pending_error(int fd) noexcept;
// What an errno means for a connection.
close_reason reason_for_errno(int err, bool connecting) noexcept;
// Makes an fd non-blocking and close-on-exec.
bool make_nonblocking(int fd) noexcept;

}  // namespace sluice::sockets
