#include "static_files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice::httpd {

namespace {

constexpr int open_flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;  // NONBLOCK: a FIFO must not hang the loop

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`, then normalises its segments into `out` as a path
// relative to the root ("a/b/c", "." for the root itself).
static_files::outcome relative_path(std::string_view in, std::array<char, PATH_MAX>& out) noexcept {
  if (in.empty() || in.front() != '/') return static_files::outcome::bad_path;
  std::array<char, PATH_MAX> decoded{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return static_files::outcome::bad_path;  // '%' needs two hex digits
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return static_files::outcome::bad_path;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return static_files::outcome::bad_path;
    if (n + 1 >= decoded.size()) return static_files::outcome::not_found;  // longer than any path
    decoded[n++] = c;
  }
  // Segments after decoding, so "%2e%2e%2f" is a ".." like any other.
  std::size_t len = 0;
  std::string_view rest(decoded.data(), n);
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (len == 0) return static_files::outcome::forbidden;  // would climb above the root
      while (len > 0 && out[len - 1] != '/') --len;
      if (len > 0) --len;  // the slash before the dropped segment
      continue;
    }
    if (len + (len != 0 ? 1 : 0) + seg.size() + 1 >= out.size()) return static_files::outcome::not_found;
    if (len != 0) out[len++] = '/';
    std::memcpy(out.data() + len, seg.data(), seg.size());
    len += seg.size();
  }
  if (len == 0) out[len++] = '.';
  out[len] = '\0';
  return static_files::outcome::found;
}

static_files::outcome from_errno(int err) noexcept {
  switch (err) {
    case EXDEV:   // a symlink or ".." leading out of the root
    case ELOOP:
    case EACCES:
    case EPERM:
      return static_files::outcome::forbidden;
    default:
      return static_files::outcome::not_found;
  }
}

}  // namespace

result<static_files> static_files::open(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return error::from_errno(errno, "--root " + dir);
  std::array<char, PATH_MAX> real{};
  if (::realpath(dir.c_str(), real.data()) == nullptr) {
    int err = errno;
    ::close(fd);
    return error::from_errno(err, "--root " + dir);
  }
  return static_files(fd, real.data());
}

static_files::static_files(static_files&& other) noexcept : fd_(other.fd_), root_(std::move(other.root_)) {
  other.fd_ = -1;
}

static_files::~static_files() {
  if (fd_ >= 0) ::close(fd_);
}

int static_files::open_beneath(const char* relative) const noexcept {
  open_how how{};
  how.flags = open_flags;
  // BENEATH: no absolute path, no "..", no symlink may resolve outside the
  // root. NO_MAGICLINKS: /proc-style links are refused too.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, fd_, relative, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
  // Before Linux 5.6: resolve, check the prefix, open what was checked.
  std::array<char, PATH_MAX> full{};
  std::array<char, PATH_MAX> real{};
  if (static_cast<std::size_t>(std::snprintf(full.data(), full.size(), "%s/%s", root_.c_str(), relative)) >=
      full.size()) {
    errno = ENAMETOOLONG;
    return -1;
  }
  if (::realpath(full.data(), real.data()) == nullptr) return -1;
  const std::string_view r(real.data());
  if (r != root_ && (r.size() <= root_.size() || r.compare(0, root_.size(), root_) != 0 || r[root_.size()] != '/')) {
    errno = EXDEV;
    return -1;
  }
  return ::open(real.data(), open_flags);
}

static_files::outcome static_files::lookup(std::string_view request_path, file& out) const noexcept {
  std::array<char, PATH_MAX> rel{};
  if (const outcome o = relative_path(request_path, rel); o != outcome::found) return o;
  int fd = open_beneath(rel.data());
  if (fd < 0) return from_errno(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return outcome::not_found;
  }
  std::size_t len = std::strlen(rel.data());
  if (S_ISDIR(st.st_mode)) {
    // A directory serves its index.html (resolved from the root again, so
    // the same rules hold for it).
    ::close(fd);
    constexpr std::string_view index = "index.html";
    const bool at_root = len == 1 && rel[0] == '.';
    if (at_root) len = 0;
    if (len + 1 + index.size() >= rel.size()) return outcome::not_found;
    if (!at_root) rel[len++] = '/';
    std::memcpy(rel.data() + len, index.data(), index.size() + 1);
    len += index.size();
    fd = open_beneath(rel.data());
    if (fd < 0) return from_errno(errno);
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return outcome::not_found;
    }
  }
  if (!S_ISREG(st.st_mode)) {  // devices, FIFOs, sockets are not served
    ::close(fd);
    return outcome::not_found;
  }
  out.fd = fd;
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.content_type = content_type(std::string_view(rel.data(), len));
  return outcome::found;
}

std::string_view static_files::content_type(std::string_view path) noexcept {
  const std::size_t dot = path.rfind('.');
  const std::size_t slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return "application/octet-stream";
  }
  const std::string_view ext = path.substr(dot + 1);
  struct entry {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr entry types[] = {
      {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"}, {"css", "text/css"},
      {"js", "text/javascript"},            {"json", "application/json"},
      {"xml", "application/xml"},           {"svg", "image/svg+xml"},
      {"png", "image/png"},                 {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
      {"webp", "image/webp"},               {"ico", "image/x-icon"},
      {"wasm", "application/wasm"},         {"pdf", "application/pdf"},
  };
  for (const entry& e : types) {
    if (e.ext == ext) return e.type;
  }
  return "application/octet-stream";
}

}  // namespace sluice::httpd
