#pragma once
// Test helpers for buffer chains: build a chain from pieces (one segment
// each, so every piece boundary is a segment boundary), read a chain back,
// and enumerate the ways of cutting a text into pieces.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core/buffer_chain.hpp"

namespace sluice::test {

// A small pool: tiny segments make boundaries easy to place.
segment_pool::options small_pool(std::uint32_t segment_size = 64, std::size_t max_segments = 1024);
// Appends `piece` to c in a fresh segment of its own (piece <= segment size).
void append_piece(segment_pool& pool, buffer_chain& c, std::string_view piece);
// A chain whose bytes are `pieces`, each in a segment of its own.
buffer_chain chain_of(segment_pool& pool, const std::vector<std::string>& pieces);
// The chain's unconsumed bytes.
std::string contents(const buffer_chain& c);
// Every way of cutting `text` into one, two or three non-empty pieces.
std::vector<std::vector<std::string>> splits(const std::string& text);

}  // namespace sluice::test
