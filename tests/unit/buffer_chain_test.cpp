// Unit tests of buffer_chain and segment_pool: every reader and writer
// operation, inside one segment, across segment boundaries (every split
// point), and at pool exhaustion.

#include "sluice/core/buffer_chain.hpp"

#include "chains.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include <string>
#include <vector>

namespace sluice {
namespace {

using test::chain_of;
using test::contents;
using test::small_pool;
using test::splits;

TEST(buffer_chain, write_then_read_in_one_segment) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  ASSERT_TRUE(c.write("hello world"));
  EXPECT_EQ(c.size(), 11u);
  EXPECT_EQ(*c.peek(5), "hello");
  EXPECT_EQ(c.size(), 11u) << "peek must not consume";
  EXPECT_EQ(*c.next(6), "hello ");
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.consumed(), 6u);
  EXPECT_FALSE(c.next(6).has_value()) << "fewer bytes than asked";
  EXPECT_EQ(*c.next(5), "world");
  EXPECT_TRUE(c.empty());
  c.release();
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(buffer_chain, overwrite_patches_bytes_in_place_across_every_split_point) {
  const std::string text = "0123456789abcdef";
  for (const auto& pieces : splits(text)) {
    segment_pool pool(small_pool());
    buffer_chain c = chain_of(pool, pieces);
    ASSERT_TRUE(c.skip(1));  // offsets count from the first unconsumed byte
    ASSERT_TRUE(c.overwrite(5, "XYZ"));
    EXPECT_EQ(contents(c), "12345XYZ9abcdef");
    EXPECT_TRUE(c.overwrite(12, "!!!"));
    EXPECT_FALSE(c.overwrite(13, "???")) << "past the end: nothing written";
    EXPECT_EQ(contents(c), "12345XYZ9abc!!!");
    EXPECT_EQ(c.segment_count(), pieces.size()) << "no segment added or copied";
  }
}

TEST(buffer_chain, pop_front_segment_hands_over_the_first_segment) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"abc", "defg"});
  ASSERT_TRUE(c.skip(1));
  segment* s = c.pop_front_segment();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->view(), "bc") << "consumed bytes were released first";
  EXPECT_EQ(contents(c), "defg");
  EXPECT_EQ(c.size(), 4u);
  segment_unref(s);
  segment* last = c.pop_front_segment();
  ASSERT_NE(last, nullptr);
  segment_unref(last);
  EXPECT_EQ(c.pop_front_segment(), nullptr);
  EXPECT_TRUE(c.empty());
}

TEST(buffer_chain, peek_zero_and_empty) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  EXPECT_EQ(c.peek(0).value(), "");
  EXPECT_FALSE(c.peek(1).has_value());
  EXPECT_FALSE(c.skip(1));
  EXPECT_TRUE(c.skip(0));
}

TEST(buffer_chain, views_across_every_split_point) {
  segment_pool pool(small_pool());
  const std::string text = "abcdefghij";
  for (const auto& pieces : splits(text)) {
    buffer_chain c = chain_of(pool, pieces);
    ASSERT_EQ(c.size(), text.size());
    for (std::size_t n = 0; n <= text.size(); ++n) EXPECT_EQ(*c.peek(n), text.substr(0, n));
    // next() in steps of 3 returns the same bytes in order.
    std::string got;
    while (c.size() >= 3) got += std::string(*c.next(3));
    got += std::string(*c.next(c.size()));
    EXPECT_EQ(got, text);
    pool.reset_scratch();
  }
  EXPECT_EQ(pool.segments_in_use(), 0u);
}

TEST(buffer_chain, views_spanning_segments_stay_valid_together) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"ab", "cd", "ef", "gh"});
  auto v1 = c.next(3);  // "abc": spans, copied to scratch
  auto v2 = c.next(3);  // "def": spans, copied to scratch
  auto v3 = c.next(2);  // "gh": inside one segment
  ASSERT_TRUE(v1 && v2 && v3);
  EXPECT_EQ(*v1, "abc");
  EXPECT_EQ(*v2, "def");
  EXPECT_EQ(*v3, "gh");
}

TEST(buffer_chain, skip_and_release_free_whole_segments_only) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"aaaa", "bbbb", "cccc"});
  EXPECT_EQ(pool.segments_in_use(), 3u);
  EXPECT_TRUE(c.skip(6));
  c.release();
  EXPECT_EQ(pool.segments_in_use(), 2u) << "the first segment was all consumed";
  EXPECT_EQ(contents(c), "bbcccc");
  EXPECT_EQ(c.consumed(), 0u);
  EXPECT_FALSE(c.skip(7));
  EXPECT_EQ(c.size(), 6u) << "a failed skip consumes nothing";
}

TEST(buffer_chain, find_every_split_point_of_delimiter) {
  segment_pool pool(small_pool());
  const std::string text = "GET / HTTP/1.1\r\n\r\nBODY";
  for (const auto& pieces : splits(text)) {
    buffer_chain c = chain_of(pool, pieces);
    EXPECT_EQ(c.find("\r\n\r\n"), 14u);
    EXPECT_EQ(c.find("\r\n"), 14u);
    EXPECT_EQ(c.find("BODY"), 18u);
    EXPECT_FALSE(c.find("BODYX").has_value());
    EXPECT_FALSE(c.find("\r\n\r\n", 17).has_value()) << "must end within the limit";
    EXPECT_EQ(c.find("\r\n\r\n", 18), 14u);
    EXPECT_EQ(c.find_any("/\r"), 4u);
  }
}

TEST(buffer_chain, find_from_an_offset_at_every_split_point) {
  segment_pool pool(small_pool());
  const std::string text = "a;b;;c;";
  for (const auto& pieces : splits(text)) {
    buffer_chain c = chain_of(pool, pieces);
    EXPECT_EQ(c.find(";", SIZE_MAX, 0), 1u);
    EXPECT_EQ(c.find(";", SIZE_MAX, 2), 3u) << "resumes at `from`";
    EXPECT_EQ(c.find(";;", SIZE_MAX, 4), std::nullopt) << "a match starting before `from` is not found";
    EXPECT_EQ(c.find(";", SIZE_MAX, 7), std::nullopt);
    EXPECT_EQ(c.find(";", 6, 5), std::nullopt) << "must end within the limit";
    EXPECT_EQ(c.find(";", 7, 5), 6u);
    EXPECT_EQ(c.find_any(";c", SIZE_MAX, 5), 5u);
    EXPECT_EQ(c.find_any(";", SIZE_MAX, 4), 4u);
    EXPECT_EQ(c.find_any(";", 4, 2), 3u);
    EXPECT_EQ(c.find_any(";", 3, 2), std::nullopt) << "limit counts from the front, not from `from`";
    std::string tail;
    c.for_each_piece(
        [&](std::string_view p) {
          tail += p;
          return true;
        },
        3);
    EXPECT_EQ(tail, text.substr(3));
  }
}

TEST(buffer_chain, find_after_partial_consumption) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"x;y", ";z;"});
  EXPECT_EQ(c.find(";"), 1u);
  ASSERT_TRUE(c.skip(2));
  EXPECT_EQ(c.find(";"), 1u) << "offsets are relative to the unconsumed bytes";
  EXPECT_EQ(c.at(0), 'y');
  EXPECT_EQ(c.at(2), 'z');
  EXPECT_EQ(c.at(3), ';');
}

TEST(buffer_chain, until_returns_through_delimiter) {
  segment_pool pool(small_pool());
  for (const auto& pieces : splits("ab||cd||")) {
    buffer_chain c = chain_of(pool, pieces);
    EXPECT_EQ(c.until("||").value(), "ab||");
    EXPECT_EQ(c.until("||").value(), "cd||");
    EXPECT_FALSE(c.until("||").has_value());
    pool.reset_scratch();
  }
}

TEST(buffer_chain, until_respects_max) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"abcdef|"});
  EXPECT_FALSE(c.until("|", 5).has_value()) << "6 bytes before the delimiter, max 5";
  EXPECT_EQ(c.size(), 7u) << "nothing consumed";
  EXPECT_EQ(c.until("|", 6).value(), "abcdef|");
}

TEST(buffer_chain, read_line_lf_and_crlf_at_every_split) {
  segment_pool pool(small_pool());
  for (const auto& pieces : splits("one\r\ntwo\nthree")) {
    buffer_chain c = chain_of(pool, pieces);
    EXPECT_EQ(c.read_line().value(), "one");
    EXPECT_EQ(c.read_line().value(), "two");
    EXPECT_FALSE(c.read_line().has_value()) << "no line end yet";
    EXPECT_EQ(c.size(), 5u);
    pool.reset_scratch();
  }
}

TEST(buffer_chain, read_line_max_length) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"12345\r\n"});
  EXPECT_FALSE(c.read_line(4).has_value());
  EXPECT_EQ(c.read_line(5).value(), "12345");
  buffer_chain d = chain_of(pool, {"", "\n"});
  EXPECT_EQ(d.read_line(0).value(), "");
}

TEST(buffer_chain, copy_out_from_offset) {
  segment_pool pool(small_pool());
  buffer_chain c = chain_of(pool, {"abc", "def", "ghi"});
  char buf[16] = {};
  EXPECT_EQ(c.copy_out(buf, 5, 2), 5u);
  EXPECT_EQ(std::string(buf, 5), "cdefg");
  EXPECT_EQ(c.copy_out(buf, 100, 7), 2u);
  EXPECT_EQ(std::string(buf, 2), "hi");
  EXPECT_EQ(c.copy_out(buf, 1, 9), 0u);
}

TEST(buffer_chain, reserve_commit_writes_in_place) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  auto room = c.reserve(10);
  ASSERT_GE(room.size(), 10u);
  std::memcpy(room.data(), "0123456789", 10);
  c.commit(10);
  auto room2 = c.reserve(50);  // 54 left in the 64-byte segment
  ASSERT_GE(room2.size(), 50u);
  EXPECT_EQ(room2.data(), room.data() + 10) << "same segment";
  auto room3 = c.reserve(60);  // does not fit: a new segment
  ASSERT_GE(room3.size(), 60u);
  EXPECT_NE(room3.data(), room.data() + 10);
  EXPECT_TRUE(c.reserve(65).empty()) << "more than a segment cannot be contiguous";
  EXPECT_EQ(contents(c), "0123456789");
}

TEST(buffer_chain, write_spreads_over_segments) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  std::string big(1000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(c.write(big));
  EXPECT_EQ(c.size(), 1000u);
  EXPECT_EQ(c.segment_count(), 16u);  // ceil(1000 / 64)
  EXPECT_EQ(contents(c), big);
}

TEST(buffer_chain, write_at_pool_exhaustion_writes_nothing) {
  segment_pool pool(small_pool(64, 4));  // 256 bytes in all
  buffer_chain c(&pool);
  ASSERT_TRUE(c.write(std::string(200, 'a')));
  EXPECT_FALSE(c.write(std::string(100, 'b'))) << "needs 2 more segments, 0 left after 4";
  EXPECT_EQ(c.size(), 200u) << "a failed write leaves the chain as it was";
  EXPECT_EQ(contents(c), std::string(200, 'a'));
  EXPECT_TRUE(c.write(std::string(56, 'c'))) << "what fits still fits";
  EXPECT_GE(pool.exhausted_count(), 1u);
  EXPECT_TRUE(c.reserve(1).empty()) << "reserve at exhaustion is empty";
  c.clear();
  EXPECT_EQ(pool.segments_in_use(), 0u);
  EXPECT_FALSE(pool.starved()) << "segments came back";
}

TEST(buffer_chain, append_moves_segments_without_copying) {
  segment_pool pool(small_pool());
  buffer_chain a = chain_of(pool, {"head"});
  buffer_chain b = chain_of(pool, {"xx12", "34"});
  ASSERT_TRUE(b.skip(2));  // "xx" consumed
  const std::byte* where = &*b.segments().front().data();
  a.append(std::move(b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(contents(a), "head1234");
  EXPECT_EQ(pool.segments_in_use(), 3u) << "no segment allocated or freed";
  EXPECT_EQ(&*std::next(a.segments().begin())->data(), where + 2) << "same bytes, trimmed";
}

TEST(buffer_chain, take_splits_with_shared_bytes) {
  segment_pool pool(small_pool());
  for (const auto& pieces : splits("abcdefgh")) {
    for (std::size_t n = 0; n <= 8; ++n) {
      buffer_chain c = chain_of(pool, pieces);
      buffer_chain head(&pool);
      ASSERT_TRUE(c.take(n, head));
      EXPECT_EQ(contents(head), std::string("abcdefgh").substr(0, n));
      EXPECT_EQ(contents(c), std::string("abcdefgh").substr(n));
      EXPECT_EQ(head.size(), n);
      EXPECT_EQ(c.size(), 8 - n);
    }
  }
  EXPECT_EQ(pool.segments_in_use(), 0u) << "clones gave their parents back";
}

TEST(buffer_chain, shared_segment_is_not_appended_into) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  ASSERT_TRUE(c.write("abcd"));
  buffer_chain head(&pool);
  ASSERT_TRUE(c.take(2, head));
  ASSERT_TRUE(c.write("XY"));
  EXPECT_EQ(contents(c), "cdXY");
  EXPECT_EQ(contents(head), "ab");
  head.clear();
  ASSERT_TRUE(c.write("Z"));
  EXPECT_EQ(contents(c), "cdXYZ");
}

TEST(buffer_chain, append_static_references_external_bytes) {
  segment_pool pool(small_pool());
  static const char body[] = "Hello, World!";
  buffer_chain c(&pool);
  ASSERT_TRUE(c.append_static(std::string_view(body, 13)));
  EXPECT_EQ(c.segments().front().view().data(), body);
  ASSERT_TRUE(c.write("!"));
  EXPECT_EQ(contents(c), "Hello, World!!");
  EXPECT_EQ(pool.segments_in_use(), 1u) << "the static part uses no data segment";
}

TEST(buffer_chain, deferred_release_keeps_views_readable) {
  segment_pool pool(small_pool(64, 2));
  buffer_chain c = chain_of(pool, {"first-segment"});
  pool.set_deferred(true);
  auto v = c.next(13);
  c.release();
  EXPECT_EQ(pool.segments_in_use(), 0u);
  // The freed segment is parked: a new allocation may not reuse it yet.
  buffer_chain other(&pool);
  ASSERT_TRUE(other.write(std::string(64, 'Z')));
  EXPECT_EQ(*v, "first-segment") << "bytes behind a view survive until reclaim";
  pool.set_deferred(false);
  pool.reclaim();
  other.clear();
}

TEST(buffer_chain, move_constructs_and_assigns) {
  segment_pool pool(small_pool());
  buffer_chain a = chain_of(pool, {"abc"});
  buffer_chain b(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(contents(b), "abc");
  buffer_chain c = chain_of(pool, {"zzz"});
  c = std::move(b);
  EXPECT_EQ(contents(c), "abc");
  EXPECT_EQ(pool.segments_in_use(), 1u) << "the assigned-over chain released its segment";
}

TEST(segment_pool, grows_by_slabs_up_to_its_limit) {
  segment_pool pool(small_pool(64, 16));
  std::vector<segment*> got;
  while (segment* s = pool.allocate()) got.push_back(s);
  EXPECT_EQ(got.size(), 16u);
  EXPECT_EQ(pool.bytes_reserved(), 16u * 64);
  EXPECT_TRUE(pool.starved());
  for (segment* s : got) segment_unref(s);
  EXPECT_EQ(pool.segments_in_use(), 0u);
  EXPECT_FALSE(pool.starved());
}

TEST(segment_pool, reuses_the_last_freed_segment_first) {
  segment_pool pool(small_pool());
  segment* a = pool.allocate();
  segment_unref(a);
  segment* b = pool.allocate();
  EXPECT_EQ(a, b) << "LIFO: the warmest segment";
  segment_unref(b);
}

TEST(segment_pool, steady_state_does_not_grow) {
  segment_pool pool(small_pool());
  buffer_chain c(&pool);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(c.write("0123456789"));
    ASSERT_TRUE(c.skip(10));
    c.release();
  }
  EXPECT_EQ(pool.segments_total(), 8u) << "one slab, reused";
}

}  // namespace
}  // namespace sluice
