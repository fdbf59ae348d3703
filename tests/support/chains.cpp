#include "chains.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace sluice::test {

segment_pool::options small_pool(std::uint32_t segment_size, std::size_t max_segments) {
  segment_pool::options o;
  o.segment_size = segment_size;
  o.segments_per_slab = 8;
  o.max_bytes = segment_size * max_segments;
  return o;
}

void append_piece(segment_pool& pool, buffer_chain& c, std::string_view piece) {
  segment* s = pool.allocate();
  EXPECT_NE(s, nullptr);
  if (s == nullptr) return;
  EXPECT_LE(piece.size(), s->tailroom());
  std::memcpy(s->base + s->end, piece.data(), piece.size());
  s->end += static_cast<std::uint32_t>(piece.size());
  c.append(s);
}

buffer_chain chain_of(segment_pool& pool, const std::vector<std::string>& pieces) {
  buffer_chain c(&pool);
  for (const auto& p : pieces) append_piece(pool, c, p);
  return c;
}

std::string contents(const buffer_chain& c) {
  std::string out;
  c.for_each_piece([&](std::string_view p) {
    out += p;
    return true;
  });
  return out;
}

std::vector<std::vector<std::string>> splits(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  out.push_back({text});
  for (std::size_t i = 1; i < text.size(); ++i) {
    out.push_back({text.substr(0, i), text.substr(i)});
    for (std::size_t j = i + 1; j < text.size(); ++j) {
      out.push_back({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
    }
  }
  return out;
}

}  // namespace sluice::test
