#pragma once
// A buffer chain: an intrusive list of segments holding a byte stream, with a
// reader cursor at the front and a writer at the tail.
//
//   segments:  [#####|....]-->[##########]-->[#####.....]
//               ^consumed^cursor            unconsumed ^tail (reserve/commit)
//
// Reader: peek, next, skip, until, read_line, find, release. Bytes that next()
// or until() consumed stay valid (and so do the views returned for them) until
// release() is called or, inside a handler, until the handler returns: the loop
// releases what the handler consumed. A view of bytes that lie in one segment
// points into that segment; a view that spans segments is copied once into the
// pool's scratch arena (the only copy on the read side).
//
// Writer: reserve/commit (write in place), write (copy), append (move another
// chain's bytes, zero copy), take (split off the first n bytes, zero copy: a
// segment cut in two becomes two descriptors that share its bytes).
//
// Owner core only; a chain and its segments belong to one loop's pool.

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "sluice/core/segment.hpp"
#include "sluice/core/segment_pool.hpp"

namespace sluice {

// A byte stream in segments (see the file comment): a connection's input and
// output, a decoded frame, a datagram. Movable, not copyable; it owns its
// segments and gives them back to their pool when dropped.
class buffer_chain {
 public:
  // The intrusive list of segments a chain holds.
  using list_type = boost::intrusive::list<
      segment, boost::intrusive::member_hook<segment, boost::intrusive::list_member_hook<>, &segment::hook>,
      boost::intrusive::constant_time_size<false>>;

  // An empty chain that allocates from `pool` (nullptr: it can only take
  // segments from elsewhere, not reserve or write).
  explicit buffer_chain(segment_pool* pool = nullptr) noexcept : pool_(pool) {}
  // Takes other's segments, consumed ones included, and its pool; other is left
  // empty.
  buffer_chain(buffer_chain&& other) noexcept;
  // Drops this chain's segments, then takes other's, as the move constructor
  // does.
  buffer_chain& operator=(buffer_chain&& other) noexcept;
  buffer_chain(const buffer_chain&) = delete;
  buffer_chain& operator=(const buffer_chain&) = delete;
  // Drops every segment (consumed or not).
  ~buffer_chain() { clear(); }

  // The pool new segments come from (nullptr if none).
  [[nodiscard]] segment_pool* pool() const noexcept { return pool_; }
  // Changes the pool new segments come from; segments already held keep theirs.
  void set_pool(segment_pool* pool) noexcept { pool_ = pool; }

  // Unconsumed bytes.
  [[nodiscard]] std::size_t size() const noexcept { return bytes_ - consumed_; }
  // No unconsumed bytes.
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  // Consumed bytes still held until release().
  [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }
  // Segments held, consumed ones included (counted by walking the list).
  [[nodiscard]] std::size_t segment_count() const noexcept;

  // ---- reader -------------------------------------------------------------

  // The first n unconsumed bytes as one contiguous view, without consuming
  // them; nullopt when fewer than n bytes are buffered (or, for a view that
  // spans segments, when no scratch memory could be had).
  [[nodiscard]] std::optional<std::string_view> peek(std::size_t n) noexcept;
  // peek(n), then consume those bytes.
  [[nodiscard]] std::optional<std::string_view> next(std::size_t n) noexcept;
  // Consumes n bytes without looking at them; false (nothing consumed) when
  // fewer than n are buffered.
  bool skip(std::size_t n) noexcept;
  // Offset of the first occurrence of `delim` that starts at or after `from`
  // and ends within the first `limit` unconsumed bytes, or nullopt. A decoder
  // that waits for more input passes `from` to resume where it stopped
  // instead of scanning the same bytes again.
  [[nodiscard]] std::optional<std::size_t> find(std::string_view delim, std::size_t limit = SIZE_MAX,
                                                std::size_t from = 0) const noexcept;
  // Offset of the first byte at or after `from` that is any of `set`, within
  // the first `limit` bytes.
  [[nodiscard]] std::optional<std::size_t> find_any(std::string_view set, std::size_t limit = SIZE_MAX,
                                                    std::size_t from = 0) const noexcept;
  // Consumes and returns everything up to and including the first `delim` if
  // it ends within `max` bytes; nullopt otherwise (check size() > max to tell
  // "too long" from "need more").
  [[nodiscard]] std::optional<std::string_view> until(std::string_view delim,
                                                      std::size_t max = SIZE_MAX) noexcept;
  // Consumes one line ending in LF or CRLF and returns it without the ending;
  // nullopt if no line end lies within `max` bytes of line content.
  [[nodiscard]] std::optional<std::string_view> read_line(std::size_t max = SIZE_MAX) noexcept;
  // The unconsumed byte at offset i (i < size()).
  [[nodiscard]] char at(std::size_t i) const noexcept;
  // Copies up to n unconsumed bytes starting at offset `from` into dst, returns count.
  std::size_t copy_out(void* dst, std::size_t n, std::size_t from = 0) const noexcept;
  // Frees the segments whose bytes were all consumed. Invalidates views of
  // consumed bytes (unless the pool defers, as it does inside a handler).
  void release() noexcept;

  // Calls f(std::string_view piece) for each contiguous piece of unconsumed
  // bytes at or after offset `from`, in order, until f returns false.
  template <class F>
  void for_each_piece(F&& f, std::size_t from = 0) const noexcept {
    std::size_t skip_bytes = consumed_ + from;
    for (const segment& s : segs_) {
      std::uint32_t n = s.size();
      if (skip_bytes >= n) {
        skip_bytes -= n;
        continue;
      }
      std::string_view piece(reinterpret_cast<const char*>(s.data()) + skip_bytes, n - skip_bytes);
      skip_bytes = 0;
      if (!f(piece)) return;
    }
  }

  // The contiguous piece of unconsumed bytes that starts at offset `from`
  // (up to the end of its segment); empty at or past the end. Parsers that
  // feed a C library segment by segment use it.
  [[nodiscard]] std::string_view piece_at(std::size_t from) const noexcept {
    std::string_view piece;
    for_each_piece(
        [&piece](std::string_view s) {
          piece = s;
          return false;
        },
        from);
    return piece;
  }

  // ---- writer -------------------------------------------------------------

  // Contiguous writable space of at least n bytes at the tail (n must not
  // exceed the pool's segment size); empty when the pool is exhausted. The
  // bytes become part of the chain at commit().
  [[nodiscard]] std::span<std::byte> reserve(std::size_t n) noexcept;
  // Makes n of the bytes reserve() gave part of the chain (n at most what was
  // reserved).
  void commit(std::size_t n) noexcept;
  // Overwrites unconsumed bytes [at, at + bytes.size()) in place (no copy
  // of the rest): to patch a header in a received buffer before sending it
  // back. The chain's segments are this loop's; a segment shared with
  // another chain shows the change there too. False (nothing written) when
  // the range is not all buffered.
  [[nodiscard]] bool overwrite(std::size_t at, std::string_view bytes) noexcept;
  // Copies bytes in; on pool exhaustion writes nothing and returns false.
  [[nodiscard]] bool write(std::string_view bytes) noexcept;
  // write(string_view) for raw bytes.
  [[nodiscard]] bool write(std::span<const std::byte> bytes) noexcept {
    return write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  // Moves all of other's unconsumed bytes to the tail of this chain, without
  // copying; other's consumed bytes are released. other is left empty.
  void append(buffer_chain&& other) noexcept;
  // Appends a segment this chain now owns.
  void append(segment* s) noexcept;
  // Appends bytes that outlive the chain (static data) by reference.
  [[nodiscard]] bool append_static(std::string_view bytes) noexcept;
  // Splits off the first n unconsumed bytes (n <= size()) into a new chain,
  // without copying; false if a descriptor could not be had.
  [[nodiscard]] bool take(std::size_t n, buffer_chain& into) noexcept;
  // Drops every segment.
  void clear() noexcept;

  // For transports: the writable tail room of the last segment, without
  // allocating (empty if there is none); fill it, then commit().
  [[nodiscard]] std::span<std::byte> tail_room() noexcept {
    if (segs_.empty() || !segs_.back().tail_writable()) return {};
    segment& t = segs_.back();
    return {t.base + t.end, t.tailroom()};
  }
  // For transports: the segment list, read-only.
  [[nodiscard]] const list_type& segments() const noexcept { return segs_; }
  // For transports: releases what was consumed, then unlinks the first
  // segment and hands it over with its reference (the caller now owns it);
  // nullptr if the chain is empty. The user-space stack sends an echoed
  // datagram in the very buffer it arrived in this way.
  [[nodiscard]] segment* pop_front_segment() noexcept {
    release();
    if (segs_.empty()) return nullptr;
    segment& s = segs_.front();
    segs_.pop_front();
    bytes_ -= s.size();
    return &s;
  }
  // For transports: consumes n bytes and releases at once.
  void drop_front(std::size_t n) noexcept {
    skip(n);
    release();
  }

 private:
  struct cursor {
    const segment* seg;
    std::size_t off;  // within seg's data
  };
  // The position of unconsumed offset `at`, walking from the front.
  [[nodiscard]] cursor locate(std::size_t at) const noexcept;
  void consume(std::size_t n) noexcept { consumed_ += n; }

  list_type segs_;
  std::size_t bytes_ = 0;     // data bytes of every segment, consumed included
  std::size_t consumed_ = 0;  // consumed bytes at the front not yet released
  segment_pool* pool_ = nullptr;
};

}  // namespace sluice
