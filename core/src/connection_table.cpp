#include "sluice/core/connection_table.hpp"

#include <cassert>
#include <new>

namespace sluice {

connection_table::~connection_table() {
  assert(live_ == 0 && "connections still live when their table was destroyed");
  free_.clear();
}

bool connection_table::grow() noexcept {
  if (capacity() >= max_) return false;
  std::unique_ptr<connection[]> chunk(new (std::nothrow) connection[chunk_size]);
  if (!chunk) return false;
  try {
    chunks_.push_back(std::move(chunk));
  } catch (...) {
    return false;
  }
  auto base = static_cast<std::uint32_t>((chunks_.size() - 1) * chunk_size);
  connection* slots = chunks_.back().get();
  for (std::size_t i = 0; i < chunk_size; ++i) {
    slots[i].index_ = base + static_cast<std::uint32_t>(i);
    slots[i].loop_id_ = loop_id_;
    free_.push_back(slots[i]);
  }
  return true;
}

connection* connection_table::allocate() noexcept {
  if (live_ >= max_) return nullptr;
  if (free_.empty() && !grow()) return nullptr;
  connection& c = free_.front();
  free_.pop_front();
  ++live_;
  return &c;
}

void connection_table::free(connection& c) noexcept {
  assert(c.state_ != connection::state::free);
  assert(c.input_.segments().empty() && c.output_.segments().empty());
  c.state_ = connection::state::free;
  ++c.generation_;
  --live_;
  // LIFO: the slot just freed is warm in cache for the next accept.
  free_.push_front(c);
}

connection* connection_table::get(connection_handle h) const noexcept {
  std::size_t chunk = h.index / chunk_size;
  if (h.loop != loop_id_ || chunk >= chunks_.size()) return nullptr;
  connection& c = chunks_[chunk][h.index % chunk_size];
  if (c.generation_ != h.generation || c.state_ == connection::state::free) return nullptr;
  return &c;
}

}  // namespace sluice
