#include "open_file_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <functional>

namespace sluice::httpd {

open_file_cache::open_file_cache(const static_files& files, const open_file_cache_options& opts)
    : files_(files), opts_(opts), slots_(opts.entries) {
  free_.reserve(slots_.size());
  for (auto& e : slots_) {
    e.path.reserve(128);
    free_.push_back(&e);
  }
  if (!slots_.empty()) {
    index_.assign(std::bit_ceil(slots_.size() * 2), nullptr);
    mask_ = index_.size() - 1;
  }
}

open_file_cache::~open_file_cache() {
  while (!lru_.empty()) close(&lru_.back());
}

open_file_cache::entry* open_file_cache::find(std::string_view path, std::size_t hash) const noexcept {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    entry* e = index_[i];
    if (e == nullptr) return nullptr;
    if (e->hash == hash && e->path == path) return e;
  }
}

void open_file_cache::insert_index(entry* e) noexcept {
  std::size_t i = e->hash & mask_;
  while (index_[i] != nullptr) i = (i + 1) & mask_;
  index_[i] = e;
}

void open_file_cache::erase_index(const entry* e) noexcept {
  std::size_t i = e->hash & mask_;
  while (index_[i] != e) i = (i + 1) & mask_;
  index_[i] = nullptr;
  // Backward shift: every later entry of the run that could sit at i moves
  // there, so a probe never stops early at the hole.
  for (std::size_t j = (i + 1) & mask_; index_[j] != nullptr; j = (j + 1) & mask_) {
    const std::size_t home = index_[j]->hash & mask_;
    const bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (between) continue;  // already as close to home as it can be
    index_[i] = index_[j];
    index_[j] = nullptr;
    i = j;
  }
}

void open_file_cache::close(entry* e) noexcept {
  erase_index(e);
  lru_.erase(lru_.iterator_to(*e));
  ::close(e->fd);
  e->fd = -1;
  free_.push_back(e);
  --used_;
}

void open_file_cache::expire(time_point now) noexcept {
  while (!lru_.empty() && now - lru_.back().last_used >= opts_.inactive) {
    close(&lru_.back());
    ++stats_.evictions;
  }
}

static_files::outcome open_file_cache::lookup(std::string_view request_path, static_files::file& out,
                                              time_point now) noexcept {
  if (slots_.empty()) return files_.lookup(request_path, out);
  expire(now);
  const std::size_t hash = std::hash<std::string_view>{}(request_path);
  entry* e = find(request_path, hash);
  if (e != nullptr && now - e->checked < opts_.valid) {
    ++stats_.hits;
    e->last_used = now;
    lru_.erase(lru_.iterator_to(*e));
    lru_.push_front(*e);
    out.fd = e->fd;
    out.size = e->size;
    out.content_type = e->content_type;
    out.owned = false;
    if (e->has_content) {
      ++stats_.content_hits;
      out.content = e->content;
    }
    return static_files::outcome::found;
  }
  ++stats_.misses;
  // Past `valid` (or new): the file system says what the path is now.
  if (e != nullptr) close(e);
  const static_files::outcome o = files_.lookup(request_path, out);
  if (o != static_files::outcome::found) return o;
  if (free_.empty()) {
    close(&lru_.back());
    ++stats_.evictions;
  }
  e = free_.back();
  free_.pop_back();
  e->path.assign(request_path);
  e->hash = hash;
  e->fd = out.fd;
  e->size = out.size;
  e->content_type = out.content_type;
  e->checked = now;
  e->last_used = now;
  e->has_content = false;
  if (out.size <= opts_.content) {
    e->content.resize(out.size);
    const ssize_t got = ::pread(out.fd, e->content.data(), e->content.size(), 0);
    e->has_content = got == static_cast<ssize_t>(out.size);  // else served from the descriptor
    if (e->has_content) out.content = e->content;
  }
  lru_.push_front(*e);
  insert_index(e);
  ++used_;
  out.owned = false;
  return o;
}

bool open_file_cache::index_consistent() const noexcept {
  std::size_t indexed = 0;
  for (const entry* e : index_) indexed += e != nullptr ? 1 : 0;
  if (indexed != used_ || lru_.size() != used_) return false;
  for (const entry& e : lru_) {
    if (find(e.path, e.hash) != &e) return false;
  }
  return true;
}

int open_file_cache::take(const static_files::file& f) noexcept {
  if (f.owned) return f.fd;
  return ::fcntl(f.fd, F_DUPFD_CLOEXEC, 0);
}

}  // namespace sluice::httpd
