// length_field_decoder and length_field_prepender: option checks, every
// field size in both byte orders (prepender output decoded back), offsets,
// positive and negative adjustments, stripping, every split point, and the
// limits (refused from the header alone, no overflow with 8-byte fields).

#include <gtest/gtest.h>

#include "chains.hpp"
#include "decode_all.hpp"
#include "sluice/core/codec/length_field_decoder.hpp"
#include "sluice/core/codec/length_field_prepender.hpp"

namespace sluice::codec {
namespace {

using test::chain_of;
using test::contents;
using test::small_pool;
using test::splits;

TEST(length_field, decoder_refuses_bad_options) {
  EXPECT_FALSE(length_field_decoder::make({.field_size = 3}).ok());
  EXPECT_FALSE(length_field_decoder::make({.field_size = 0}).ok());
  EXPECT_FALSE(length_field_decoder::make({.field_offset = 4, .field_size = 4, .max_frame_length = 7}).ok());
  EXPECT_TRUE(length_field_decoder::make({.field_offset = 4, .field_size = 4, .max_frame_length = 8}).ok());
  EXPECT_FALSE(length_field_decoder::make({.strip = 100, .max_frame_length = 99}).ok());
}

TEST(length_field, prepender_refuses_bad_options) {
  EXPECT_FALSE(length_field_prepender::make({.field_size = 5}).ok());
  EXPECT_FALSE(length_field_prepender::make({.field_size = 1, .length_adjustment = 256}).ok());
  EXPECT_TRUE(length_field_prepender::make({.field_size = 1, .length_adjustment = 255}).ok());
}

TEST(length_field, known_bytes_in_both_orders) {
  segment_pool pool(small_pool());
  auto be = length_field_prepender::make({.field_size = 2, .order = byte_order::big});
  auto le = length_field_prepender::make({.field_size = 4, .order = byte_order::little});
  buffer_chain out(&pool);
  ASSERT_TRUE(be->encode("abc", out));
  ASSERT_TRUE(le->encode("de", out));
  EXPECT_EQ(contents(out), std::string("\x00\x03" "abc" "\x02\x00\x00\x00" "de", 11));
}

// Every field size and byte order: prepender output decodes back to the
// payloads, at every split point, as chains and as views.
TEST(length_field, round_trip_every_size_and_order_at_every_split_point) {
  segment_pool pool(small_pool());
  const std::vector<std::string> payloads = {"hello", "", "x", "world!"};
  for (unsigned size : {1u, 2u, 4u, 8u}) {
    for (byte_order order : {byte_order::big, byte_order::little}) {
      auto p = length_field_prepender::make({.field_size = size, .order = order});
      ASSERT_TRUE(p.ok());
      buffer_chain wire(&pool);
      for (const auto& s : payloads) ASSERT_TRUE(p->encode(s, wire));
      const std::string bytes = contents(wire);
      for (const auto& pieces : splits(bytes)) {
        for (bool views : {false, true}) {
          auto d = length_field_decoder::make({.field_size = size, .order = order, .strip = size});
          ASSERT_TRUE(d.ok());
          buffer_chain in = chain_of(pool, pieces);
          auto got = views ? test::decode_views(*d, in) : test::decode_chains(*d, in);
          EXPECT_EQ(got.frames, payloads) << "size " << size;
          EXPECT_EQ(got.last, frame_status::need_more);
          EXPECT_TRUE(in.empty());
          pool.reset_scratch();
        }
      }
    }
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(length_field, offset_adjustment_and_strip) {
  segment_pool pool(small_pool());
  // [magic 2][len 2, counting the whole frame][flags 1][payload]
  const std::string frame = std::string("MG") + std::string("\x00\x08", 2) + "F" + "abc";
  const std::string stream = frame + frame;
  for (const auto& pieces : splits(stream)) {
    // Keep everything: length counts the whole frame, so adjust by -(2+2).
    auto whole = length_field_decoder::make({.field_offset = 2, .field_size = 2, .length_adjustment = -4});
    buffer_chain in = chain_of(pool, pieces);
    auto got = test::decode_chains(*whole, in);
    EXPECT_EQ(got.frames, (std::vector<std::string>{frame, frame}));
    // Strip the header (magic, length, flags) and keep the payload.
    auto payload = length_field_decoder::make({.field_offset = 2, .field_size = 2, .length_adjustment = -4, .strip = 5});
    buffer_chain in2 = chain_of(pool, pieces);
    got = test::decode_views(*payload, in2);
    EXPECT_EQ(got.frames, (std::vector<std::string>{"abc", "abc"}));
    pool.reset_scratch();
  }
}

TEST(length_field, positive_adjustment_counts_header_after_the_field) {
  segment_pool pool(small_pool());
  // [len 1 = payload only][2 more header bytes][payload]
  auto d = length_field_decoder::make({.field_size = 1, .length_adjustment = 2, .strip = 3});
  buffer_chain in = chain_of(pool, {std::string("\x03hhxyz\x01hhq", 10)});
  auto got = test::decode_views(*d, in);
  EXPECT_EQ(got.frames, (std::vector<std::string>{"xyz", "q"}));
}

TEST(length_field, prepender_adjustment_matches_the_decoder) {
  segment_pool pool(small_pool());
  auto p = length_field_prepender::make({.field_size = 4, .length_adjustment = 4});  // the field counts itself
  auto d = length_field_decoder::make({.field_size = 4, .length_adjustment = -4, .strip = 4});
  buffer_chain wire(&pool);
  ASSERT_TRUE(p->encode("payload", wire));
  EXPECT_EQ(contents(wire).substr(0, 4), std::string("\0\0\0\x0b", 4));
  auto got = test::decode_views(*d, wire);
  EXPECT_EQ(got.frames, (std::vector<std::string>{"payload"}));
}

TEST(length_field, exactly_max_passes_one_more_is_too_long_from_the_header_alone) {
  segment_pool pool(small_pool());
  auto d = length_field_decoder::make({.field_size = 2, .strip = 2, .max_frame_length = 10});
  buffer_chain in = chain_of(pool, {std::string("\x00\x08", 2) + "12345678"});
  std::string_view frame;
  ASSERT_EQ(d->decode(in, frame), frame_status::frame);
  EXPECT_EQ(frame, "12345678");
  buffer_chain over = chain_of(pool, {std::string("\x00\x09", 2)});
  EXPECT_EQ(d->decode(over, frame), frame_status::too_long) << "refused before any payload byte arrived";
}

TEST(length_field, eight_byte_field_near_its_maximum_does_not_overflow) {
  segment_pool pool(small_pool());
  auto d = length_field_decoder::make({.field_size = 8, .length_adjustment = 100, .max_frame_length = SIZE_MAX});
  buffer_chain in = chain_of(pool, {std::string(8, '\xff')});
  std::string_view frame;
  EXPECT_EQ(d->decode(in, frame), frame_status::too_long);
  auto neg = length_field_decoder::make({.field_size = 8, .length_adjustment = INT64_MIN});
  buffer_chain in2 = chain_of(pool, {std::string(8, '\xff')});
  EXPECT_EQ(neg->decode(in2, frame), frame_status::too_long) << "2^64-1 - 2^63 is still past the default maximum";
}

TEST(length_field, bad_lengths) {
  segment_pool pool(small_pool());
  std::string_view frame;
  // The field counts the header (adjust -4) but says 2: negative.
  auto counts_header = length_field_decoder::make({.field_size = 4, .length_adjustment = -4});
  buffer_chain in = chain_of(pool, {std::string("\0\0\0\x02", 4)});
  EXPECT_EQ(counts_header->decode(in, frame), frame_status::bad_length);
  // Stripping 6 bytes from a 5-byte frame.
  auto strips = length_field_decoder::make({.field_size = 4, .strip = 6});
  buffer_chain in2 = chain_of(pool, {std::string("\0\0\0\x01z", 5)});
  EXPECT_EQ(strips->decode(in2, frame), frame_status::bad_length);
}

TEST(length_field, waits_for_header_then_body) {
  segment_pool pool(small_pool());
  auto d = length_field_decoder::make({.field_offset = 1, .field_size = 2, .strip = 3});
  buffer_chain in(&pool);
  std::string_view frame;
  for (char ch : std::string("T\x00\x03" "ab", 5)) {
    test::append_piece(pool, in, std::string(1, ch));
    EXPECT_EQ(d->decode(in, frame), frame_status::need_more);
  }
  test::append_piece(pool, in, "c");
  ASSERT_EQ(d->decode(in, frame), frame_status::frame);
  EXPECT_EQ(frame, "abc");
}

TEST(length_field, prepender_refuses_what_does_not_fit) {
  segment_pool pool(small_pool(4096));
  auto one = length_field_prepender::make({.field_size = 1});
  EXPECT_EQ(one->max_payload(), 255u);
  buffer_chain out(&pool);
  EXPECT_TRUE(one->encode(std::string(255, 'x'), out));
  const std::size_t before = out.size();
  EXPECT_FALSE(one->encode(std::string(256, 'x'), out));
  EXPECT_EQ(out.size(), before) << "nothing written on failure";
  auto neg = length_field_prepender::make({.field_size = 2, .length_adjustment = -3});
  EXPECT_FALSE(neg->encode("ab", out)) << "2 - 3 is negative";
  EXPECT_TRUE(neg->encode("abc", out));
  EXPECT_EQ(out.size(), before + 2 + 3);
}

TEST(length_field, prepender_moves_a_payload_chain_without_copying) {
  segment_pool pool(small_pool());
  auto p = length_field_prepender::make({.field_size = 2});
  buffer_chain payload = chain_of(pool, {"abc", "def"});
  const std::byte* first = payload.segments().front().data();
  buffer_chain out(&pool);
  ASSERT_TRUE(p->encode(std::move(payload), out));
  EXPECT_TRUE(payload.empty());
  EXPECT_EQ(contents(out), std::string("\0\x06" "abcdef", 8));
  auto it = out.segments().begin();
  ++it;  // past the header's segment
  EXPECT_EQ(it->data(), first) << "the payload's segment moved, not its bytes";
}

}  // namespace
}  // namespace sluice::codec
