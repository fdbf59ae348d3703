#include "http_client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "net.hpp"

namespace sluice::test {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string http_reply::field(std::string_view name) const {
  std::string_view rest(head);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !iequal(line.substr(0, colon), name)) continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return std::string(v);
  }
  return {};
}

http_client::http_client(const endpoint& server) : fd_(connect_to(server)) {}

http_client::~http_client() {
  if (fd_ >= 0) ::close(fd_);
}

bool http_client::send(std::string_view bytes) { return fd_ >= 0 && send_all(fd_, bytes); }

bool http_client::fill(std::chrono::steady_clock::time_point deadline) {
  if (eof_ || fd_ < 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0 || (wait_for(fd_, POLLIN, left) & (POLLIN | POLLHUP | POLLERR)) == 0) return false;
  char tmp[65536];
  ssize_t r = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (r <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(tmp, static_cast<std::size_t>(r));
  return true;
}

std::optional<http_reply> http_client::read_reply(bool head_only, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) return std::nullopt;
  }
  http_reply r;
  r.head = buf_.substr(0, end);
  buf_.erase(0, end + 4);
  if (r.head.size() < 12 || r.head.compare(0, 9, "HTTP/1.1 ") != 0) return std::nullopt;
  r.status = std::atoi(r.head.c_str() + 9);
  if (r.status < 200 || head_only) return r;  // 1xx and HEAD answers carry no body
  const std::string length = r.field("content-length");
  if (length.empty()) return std::nullopt;  // sluice-httpd always sends one
  const auto n = static_cast<std::size_t>(std::strtoull(length.c_str(), nullptr, 10));
  while (buf_.size() < n) {
    if (!fill(deadline)) return std::nullopt;
  }
  r.body = buf_.substr(0, n);
  buf_.erase(0, n);
  return r;
}

bool http_client::closed_by_server(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    if (!fill(deadline) && !eof_) return false;
  }
  return true;
}

std::string get_request(std::string_view path, std::string_view extra_headers) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) + "\r\n";
}

}  // namespace sluice::test
