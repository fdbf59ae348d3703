#pragma once
// Test helpers that talk to servers through plain kernel sockets and poll(),
// independent of sluice's own code, so tests check sluice against the OS.
// Everything waits on events (poll) with a deadline; nothing sleeps.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sluice/core/endpoint.hpp"

namespace sluice::test {

using namespace std::chrono_literals;

// A blocking TCP connection to `to`; -1 on failure (errno set).
int connect_to(const endpoint& to);
// A non-blocking socket with connect() started.
int connect_nonblocking(const endpoint& to);
void set_nonblocking(int fd);
// Waits for `events` on fd; returns the revents (0 on timeout).
short wait_for(int fd, short events, std::chrono::milliseconds timeout);
// Sends all of data (blocking fd); false on error.
bool send_all(int fd, std::string_view data);
// Reads exactly n bytes or until EOF/error/timeout; returns what it got.
std::string read_n(int fd, std::size_t n, std::chrono::milliseconds timeout = 10s);
// Reads until EOF (true) or timeout/error (false); appends to out.
bool read_to_eof(int fd, std::string& out, std::chrono::milliseconds timeout = 10s);
// Closes with a reset (SO_LINGER 0).
void close_with_reset(int fd);
// A port on 127.0.0.1 that nothing listens on (bound, not listening, and
// held open by the returned fd so nobody takes it).
std::pair<int, std::uint16_t> reserve_closed_port();
// The same on another local address (`at`, port 0).
std::pair<int, std::uint16_t> reserve_closed_port(const endpoint& at);
// A plain kernel socket listening on 127.0.0.1 (port chosen by the kernel,
// SO_REUSEPORT if asked): a busy port for tests, or a peer to accept from.
// Returns the socket and where it listens.
std::pair<int, endpoint> listen_loopback(int backlog = 1, bool reuse_port = false);
// Random bytes, reproducible from the seed.
std::string random_bytes(std::size_t n, std::uint64_t seed);

// A kernel-socket client of an echo server: sends its payload, half-closes,
// reads the echo until EOF (see drive()).
struct stream_client {
  int fd = -1;
  std::string payload;
  std::size_t sent = 0;
  std::string got;
  bool shut = false;
  bool eof = false;
  int error = 0;  // the errno that ended reading (0: EOF)
};
// Runs many stream_clients at once, multiplexed with poll(): each sends its
// payload in random chunks (1 B to 64 KiB), then shutdown(SHUT_WR), and reads
// until EOF. Returns when all saw EOF or `limit` passed; false if poll failed.
bool drive(std::vector<stream_client>& clients, std::mt19937_64& rng, std::chrono::seconds limit);

// A child process (an app binary) with its stdout piped to us.
class child {
 public:
  // argv[0] is the path. nofile_limit > 0 sets RLIMIT_NOFILE in the child.
  child(std::vector<std::string> argv, long nofile_limit = 0);
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child();
  // The next line of the child's stdout (without newline), or "" on EOF/timeout.
  std::string read_line(std::chrono::milliseconds timeout = 10s);
  // Everything the child writes to stdout until it closes it (or the timeout).
  std::string read_all(std::chrono::milliseconds timeout = 10s);
  // Sends a signal.
  void signal(int sig);
  // Waits for exit; returns the exit code (128+sig if killed), -1 on timeout.
  int wait(std::chrono::milliseconds timeout = 10s);
  // User+system CPU time used so far, from /proc.
  [[nodiscard]] std::chrono::milliseconds cpu_time() const;
  [[nodiscard]] int pid() const { return pid_; }
  // Everything the child wrote to stderr so far (after wait()).
  std::string stderr_text();

 private:
  int pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  std::string buffered_;
  bool exited_ = false;
  int status_ = 0;
};

// The path of an app binary from the environment variable meson test sets
// (SLUICE_ECHO, SLUICE_HTTPD, ...); a test failure and "/nonexistent" if unset.
std::string app_path(const char* env_var);

// The listening address an app printed ("... on 127.0.0.1:PORT ...").
endpoint parse_announced(const std::string& line);

}  // namespace sluice::test
