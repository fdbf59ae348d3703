#include "net.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace sluice::test {

int connect_to(const endpoint& to) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, to.data(), to.size()) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int connect_nonblocking(const endpoint& to) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (::connect(fd, to.data(), to.size()) != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

short wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return 0;
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return p.revents;
    if (n == 0) return 0;
    if (errno != EINTR) return POLLERR;
  }
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (wait_for(fd, POLLOUT, 10s) == 0) return false;
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(r));
  }
  return true;
}

std::string read_n(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (wait_for(fd, POLLIN, left) & (POLLIN | POLLHUP | POLLERR)) == 0) break;
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

bool read_to_eof(int fd, std::string& out, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (wait_for(fd, POLLIN, left) & (POLLIN | POLLHUP | POLLERR)) == 0) return false;
    ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    out.append(buf, static_cast<std::size_t>(r));
  }
}

void close_with_reset(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

std::pair<int, std::uint16_t> reserve_closed_port() { return reserve_closed_port(endpoint::loopback_v4(0)); }

std::pair<int, std::uint16_t> reserve_closed_port(const endpoint& at) {
  int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::bind(fd, at.data(), at.size());
  endpoint bound;
  socklen_t len = endpoint::capacity();
  ::getsockname(fd, bound.data(), &len);
  return {fd, endpoint(bound.data(), len).port()};
}

std::pair<int, endpoint> listen_loopback(int backlog, bool reuse_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (reuse_port) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  endpoint at = endpoint::loopback_v4(0);
  if (::bind(fd, at.data(), at.size()) != 0 || ::listen(fd, backlog) != 0) return {-1, {}};
  socklen_t len = endpoint::capacity();
  ::getsockname(fd, at.data(), &len);
  return {fd, endpoint(at.data(), len)};
}

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

bool drive(std::vector<stream_client>& clients, std::mt19937_64& rng, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<pollfd> pfd(clients.size());
  std::vector<char> buf(256 * 1024);
  std::size_t done = 0;
  for (auto& c : clients) set_nonblocking(c.fd);
  while (done < clients.size() && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      auto& c = clients[i];
      pfd[i].fd = c.eof ? -1 : c.fd;
      pfd[i].events = static_cast<short>(POLLIN | (c.sent < c.payload.size() ? POLLOUT : 0));
      pfd[i].revents = 0;
    }
    if (::poll(pfd.data(), pfd.size(), 1000) < 0 && errno != EINTR) return false;
    for (std::size_t i = 0; i < clients.size(); ++i) {
      auto& c = clients[i];
      if ((pfd[i].revents & POLLOUT) && c.sent < c.payload.size()) {
        std::size_t chunk = std::min<std::size_t>(c.payload.size() - c.sent, 1 + rng() % 65536);
        ssize_t r = ::send(c.fd, c.payload.data() + c.sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) c.sent += static_cast<std::size_t>(r);
      }
      if (c.sent == c.payload.size() && !c.shut) {
        ::shutdown(c.fd, SHUT_WR);  // half-close: the server must still echo everything
        c.shut = true;
      }
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r > 0) {
          c.got.append(buf.data(), static_cast<std::size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          c.eof = true;
          c.error = r == 0 ? 0 : errno;
          ++done;
        }
      }
    }
  }
  return true;
}

child::child(std::vector<std::string> argv, long nofile_limit) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    // Nothing else the test holds leaks into the app: its descriptors are
    // its own (tests count them, and limit them).
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (nofile_limit > 0) {
      rlimit rl{static_cast<rlim_t>(nofile_limit), static_cast<rlim_t>(nofile_limit)};
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  out_ = out[0];
  err_ = err[0];
  set_nonblocking(err_);
}

child::~child() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
  if (out_ >= 0) ::close(out_);
  if (err_ >= 0) ::close(err_);
}

std::string child::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || wait_for(out_, POLLIN, left) == 0) return "";
    char buf[4096];
    ssize_t r = ::read(out_, buf, sizeof buf);
    if (r <= 0) return "";
    buffered_.append(buf, static_cast<std::size_t>(r));
  }
}

std::string child::read_all(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || wait_for(out_, POLLIN, left) == 0) break;
    char buf[65536];
    ssize_t r = ::read(out_, buf, sizeof buf);
    if (r <= 0) break;
    buffered_.append(buf, static_cast<std::size_t>(r));
  }
  std::string all;
  all.swap(buffered_);
  return all;
}

void child::signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int child::wait(std::chrono::milliseconds timeout) {
  if (!exited_) {
    // Wait for the exit through the stdout pipe closing (an event), then reap.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return -1;
      if (wait_for(out_, POLLIN, left) == 0) return -1;
      ssize_t r = ::read(out_, buf, sizeof buf);
      if (r > 0) {
        buffered_.append(buf, static_cast<std::size_t>(r));
        continue;
      }
      break;
    }
    if (::waitpid(pid_, &status_, 0) != pid_) return -1;
    exited_ = true;
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

std::chrono::milliseconds child::cpu_time() const {
  std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream in(stat.substr(close_paren + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    in >> field;
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  long hz = ::sysconf(_SC_CLK_TCK);
  return std::chrono::milliseconds((utime + stime) * 1000 / static_cast<unsigned long>(hz));
}

std::string child::stderr_text() {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(err_, buf, sizeof buf);
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

std::string app_path(const char* env_var) {
  const char* v = std::getenv(env_var);
  if (v == nullptr) {
    ADD_FAILURE() << env_var << " is not set: run through meson test, or set it to the app's path";
    return "/nonexistent";
  }
  return v;
}

endpoint parse_announced(const std::string& line) {
  auto on = line.find(" on ");
  if (on == std::string::npos) return {};
  auto start = on + 4;
  auto end = line.find(' ', start);
  auto ep = endpoint::parse(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
  return ep ? *ep : endpoint{};
}

}  // namespace sluice::test
