#pragma once
// The --root directory of sluice-httpd: maps a request path to a file under
// it and opens it, without ever leaving it.
//
// The path is percent-decoded and normalised ("." and empty segments
// dropped, ".." removed with the segment before it); a ".." that would climb
// above the root is refused (403) before the file system is asked. The file
// is then opened relative to the root's descriptor with openat2(2) and
// RESOLVE_BENEATH, so the kernel also refuses symlinks (and "..") that lead
// out of the root, atomically. Kernels without openat2 (before 5.6) fall
// back to realpath(3) and a prefix check, which a symlink swapped in between
// the check and the open could fool: documented, not hidden.
//
// Opening is a blocking system call on the loop thread: fine for files in
// the page cache, which is what a benchmark and a test upstream serve.
//
// Immutable after open(); any thread may look up.

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/base/result.hpp"

namespace sluice::httpd {

class static_files {
 public:
  // A file found: its descriptor, size and type.
  struct file {
    int fd = -1;
    std::uint64_t size = 0;
    std::string_view content_type;
    bool owned = true;  // the caller closes fd (false: an open_file_cache's, borrowed)
    // The whole file from an open_file_cache (data() null when it keeps
    // only the descriptor).
    std::string_view content;
  };
  enum class outcome : std::uint8_t { found, not_found, forbidden, bad_path };

  // Opens the root directory (it must exist and be a directory).
  static result<static_files> open(const std::string& dir);
  static_files(static_files&& other) noexcept;
  static_files& operator=(static_files&&) = delete;
  static_files(const static_files&) = delete;
  ~static_files();

  // Finds the regular file for a request path ("/a/b.html", still
  // percent-encoded, without query); a directory means its index.html.
  // On `found`, `out.fd` is open and the caller closes it.
  [[nodiscard]] outcome lookup(std::string_view request_path, file& out) const noexcept;
  [[nodiscard]] const std::string& root() const noexcept { return root_; }

  // "text/html", "image/png", ...; application/octet-stream when unknown.
  [[nodiscard]] static std::string_view content_type(std::string_view path) noexcept;

 private:
  static_files(int fd, std::string root) noexcept : fd_(fd), root_(std::move(root)) {}
  [[nodiscard]] int open_beneath(const char* relative) const noexcept;

  int fd_ = -1;
  std::string root_;  // realpath of the root, for the fallback check
};

}  // namespace sluice::httpd
