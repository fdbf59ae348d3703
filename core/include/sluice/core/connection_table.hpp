#pragma once
// The slots a loop's connections live in, addressed by generation-checked
// handles. Slots come in chunks of 256 that never move, so a connection's
// address is stable for its whole life; a freed slot's generation is bumped so
// that old handles to it resolve to nothing.
//
// Owner core only.

#include <cstddef>
#include <memory>
#include <vector>

#include "sluice/core/connection.hpp"

namespace sluice {

// The connections of one loop: slots in chunks of chunk_size, allocated as the
// live count grows (never beyond max_connections) and kept for reuse. Hands out
// slots, resolves handles, and moves each slot's generation on when it is
// freed. Owned by its loop; owner core only.
class connection_table {
 public:
  // Slots per chunk: the table grows by this many connections at a time.
  static constexpr std::size_t chunk_size = 256;

  // A table that will hold at most `max_connections` live connections, for the
  // loop `loop_id` (stamped into every handle). Allocates nothing until the
  // first allocate().
  explicit connection_table(std::size_t max_connections, std::uint16_t loop_id) noexcept
      : max_(max_connections), loop_id_(loop_id) {}
  connection_table(const connection_table&) = delete;
  connection_table& operator=(const connection_table&) = delete;
  ~connection_table();

  // A free slot in state `free`, or nullptr when max_connections are live or
  // no memory could be had for a new chunk.
  [[nodiscard]] connection* allocate() noexcept;
  // Returns a slot; its generation moves on. Its buffers must be empty.
  void free(connection& c) noexcept;
  // The live connection a handle names, or nullptr if it is gone.
  [[nodiscard]] connection* get(connection_handle h) const noexcept;

  // Connections allocated and not yet freed.
  [[nodiscard]] std::size_t live() const noexcept { return live_; }
  // Slots allocated so far (live or free), a multiple of chunk_size.
  [[nodiscard]] std::size_t capacity() const noexcept { return chunks_.size() * chunk_size; }

  // Calls f(connection&) for every slot not free (control plane: shutdown).
  template <class F>
  void for_each_live(F&& f) {
    for (auto& chunk : chunks_)
      for (std::size_t i = 0; i < chunk_size; ++i)
        if (chunk[i].state_ != connection::state::free) f(chunk[i]);
  }

 private:
  bool grow() noexcept;

  std::vector<std::unique_ptr<connection[]>> chunks_;
  connection::close_list free_;  // free slots, linked through close_hook_
  std::size_t live_ = 0;
  std::size_t max_;
  std::uint16_t loop_id_;
};

}  // namespace sluice
