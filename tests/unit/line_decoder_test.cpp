// line_decoder: LF and CRLF endings, stripped or kept, every split point of
// a stream across segments, the length limit (refused as soon as it is
// certain), resumed scans, and zero-copy frames.

#include "sluice/core/codec/line_decoder.hpp"

#include <gtest/gtest.h>

#include "chains.hpp"
#include "decode_all.hpp"

namespace sluice::codec {
namespace {

using test::chain_of;
using test::small_pool;
using test::splits;

const std::string stream = "ab\r\ncd\n\nef\r\n\r\ngh";

TEST(line_decoder, every_split_point_both_ways_stripped) {
  segment_pool pool(small_pool());
  const std::vector<std::string> want = {"ab", "cd", "", "ef", ""};
  for (const auto& pieces : splits(stream)) {
    for (bool views : {false, true}) {
      buffer_chain in = chain_of(pool, pieces);
      line_decoder d;
      auto got = views ? test::decode_views(d, in) : test::decode_chains(d, in);
      EXPECT_EQ(got.frames, want);
      EXPECT_EQ(got.last, frame_status::need_more);
      EXPECT_EQ(test::contents(in), "gh") << "the unfinished line stays buffered";
      pool.reset_scratch();
    }
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(line_decoder, keeps_endings_when_asked) {
  segment_pool pool(small_pool());
  for (const auto& pieces : splits(stream)) {
    buffer_chain in = chain_of(pool, pieces);
    line_decoder d({.max_length = 100, .strip_ending = false});
    auto got = test::decode_chains(d, in);
    EXPECT_EQ(got.frames, (std::vector<std::string>{"ab\r\n", "cd\n", "\n", "ef\r\n", "\r\n"}));
  }
}

TEST(line_decoder, a_lone_cr_is_content) {
  segment_pool pool(small_pool());
  buffer_chain in = chain_of(pool, {"a\rb\n"});
  line_decoder d;
  auto got = test::decode_views(d, in);
  EXPECT_EQ(got.frames, (std::vector<std::string>{"a\rb"}));
}

TEST(line_decoder, exactly_max_length_passes_with_either_ending) {
  segment_pool pool(small_pool());
  for (std::string ending : {"\n", "\r\n"}) {
    const std::string text = "12345" + ending;
    for (const auto& pieces : splits(text)) {
      buffer_chain in = chain_of(pool, pieces);
      line_decoder d({.max_length = 5});
      auto got = test::decode_views(d, in);
      EXPECT_EQ(got.frames, (std::vector<std::string>{"12345"}));
      EXPECT_EQ(got.last, frame_status::need_more);
      pool.reset_scratch();
    }
  }
}

TEST(line_decoder, one_byte_over_is_too_long_at_every_split_point) {
  segment_pool pool(small_pool());
  for (std::string ending : {"\n", "\r\n"}) {
    for (const auto& pieces : splits("123456" + ending)) {
      buffer_chain in = chain_of(pool, pieces);
      line_decoder d({.max_length = 5});
      std::string_view line;
      EXPECT_EQ(d.decode(in, line), frame_status::too_long);
    }
  }
}

TEST(line_decoder, too_long_is_known_before_the_line_ends) {
  segment_pool pool(small_pool());
  line_decoder d({.max_length = 5});
  buffer_chain in(&pool);
  std::string_view line;
  // Five bytes, then a CR: the line may still end in time.
  test::append_piece(pool, in, "12345");
  EXPECT_EQ(d.decode(in, line), frame_status::need_more);
  test::append_piece(pool, in, "\r");
  EXPECT_EQ(d.decode(in, line), frame_status::need_more) << "a CRLF may still end it at max_length";
  test::append_piece(pool, in, "x");
  EXPECT_EQ(d.decode(in, line), frame_status::too_long) << "no LF right after the CR: content passed the limit";

  // Six bytes without a CR in sixth place are too long at once.
  line_decoder d2({.max_length = 5});
  buffer_chain in2 = chain_of(pool, {"123456"});
  EXPECT_EQ(d2.decode(in2, line), frame_status::too_long);
}

TEST(line_decoder, byte_by_byte_arrival_and_resumed_scan) {
  segment_pool pool(small_pool());
  line_decoder d({.max_length = 32});
  buffer_chain in(&pool);
  std::vector<std::string> got;
  for (char ch : std::string("hello\r\nworld\n")) {
    test::append_piece(pool, in, std::string(1, ch));
    buffer_chain frame;
    while (d.decode(in, frame) == frame_status::frame) got.push_back(test::contents(frame));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"hello", "world"}));
}

TEST(line_decoder, reset_after_others_consumed) {
  segment_pool pool(small_pool());
  line_decoder d;
  buffer_chain in = chain_of(pool, {"abc"});
  std::string_view line;
  EXPECT_EQ(d.decode(in, line), frame_status::need_more);
  ASSERT_TRUE(in.skip(3));
  d.reset();
  test::append_piece(pool, in, "x\n");
  ASSERT_EQ(d.decode(in, line), frame_status::frame);
  EXPECT_EQ(line, "x");
}

TEST(line_decoder, chain_frames_share_the_input_segments) {
  segment_pool pool(small_pool());
  buffer_chain in = chain_of(pool, {"one\ntwo\n"});
  const std::byte* input_bytes = in.segments().front().data();
  line_decoder d;
  buffer_chain first;
  buffer_chain second;
  ASSERT_EQ(d.decode(in, first), frame_status::frame);
  ASSERT_EQ(d.decode(in, second), frame_status::frame);
  EXPECT_EQ(first.segments().front().data(), input_bytes) << "the frame points into the input segment";
  EXPECT_EQ(second.segments().front().data(), input_bytes + 4);
  EXPECT_EQ(pool.segments_in_use(), 1u) << "no data segment was allocated for the frames";
  in.clear();
  EXPECT_EQ(test::contents(first), "one");
  EXPECT_EQ(test::contents(second), "two") << "frames keep the shared bytes alive";
}

TEST(line_decoder, huge_limit_does_not_overflow) {
  segment_pool pool(small_pool());
  line_decoder d({.max_length = SIZE_MAX});
  buffer_chain in = chain_of(pool, {"abc", "def\n"});
  std::string_view line;
  ASSERT_EQ(d.decode(in, line), frame_status::frame);
  EXPECT_EQ(line, "abcdef");
}

}  // namespace
}  // namespace sluice::codec
