#include "sluice/core/buffer_chain.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace sluice {

buffer_chain::buffer_chain(buffer_chain&& other) noexcept
    : bytes_(other.bytes_), consumed_(other.consumed_), pool_(other.pool_) {
  segs_.splice(segs_.end(), other.segs_);
  other.bytes_ = other.consumed_ = 0;
}

buffer_chain& buffer_chain::operator=(buffer_chain&& other) noexcept {
  if (this != &other) {
    clear();
    segs_.splice(segs_.end(), other.segs_);
    bytes_ = other.bytes_;
    consumed_ = other.consumed_;
    pool_ = other.pool_;
    other.bytes_ = other.consumed_ = 0;
  }
  return *this;
}

std::size_t buffer_chain::segment_count() const noexcept {
  return static_cast<std::size_t>(std::distance(segs_.begin(), segs_.end()));
}

void buffer_chain::clear() noexcept {
  while (!segs_.empty()) {
    segment& s = segs_.front();
    segs_.pop_front();
    segment_unref(&s);
  }
  bytes_ = consumed_ = 0;
}

buffer_chain::cursor buffer_chain::locate(std::size_t at) const noexcept {
  std::size_t skip_bytes = consumed_ + at;
  for (const segment& s : segs_) {
    if (skip_bytes < s.size()) return {&s, skip_bytes};
    skip_bytes -= s.size();
  }
  return {nullptr, 0};
}

bool buffer_chain::overwrite(std::size_t at, std::string_view bytes) noexcept {
  if (at + bytes.size() > size()) return false;
  std::size_t skip_bytes = consumed_ + at;
  std::size_t done = 0;
  for (segment& s : segs_) {
    if (done == bytes.size()) break;
    const std::uint32_t n = s.size();
    if (skip_bytes >= n) {
      skip_bytes -= n;
      continue;
    }
    const std::size_t k = std::min<std::size_t>(n - skip_bytes, bytes.size() - done);
    std::memcpy(s.data() + skip_bytes, bytes.data() + done, k);
    done += k;
    skip_bytes = 0;
  }
  return true;
}

char buffer_chain::at(std::size_t i) const noexcept {
  cursor c = locate(i);
  assert(c.seg != nullptr);
  return static_cast<char>(c.seg->data()[c.off]);
}

std::size_t buffer_chain::copy_out(void* dst, std::size_t n, std::size_t from) const noexcept {
  if (from >= size()) return 0;
  n = std::min(n, size() - from);
  auto* out = static_cast<std::byte*>(dst);
  std::size_t done = 0;
  cursor c = locate(from);
  auto it = list_type::s_iterator_to(*c.seg);
  std::size_t off = c.off;
  while (done < n && it != segs_.end()) {
    std::size_t k = std::min<std::size_t>(it->size() - off, n - done);
    std::memcpy(out + done, it->data() + off, k);
    done += k;
    off = 0;
    ++it;
  }
  return done;
}

std::optional<std::string_view> buffer_chain::peek(std::size_t n) noexcept {
  if (n > size()) return std::nullopt;
  if (n == 0) return std::string_view{};
  cursor c = locate(0);
  if (c.seg->size() - c.off >= n) {
    return std::string_view(reinterpret_cast<const char*>(c.seg->data()) + c.off, n);
  }
  if (pool_ == nullptr) return std::nullopt;
  std::byte* dst = pool_->scratch(n);
  if (dst == nullptr) return std::nullopt;
  copy_out(dst, n, 0);
  return std::string_view(reinterpret_cast<const char*>(dst), n);
}

std::optional<std::string_view> buffer_chain::next(std::size_t n) noexcept {
  auto v = peek(n);
  if (v) consume(n);
  return v;
}

bool buffer_chain::skip(std::size_t n) noexcept {
  if (n > size()) return false;
  consume(n);
  return true;
}

std::optional<std::size_t> buffer_chain::find(std::string_view delim, std::size_t limit,
                                              std::size_t from) const noexcept {
  const std::size_t avail = std::min(size(), limit);
  if (delim.empty()) return from <= avail ? std::optional<std::size_t>(from) : std::nullopt;
  if (avail < delim.size() || from > avail - delim.size()) return std::nullopt;
  const std::size_t last_start = avail - delim.size();  // a match must start at or before this
  cursor c = locate(from);
  auto it = list_type::s_iterator_to(*c.seg);
  std::size_t off = c.off;
  std::size_t base = from;  // unconsumed offset of it->data()[off]
  // True if delim[1..] follows the byte at (seg, pos); those bytes exist
  // because a candidate starts at or before last_start.
  auto rest_matches = [&](list_type::const_iterator seg, std::size_t pos) {
    for (std::size_t k = 1; k < delim.size(); ++k) {
      ++pos;
      while (pos >= seg->size()) {
        pos -= seg->size();
        ++seg;
      }
      if (static_cast<char>(seg->data()[pos]) != delim[k]) return false;
    }
    return true;
  };
  while (it != segs_.end() && base <= last_start) {
    const char* start = reinterpret_cast<const char*>(it->data()) + off;
    const std::size_t seg_len = it->size() - off;
    const std::size_t search_len = std::min(seg_len, last_start - base + 1);
    std::size_t i = 0;
    while (i < search_len) {
      const void* hit = std::memchr(start + i, delim[0], search_len - i);
      if (hit == nullptr) break;
      std::size_t k = static_cast<std::size_t>(static_cast<const char*>(hit) - start);
      if (rest_matches(it, off + k)) return base + k;
      i = k + 1;
    }
    base += seg_len;
    ++it;
    off = 0;
  }
  return std::nullopt;
}

std::optional<std::size_t> buffer_chain::find_any(std::string_view set, std::size_t limit,
                                                  std::size_t from) const noexcept {
  const std::size_t avail = std::min(size(), limit);
  if (from >= avail) return std::nullopt;
  std::size_t pos = from;
  std::optional<std::size_t> found;
  for_each_piece(
      [&](std::string_view piece) {
        std::size_t n = std::min(piece.size(), avail - pos);
        std::size_t k = std::string_view::npos;
        if (set.size() == 1) {
          // One byte to look for (a line decoder's case): memchr is fastest.
          if (const void* hit = std::memchr(piece.data(), set[0], n)) {
            k = static_cast<std::size_t>(static_cast<const char*>(hit) - piece.data());
          }
        } else {
          k = piece.substr(0, n).find_first_of(set);
        }
        if (k != std::string_view::npos) {
          found = pos + k;
          return false;
        }
        pos += n;
        return pos < avail;
      },
      from);
  return found;
}

std::optional<std::string_view> buffer_chain::until(std::string_view delim, std::size_t max) noexcept {
  std::size_t limit = max > SIZE_MAX - delim.size() ? SIZE_MAX : max + delim.size();
  auto hit = find(delim, limit);
  if (!hit) return std::nullopt;
  return next(*hit + delim.size());
}

std::optional<std::string_view> buffer_chain::read_line(std::size_t max) noexcept {
  // The line content may be max bytes, followed by CRLF.
  std::size_t limit = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
  auto lf = find("\n", limit);
  if (!lf) return std::nullopt;
  std::size_t content = *lf;
  if (content > 0 && at(content - 1) == '\r') --content;
  if (content > max) return std::nullopt;
  auto v = next(*lf + 1);
  if (!v) return std::nullopt;
  return v->substr(0, content);
}

void buffer_chain::release() noexcept {
  while (consumed_ > 0 && !segs_.empty()) {
    segment& s = segs_.front();
    if (consumed_ >= s.size()) {
      consumed_ -= s.size();
      bytes_ -= s.size();
      segs_.pop_front();
      segment_unref(&s);
    } else {
      // Drop the consumed bytes from the front segment. Its memory stays where
      // it is, so a deferred view of them remains readable until reclaim.
      s.begin += static_cast<std::uint32_t>(consumed_);
      bytes_ -= consumed_;
      consumed_ = 0;
    }
  }
}

std::span<std::byte> buffer_chain::reserve(std::size_t n) noexcept {
  if (!segs_.empty()) {
    segment& t = segs_.back();
    if (t.tail_writable() && t.tailroom() >= n) return {t.base + t.end, t.tailroom()};
  }
  if (pool_ == nullptr || n > pool_->segment_size()) return {};
  segment* s = pool_->allocate();
  if (s == nullptr) return {};
  segs_.push_back(*s);
  return {s->base + s->end, s->tailroom()};
}

void buffer_chain::commit(std::size_t n) noexcept {
  assert(!segs_.empty() && segs_.back().tailroom() >= n);
  segs_.back().end += static_cast<std::uint32_t>(n);
  bytes_ += n;
}

bool buffer_chain::write(std::string_view bytes) noexcept {
  if (bytes.empty()) return true;
  std::size_t room = 0;
  if (!segs_.empty() && segs_.back().tail_writable()) room = segs_.back().tailroom();
  // Allocate everything first, so that a failure writes nothing.
  list_type fresh;
  if (bytes.size() > room) {
    if (pool_ == nullptr) return false;
    std::size_t need = bytes.size() - room;
    while (need > 0) {
      segment* s = pool_->allocate();
      if (s == nullptr) {
        while (!fresh.empty()) {
          segment& f = fresh.front();
          fresh.pop_front();
          segment_unref(&f);
        }
        return false;
      }
      fresh.push_back(*s);
      need -= std::min<std::size_t>(need, s->tailroom());
    }
  }
  const char* src = bytes.data();
  std::size_t left = bytes.size();
  if (room > 0) {
    segment& t = segs_.back();
    std::size_t k = std::min(room, left);
    std::memcpy(t.base + t.end, src, k);
    t.end += static_cast<std::uint32_t>(k);
    src += k;
    left -= k;
  }
  while (left > 0) {
    segment& s = fresh.front();
    fresh.pop_front();
    std::size_t k = std::min<std::size_t>(s.tailroom(), left);
    std::memcpy(s.base + s.end, src, k);
    s.end += static_cast<std::uint32_t>(k);
    src += k;
    left -= k;
    segs_.push_back(s);
  }
  assert(fresh.empty());
  bytes_ += bytes.size();
  return true;
}

void buffer_chain::append(buffer_chain&& other) noexcept {
  if (&other == this) return;
  other.release();  // leaves no consumed bytes behind
  // Empty segments are dropped rather than carried along.
  while (!other.segs_.empty() && other.segs_.front().size() == 0) {
    segment& s = other.segs_.front();
    other.segs_.pop_front();
    segment_unref(&s);
  }
  bytes_ += other.bytes_;
  segs_.splice(segs_.end(), other.segs_);
  other.bytes_ = 0;
  if (pool_ == nullptr) pool_ = other.pool_;
}

void buffer_chain::append(segment* s) noexcept {
  bytes_ += s->size();
  segs_.push_back(*s);
}

bool buffer_chain::append_static(std::string_view bytes) noexcept {
  if (bytes.empty()) return true;
  if (pool_ == nullptr) return false;
  segment* s = pool_->wrap(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  if (s == nullptr) return false;
  append(s);
  return true;
}

bool buffer_chain::take(std::size_t n, buffer_chain& into) noexcept {
  assert(n <= size());
  release();  // leaves no consumed bytes behind
  if (into.pool_ == nullptr) into.pool_ = pool_;
  // Move whole segments while they fit.
  while (n > 0 && !segs_.empty()) {
    segment& s = segs_.front();
    if (s.size() <= n) {
      segs_.pop_front();
      bytes_ -= s.size();
      n -= s.size();
      into.append(&s);
      continue;
    }
    // Cut this segment: the head goes as a clone sharing its bytes.
    if (pool_ == nullptr) return false;
    segment* head = pool_->clone(&s, 0, static_cast<std::uint32_t>(n));
    if (head == nullptr) return false;
    // The rest stays here; its owner now counts the clone, so no writer
    // appends into it until the clone is gone (tail_writable checks refs).
    s.begin += static_cast<std::uint32_t>(n);
    bytes_ -= n;
    into.append(head);
    n = 0;
  }
  return n == 0;
}

}  // namespace sluice
