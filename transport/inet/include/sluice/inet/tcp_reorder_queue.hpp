#pragma once
// A connection's out-of-order queue: segments that arrived beyond RCV.NXT,
// kept in the packet buffers they came in (zero copy), ordered by sequence,
// overlaps trimmed on insertion, bounded in buffer memory (what does not fit
// is a counted drop; the sender retransmits it). When the gap before them
// fills, pop_ready() hands them over in order. The SACK blocks a receiver
// reports (RFC 2018 section 4: the block holding the most recent arrival
// first, then the others) come from here.
//
// Owner core only; no allocation (a fixed array of entries).

#include <array>
#include <cstddef>
#include <cstdint>

#include "sluice/inet/packet.hpp"
#include "sluice/inet/tcp_header.hpp"

namespace sluice::inet {

// The out-of-order queue of one connection (see the file comment): segments
// beyond RCV.NXT, sorted, in the buffers they arrived in. Held by the control
// block.
class tcp_reorder_queue {
 public:
  // Enough for a 256 KiB receive window (the default: max_input_bytes) in
  // full-sized segments (181), so that one hole early in the window does
  // not cost every segment after it; 4 KiB per connection.
  static constexpr std::size_t max_entries = 256;

  tcp_reorder_queue() noexcept = default;
  tcp_reorder_queue(const tcp_reorder_queue&) = delete;
  tcp_reorder_queue& operator=(const tcp_reorder_queue&) = delete;
  ~tcp_reorder_queue() { clear(); }

  // What insert() did with the packet.
  enum class insert_result : std::uint8_t { stored, duplicate, no_room };
  // Keeps p, whose segment holds the payload bytes [seq, seq + p->size()),
  // all beyond rcv_nxt. Parts already held are cut off; a segment wholly
  // held is a duplicate (p given back). no_room: over max_entries or
  // `memory_limit` bytes of buffer capacity (p given back).
  insert_result insert(packet* p, std::uint32_t seq, std::size_t memory_limit) noexcept;
  // The first queued segment if it starts at or before rcv_nxt (its part
  // before rcv_nxt already cut off), removed from the queue; nullptr if the
  // gap is still open. *seq is where its bytes start.
  [[nodiscard]] packet* pop_ready(std::uint32_t rcv_nxt, std::uint32_t* seq) noexcept;
  // Up to `max` SACK blocks, the most recently changed block first.
  std::size_t sack_blocks(sack_block* out, std::size_t max) const noexcept;
  // Gives back every buffer.
  void clear() noexcept;

  // Nothing is held.
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  // Segments held.
  [[nodiscard]] std::size_t segments() const noexcept { return n_; }
  // Payload bytes held (sequence space).
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  // Buffer memory held (what the limit counts).
  [[nodiscard]] std::size_t memory() const noexcept { return memory_; }

 private:
  struct entry {
    packet* p;
    std::uint32_t seq;
    [[nodiscard]] std::uint32_t end() const noexcept { return seq + p->size(); }
  };
  void erase(std::size_t i) noexcept;

  std::array<entry, max_entries> e_{};
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
  std::size_t memory_ = 0;
  std::uint32_t last_seq_ = 0;  // where the most recent arrival went (first SACK block)
};

// The sender's record of what the peer reported holding above SND.UNA
// (RFC 2018 section 5; RFC 6675's scoreboard): merged, sorted ranges.
class sack_scoreboard {
 public:
  // Ranges kept at most; when full, a new range above them all is forgotten
  // (the peer repeats it).
  static constexpr std::size_t max_ranges = 16;

  // Adds the peer's blocks that lie within (una, max]; forgets what una passed.
  void update(const sack_block* blocks, std::size_t n, std::uint32_t una, std::uint32_t snd_max) noexcept;
  // Forgets every range.
  void clear() noexcept {
    n_ = 0;
    bytes_ = 0;
  }
  // No range is held.
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  // Bytes the peer holds above una.
  [[nodiscard]] std::uint32_t sacked_bytes() const noexcept { return bytes_; }
  // The highest byte the peer reported (+1); meaningful when not empty.
  [[nodiscard]] std::uint32_t high() const noexcept { return n_ == 0 ? 0 : r_[n_ - 1].right; }
  // True if seq lies in a SACKed range.
  [[nodiscard]] bool contains(std::uint32_t seq) const noexcept;
  // The first byte at or after `from` that the peer does not hold, below
  // high(), and how many bytes of the hole start there; false if none.
  bool next_hole(std::uint32_t from, std::uint32_t* seq, std::uint32_t* len) const noexcept;
  // Hole bytes (not SACKed) in [from, to).
  [[nodiscard]] std::uint32_t hole_bytes(std::uint32_t from, std::uint32_t to) const noexcept;
  // Ranges held.
  [[nodiscard]] std::size_t ranges() const noexcept { return n_; }

 private:
  void add(std::uint32_t left, std::uint32_t right) noexcept;
  void trim(std::uint32_t una) noexcept;
  void recount() noexcept;

  std::array<sack_block, max_ranges> r_{};
  std::size_t n_ = 0;
  std::uint32_t bytes_ = 0;
};

}  // namespace sluice::inet
