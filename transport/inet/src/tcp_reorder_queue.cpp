#include "sluice/inet/tcp_reorder_queue.hpp"

#include <algorithm>

#include "sluice/inet/tcp_seq.hpp"

namespace sluice::inet {

// ---- out-of-order queue ------------------------------------------------------------------

void tcp_reorder_queue::erase(std::size_t i) noexcept {
  bytes_ -= e_[i].p->size();
  memory_ -= e_[i].p->seg.capacity;
  for (std::size_t k = i + 1; k < n_; ++k) e_[k - 1] = e_[k];
  --n_;
}

tcp_reorder_queue::insert_result tcp_reorder_queue::insert(packet* p, std::uint32_t seq,
                                                           std::size_t memory_limit) noexcept {
  std::uint32_t end = seq + p->size();
  // 1. Cut what an earlier (or equal) entry already holds off our front.
  for (std::size_t i = 0; i < n_; ++i) {
    const entry& e = e_[i];
    if (seq_gt(e.seq, seq)) break;
    if (seq_lt(seq, e.end())) {
      if (seq_ge(e.end(), end)) {
        segment_unref(&p->seg);
        return insert_result::duplicate;
      }
      p->seg.begin += e.end() - seq;
      seq = e.end();
    }
  }
  // 2. Entries wholly inside the new segment are superseded by it.
  for (std::size_t i = 0; i < n_;) {
    const entry& e = e_[i];
    if (seq_ge(e.seq, seq) && seq_le(e.end(), end)) {
      segment_unref(&e.p->seg);
      erase(i);
    } else {
      ++i;
    }
  }
  // 3. Cut our tail where the next entry starts.
  for (std::size_t i = 0; i < n_; ++i) {
    const entry& e = e_[i];
    if (seq_gt(e.seq, seq) && seq_lt(e.seq, end)) {
      p->seg.end -= end - e.seq;
      end = e.seq;
      break;
    }
  }
  if (n_ == max_entries || memory_ + p->seg.capacity > memory_limit) {
    segment_unref(&p->seg);
    return insert_result::no_room;
  }
  std::size_t at = 0;
  while (at < n_ && seq_lt(e_[at].seq, seq)) ++at;
  for (std::size_t k = n_; k > at; --k) e_[k] = e_[k - 1];
  e_[at] = entry{p, seq};
  ++n_;
  bytes_ += p->size();
  memory_ += p->seg.capacity;
  last_seq_ = seq;
  return insert_result::stored;
}

packet* tcp_reorder_queue::pop_ready(std::uint32_t rcv_nxt, std::uint32_t* seq) noexcept {
  // Entries the in-order stream has overtaken entirely are old news.
  while (n_ != 0 && seq_le(e_[0].end(), rcv_nxt)) {
    segment_unref(&e_[0].p->seg);
    erase(0);
  }
  if (n_ == 0 || seq_gt(e_[0].seq, rcv_nxt)) return nullptr;
  entry e = e_[0];
  erase(0);
  if (seq_lt(e.seq, rcv_nxt)) {
    e.p->seg.begin += rcv_nxt - e.seq;
    e.seq = rcv_nxt;
  }
  *seq = e.seq;
  return e.p;
}

std::size_t tcp_reorder_queue::sack_blocks(sack_block* out, std::size_t max) const noexcept {
  if (n_ == 0 || max == 0) return 0;
  // Contiguous entries make one block.
  std::array<sack_block, max_entries> blocks{};
  std::size_t nb = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    if (nb != 0 && blocks[nb - 1].right == e_[i].seq) {
      blocks[nb - 1].right = e_[i].end();
    } else {
      blocks[nb++] = sack_block{e_[i].seq, e_[i].end()};
    }
  }
  // RFC 2018 4: the block with the latest arrival first; then the highest
  // others (the sender learns most from the blocks nearest its SND.NXT).
  std::size_t first = nb - 1;
  for (std::size_t i = 0; i < nb; ++i) {
    if (seq_le(blocks[i].left, last_seq_) && seq_lt(last_seq_, blocks[i].right)) first = i;
  }
  std::size_t k = 0;
  out[k++] = blocks[first];
  for (std::size_t i = nb; i-- > 0 && k < max;) {
    if (i != first) out[k++] = blocks[i];
  }
  return k;
}

void tcp_reorder_queue::clear() noexcept {
  for (std::size_t i = 0; i < n_; ++i) segment_unref(&e_[i].p->seg);
  n_ = 0;
  bytes_ = 0;
  memory_ = 0;
}

// ---- SACK scoreboard ------------------------------------------------------------------------

void sack_scoreboard::update(const sack_block* blocks, std::size_t n, std::uint32_t una,
                             std::uint32_t snd_max) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t l = blocks[i].left, r = blocks[i].right;
    // RFC 2018 leaves validation to the sender: a block must be non-empty
    // and lie within what was sent; a D-SACK (RFC 2883) below una says
    // nothing about holes and is skipped.
    if (!seq_lt(l, r) || !seq_gt(r, una) || seq_gt(r, snd_max)) continue;
    if (seq_lt(l, una)) l = una;
    add(l, r);
  }
  trim(una);
  recount();
}

void sack_scoreboard::add(std::uint32_t left, std::uint32_t right) noexcept {
  // Merge with every range it touches; insert in order.
  std::size_t i = 0;
  while (i < n_ && seq_lt(r_[i].right, left)) ++i;
  std::size_t j = i;
  while (j < n_ && seq_le(r_[j].left, right)) {
    left = seq_min(left, r_[j].left);
    right = seq_max(right, r_[j].right);
    ++j;
  }
  const std::size_t merged = j - i;
  if (merged == 0) {
    if (n_ == max_ranges) {
      // Full: keep the lower ranges (the holes that matter next); a range
      // above them all is forgotten (the peer repeats it).
      if (i == n_) return;
      --n_;
    }
    for (std::size_t k = n_; k > i; --k) r_[k] = r_[k - 1];
    r_[i] = sack_block{left, right};
    ++n_;
    return;
  }
  r_[i] = sack_block{left, right};
  for (std::size_t k = j; k < n_; ++k) r_[k - merged + 1] = r_[k];
  n_ -= merged - 1;
}

void sack_scoreboard::trim(std::uint32_t una) noexcept {
  std::size_t drop = 0;
  while (drop < n_ && seq_le(r_[drop].right, una)) ++drop;
  for (std::size_t k = drop; k < n_; ++k) r_[k - drop] = r_[k];
  n_ -= drop;
  if (n_ != 0 && seq_lt(r_[0].left, una)) r_[0].left = una;
}

void sack_scoreboard::recount() noexcept {
  bytes_ = 0;
  for (std::size_t i = 0; i < n_; ++i) bytes_ += r_[i].right - r_[i].left;
}

bool sack_scoreboard::contains(std::uint32_t seq) const noexcept {
  for (std::size_t i = 0; i < n_; ++i)
    if (seq_in(seq, r_[i].left, r_[i].right)) return true;
  return false;
}

bool sack_scoreboard::next_hole(std::uint32_t from, std::uint32_t* seq, std::uint32_t* len) const noexcept {
  if (n_ == 0) return false;
  std::uint32_t at = from;
  for (std::size_t i = 0; i < n_; ++i) {
    if (seq_lt(at, r_[i].left)) {
      *seq = at;
      *len = r_[i].left - at;
      return true;
    }
    if (seq_lt(at, r_[i].right)) at = r_[i].right;
  }
  return false;  // at or above the highest SACKed byte: no hole known
}

std::uint32_t sack_scoreboard::hole_bytes(std::uint32_t from, std::uint32_t to) const noexcept {
  if (!seq_lt(from, to)) return 0;
  std::uint32_t total = to - from;
  for (std::size_t i = 0; i < n_; ++i) {
    const std::uint32_t l = seq_max(r_[i].left, from), r = seq_min(r_[i].right, to);
    if (seq_lt(l, r)) total -= r - l;
  }
  return total;
}

}  // namespace sluice::inet
