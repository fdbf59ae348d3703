#pragma once
// sluice-httpd's open-file cache (--open-file-cache, as nginx's
// open_file_cache): the descriptor and size of recently served files, per
// loop, so a request for a cached file costs one pread(2) instead of
// openat2, fstat, pread and close; and the bytes of small files
// (--open-file-cache-content, default 16k), so a request for one costs no
// system call at all (nginx has no such cache for static files).
//
// What it keeps: only files that were found (errors are asked again every
// time), keyed by the request path as it came (one file may sit under two
// spellings). What it trades: an entry is trusted for `valid` (default 1 s)
// and then looked up again; until then a file replaced by rename or deleted
// is still served as it was, and so is a small file changed in place (its
// bytes were kept); a larger one changed in place is read as it is now,
// with the size of the last check (one that shrank resets the connection,
// as without the cache). Entries unused for `inactive` are closed at the
// next lookup, so a deleted file's space is given back at most that long
// after its last request, once the loop serves anything.
//
// Memory and descriptors: at most `entries` open descriptors and
// entries x content bytes per loop; the least recently used entry is
// closed to make room. A hit allocates nothing; a miss may (a slot's key
// and bytes grow to the longest path and largest small file it has held).
//
// Owner loop only (one cache per loop, in its httpd_context).

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/cli.hpp"
#include "sluice/base/time.hpp"
#include "static_files.hpp"

namespace sluice::httpd {

// --open-file-cache and its timings.
struct open_file_cache_options {
  std::size_t entries = 256;  // per loop; 0 turns the cache off
  duration valid = std::chrono::seconds(1);      // an entry is looked up again after this
  duration inactive = std::chrono::seconds(60);  // an entry unused this long is closed
  std::size_t content = 16 * 1024;  // files up to this size are kept in memory too (0: none)
};

namespace ranges {
// --open-file-cache: open descriptors per loop (the process's descriptor
// limit is checked against entries x loops at start).
inline constexpr number_range open_file_cache{0, 64 * 1024};
// --open-file-cache-valid: how long a found file is trusted.
inline constexpr duration_range open_file_cache_valid{std::chrono::milliseconds(1), std::chrono::hours(1)};
// --open-file-cache-inactive: how long an unused entry stays open.
inline constexpr duration_range open_file_cache_inactive{std::chrono::seconds(1), std::chrono::hours(24)};
// --open-file-cache-content: the largest file kept in memory (the app also
// keeps it below --max-output minus the output's high water, so one
// response always fits).
inline constexpr number_range open_file_cache_content{0, 1024 * 1024, number_unit::bytes};
}  // namespace ranges

// The cache of one loop (see the file comment).
class open_file_cache {
 public:
  // What it did (metrics and tests).
  struct counters {
    std::uint64_t hits = 0;       // served from an entry
    std::uint64_t content_hits = 0;  // of which from its bytes in memory
    std::uint64_t misses = 0;     // asked static_files (no entry, or one past `valid`)
    std::uint64_t evictions = 0;  // entries closed for room or inactivity
  };

  // A cache in front of `files` (which must outlive it).
  open_file_cache(const static_files& files, const open_file_cache_options& opts);
  ~open_file_cache();
  open_file_cache(const open_file_cache&) = delete;
  open_file_cache& operator=(const open_file_cache&) = delete;

  // As static_files::lookup at time `now`. On `found` from the cache (or
  // newly cached), out.owned is false: the descriptor (and out.content,
  // the whole file when it is small) are the cache's, valid until the next
  // lookup on this loop; a response that outlives this call must dup(2)
  // the descriptor (see take()) and copy the bytes.
  [[nodiscard]] static_files::outcome lookup(std::string_view request_path, static_files::file& out,
                                             time_point now) noexcept;
  // Makes a borrowed descriptor the caller's own (dup with close-on-exec);
  // -1 if that fails. An owned one is returned as it is.
  [[nodiscard]] static int take(const static_files::file& f) noexcept;

  [[nodiscard]] const counters& stats() const noexcept { return stats_; }
  // Entries open now.
  [[nodiscard]] std::size_t size() const noexcept { return used_; }
  // Every entry is found by its key and the index holds nothing else
  // (tests: the invariant deletions must keep).
  [[nodiscard]] bool index_consistent() const noexcept;

 private:
  struct entry : boost::intrusive::list_base_hook<> {
    std::string path;  // the request path (key)
    std::size_t hash = 0;
    int fd = -1;
    std::uint64_t size = 0;
    std::string_view content_type;
    std::string content;      // the whole file, if small enough
    bool has_content = false;
    time_point checked{};    // last looked up in static_files
    time_point last_used{};  // last served
  };
  using lru_list = boost::intrusive::list<entry>;  // most recently used first

  [[nodiscard]] entry* find(std::string_view path, std::size_t hash) const noexcept;
  void insert_index(entry* e) noexcept;
  void erase_index(const entry* e) noexcept;
  void close(entry* e) noexcept;
  void expire(time_point now) noexcept;

  const static_files& files_;
  open_file_cache_options opts_;
  std::vector<entry> slots_;
  std::vector<entry*> free_;
  // Open addressing, linear probing, a power of two at least twice the
  // entries; deletion shifts the run back (no tombstones).
  std::vector<entry*> index_;
  std::size_t mask_ = 0;
  lru_list lru_;
  std::size_t used_ = 0;
  counters stats_;
};

}  // namespace sluice::httpd
