// fixed_length_decoder: option check, every split point, both ways out.

#include "sluice/core/codec/fixed_length_decoder.hpp"

#include <gtest/gtest.h>

#include "chains.hpp"
#include "decode_all.hpp"

namespace sluice::codec {
namespace {

TEST(fixed_length_decoder, refuses_zero_length) { EXPECT_FALSE(fixed_length_decoder::make({.frame_length = 0}).ok()); }

TEST(fixed_length_decoder, every_split_point_both_ways) {
  segment_pool pool(test::small_pool());
  for (const auto& pieces : test::splits("abcdefgh")) {
    for (bool views : {false, true}) {
      auto d = fixed_length_decoder::make({.frame_length = 3});
      ASSERT_TRUE(d.ok());
      buffer_chain in = test::chain_of(pool, pieces);
      auto got = views ? test::decode_views(*d, in) : test::decode_chains(*d, in);
      EXPECT_EQ(got.frames, (std::vector<std::string>{"abc", "def"}));
      EXPECT_EQ(got.last, frame_status::need_more);
      EXPECT_EQ(test::contents(in), "gh");
      pool.reset_scratch();
    }
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

}  // namespace
}  // namespace sluice::codec
