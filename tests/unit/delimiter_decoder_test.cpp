// delimiter_decoder: option checks, the earliest and the longest delimiter,
// waiting while a longer delimiter may still match, binary delimiters, every
// split point, and the length limit.

#include "sluice/core/codec/delimiter_decoder.hpp"

#include <gtest/gtest.h>

#include "chains.hpp"
#include "decode_all.hpp"

namespace sluice::codec {
namespace {

using test::chain_of;
using test::small_pool;
using test::splits;

TEST(delimiter_decoder, refuses_bad_delimiter_sets) {
  EXPECT_FALSE(delimiter_decoder::make({}).ok());
  EXPECT_FALSE(delimiter_decoder::make({""}).ok());
  EXPECT_FALSE(delimiter_decoder::make({std::string_view("12345678901234567")}).ok()) << "17 bytes";
  EXPECT_FALSE(delimiter_decoder::make({"1", "2", "3", "4", "5", "6", "7", "8", "9"}).ok());
  auto ok = delimiter_decoder::make({"1", "2", "3", "4", "5", "6", "7", std::string_view("1234567890123456")});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->delimiter_count(), 8u);
}

TEST(delimiter_decoder, earliest_delimiter_wins_at_every_split_point) {
  segment_pool pool(small_pool());
  const std::string text = std::string("a|bb;;c") + '\0' + "d;;|";
  for (const auto& pieces : splits(text)) {
    for (bool views : {false, true}) {
      auto d = delimiter_decoder::make({"|", ";;", std::string_view("\0", 1)});
      ASSERT_TRUE(d.ok());
      buffer_chain in = chain_of(pool, pieces);
      auto got = views ? test::decode_views(*d, in) : test::decode_chains(*d, in);
      EXPECT_EQ(got.frames, (std::vector<std::string>{"a", "bb", "c", "d", ""}));
      EXPECT_EQ(got.last, frame_status::need_more);
      EXPECT_TRUE(in.empty());
      pool.reset_scratch();
    }
  }
}

TEST(delimiter_decoder, longest_delimiter_wins_at_the_same_byte) {
  segment_pool pool(small_pool());
  const std::string text = "head\r\n\r\nline\r\nx";
  for (const auto& pieces : splits(text)) {
    auto d = delimiter_decoder::make({"\r\n", "\r\n\r\n"}, {.max_length = 64, .strip_delimiter = false});
    ASSERT_TRUE(d.ok());
    buffer_chain in = chain_of(pool, pieces);
    auto got = test::decode_chains(*d, in);
    EXPECT_EQ(got.frames, (std::vector<std::string>{"head\r\n\r\n", "line\r\n"}));
    EXPECT_EQ(test::contents(in), "x");
  }
}

TEST(delimiter_decoder, waits_while_a_longer_delimiter_may_match) {
  segment_pool pool(small_pool());
  auto d = delimiter_decoder::make({"\r\n", "\r\n\r\n"});
  ASSERT_TRUE(d.ok());
  buffer_chain in = chain_of(pool, {"a\r\n"});
  std::string_view frame;
  EXPECT_EQ(d->decode(in, frame), frame_status::need_more) << "\\r\\n\\r\\n may still follow";
  test::append_piece(pool, in, "\r");
  EXPECT_EQ(d->decode(in, frame), frame_status::need_more);
  test::append_piece(pool, in, "b");
  ASSERT_EQ(d->decode(in, frame), frame_status::frame) << "\\r\\n\\r\\n is ruled out: \\r\\n ends the frame";
  EXPECT_EQ(frame, "a");
  EXPECT_EQ(test::contents(in), "\rb");
}

TEST(delimiter_decoder, limit_counts_content_not_delimiter) {
  segment_pool pool(small_pool());
  for (const auto& pieces : splits("1234;;")) {
    auto d = delimiter_decoder::make({";;"}, {.max_length = 4});
    buffer_chain in = chain_of(pool, pieces);
    std::string_view frame;
    ASSERT_EQ(d->decode(in, frame), frame_status::frame);
    EXPECT_EQ(frame, "1234");
    pool.reset_scratch();
  }
  for (const auto& pieces : splits("12345;;")) {
    auto d = delimiter_decoder::make({";;"}, {.max_length = 4});
    buffer_chain in = chain_of(pool, pieces);
    std::string_view frame;
    EXPECT_EQ(d->decode(in, frame), frame_status::too_long);
  }
}

TEST(delimiter_decoder, too_long_as_soon_as_no_delimiter_can_start_in_time) {
  segment_pool pool(small_pool());
  auto d = delimiter_decoder::make({";;"}, {.max_length = 4});
  buffer_chain in = chain_of(pool, {"1234"});
  std::string_view frame;
  EXPECT_EQ(d->decode(in, frame), frame_status::need_more);
  test::append_piece(pool, in, ";");
  EXPECT_EQ(d->decode(in, frame), frame_status::need_more) << "';;' may complete at offset 4";
  test::append_piece(pool, in, "x");
  EXPECT_EQ(d->decode(in, frame), frame_status::too_long);
}

TEST(delimiter_decoder, byte_by_byte_arrival) {
  segment_pool pool(small_pool());
  auto d = delimiter_decoder::make({"<>", "!"});
  buffer_chain in(&pool);
  std::vector<std::string> got;
  for (char ch : std::string("ab<c<>de!f<>")) {
    test::append_piece(pool, in, std::string(1, ch));
    buffer_chain frame;
    while (d->decode(in, frame) == frame_status::frame) got.push_back(test::contents(frame));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"ab<c", "de", "f"}));
}

}  // namespace
}  // namespace sluice::codec
