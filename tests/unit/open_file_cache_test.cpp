// sluice-httpd's open-file cache against a real directory: what it serves
// from memory, from its descriptor and from the file system, when it looks
// again (valid), what it closes (inactive, room), and that its descriptors
// stay bounded. Time is an input, so nothing here waits.

#include <gtest/gtest.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "open_file_cache.hpp"
#include "static_files.hpp"

namespace sluice::httpd {
namespace {

using namespace std::chrono_literals;
using outcome = static_files::outcome;

struct temp_root {
  temp_root() {
    char tmpl[] = "/tmp/sluice-ofc-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_root() { std::system(("rm -rf " + path).c_str()); }
  void write(const std::string& name, const std::string& body) const {
    std::ofstream(path + "/" + name, std::ios::binary | std::ios::trunc) << body;
  }
  std::string path;
};

std::size_t open_descriptors() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

// What the file behind f says now (its bytes from memory or the descriptor).
std::string body_of(const static_files::file& f) {
  if (f.content.data() != nullptr) return std::string(f.content);
  std::string out(f.size, '\0');
  EXPECT_EQ(::pread(f.fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  return out;
}

struct cache_fixture : ::testing::Test {
  temp_root root;
  static_files files = static_files::open(root.path).value();
  time_point t0 = time_point{} + 1000s;
};

TEST_F(cache_fixture, a_hit_serves_the_same_file_without_asking_the_file_system_until_valid_ends) {
  root.write("a.txt", "first\n");
  open_file_cache_options o;
  o.valid = 1s;
  open_file_cache cache(files, o);
  static_files::file f;
  ASSERT_EQ(cache.lookup("/a.txt", f, t0), outcome::found);
  EXPECT_FALSE(f.owned);
  EXPECT_EQ(body_of(f), "first\n");
  EXPECT_EQ(f.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(cache.stats().misses, 1u);

  // Replaced by rename: within `valid` the old file is still served (as
  // nginx's open_file_cache does), from memory.
  root.write("b.tmp", "second, longer\n");
  ASSERT_EQ(std::rename((root.path + "/b.tmp").c_str(), (root.path + "/a.txt").c_str()), 0);
  ASSERT_EQ(cache.lookup("/a.txt", f, t0 + 999ms), outcome::found);
  EXPECT_EQ(body_of(f), "first\n");
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().content_hits, 1u);
  // Past it: looked up again, the new file.
  ASSERT_EQ(cache.lookup("/a.txt", f, t0 + 1s), outcome::found);
  EXPECT_EQ(body_of(f), "second, longer\n");
  EXPECT_EQ(cache.stats().misses, 2u);
  EXPECT_EQ(cache.size(), 1u);

  // Deleted: served until the next check, then 404 and the entry is gone.
  ASSERT_EQ(std::remove((root.path + "/a.txt").c_str()), 0);
  EXPECT_EQ(cache.lookup("/a.txt", f, t0 + 1500ms), outcome::found);
  EXPECT_EQ(cache.lookup("/a.txt", f, t0 + 2s), outcome::not_found);
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(cache_fixture, files_above_the_content_limit_are_served_from_the_descriptor_and_read_as_they_are_now) {
  root.write("big.bin", std::string(100, 'x'));
  open_file_cache_options o;
  o.content = 99;
  open_file_cache cache(files, o);
  static_files::file f;
  ASSERT_EQ(cache.lookup("/big.bin", f, t0), outcome::found);
  EXPECT_EQ(f.content.data(), nullptr);
  EXPECT_EQ(f.size, 100u);
  // Changed in place (same inode): the descriptor reads the new bytes.
  {
    std::fstream out(root.path + "/big.bin", std::ios::binary | std::ios::in | std::ios::out);
    out.write("yy", 2);
  }
  ASSERT_EQ(cache.lookup("/big.bin", f, t0 + 1ms), outcome::found);
  EXPECT_EQ(body_of(f), "yy" + std::string(98, 'x'));
  EXPECT_EQ(cache.stats().content_hits, 0u);

  // take() gives the caller a descriptor of its own that outlives the entry.
  const int own = open_file_cache::take(f);
  ASSERT_GE(own, 0);
  EXPECT_NE(own, f.fd);
  ASSERT_EQ(cache.lookup("/big.bin", f, t0 + 10s), outcome::found);  // re-checked: the old descriptor closed
  char b[2];
  EXPECT_EQ(::pread(own, b, 2, 0), 2);
  ::close(own);
}

TEST_F(cache_fixture, errors_are_never_cached) {
  open_file_cache cache(files, {});
  static_files::file f;
  EXPECT_EQ(cache.lookup("/nope", f, t0), outcome::not_found);
  EXPECT_EQ(cache.lookup("/../etc/passwd", f, t0), outcome::forbidden);
  EXPECT_EQ(cache.lookup("/%zz", f, t0), outcome::bad_path);
  root.write("nope", "now it is\n");
  ASSERT_EQ(cache.lookup("/nope", f, t0 + 1ms), outcome::found);  // no negative entry held it back
  EXPECT_EQ(body_of(f), "now it is\n");
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(cache_fixture, descriptors_stay_bounded_by_entries_and_unused_ones_close_after_inactive) {
  open_file_cache_options o;
  o.entries = 8;
  o.inactive = 10s;
  const std::size_t before = open_descriptors();
  {
    open_file_cache cache(files, o);
    static_files::file f;
    for (int i = 0; i < 50; ++i) {
      root.write("f" + std::to_string(i), "file " + std::to_string(i));
      ASSERT_EQ(cache.lookup("/f" + std::to_string(i), f, t0 + std::chrono::milliseconds(i)), outcome::found);
      EXPECT_EQ(body_of(f), "file " + std::to_string(i));
      EXPECT_LE(cache.size(), 8u);
      EXPECT_LE(open_descriptors(), before + 8);
    }
    EXPECT_EQ(cache.stats().evictions, 42u);
    // The most recently used survive: f42..f49 hit, and touching f42 makes
    // f43 the next to go.
    ASSERT_EQ(cache.lookup("/f42", f, t0 + 1s), outcome::found);
    EXPECT_EQ(cache.stats().hits, 1u);
    ASSERT_EQ(cache.lookup("/f0", f, t0 + 1s), outcome::found);  // evicts f43
    ASSERT_EQ(cache.lookup("/f42", f, t0 + 1s), outcome::found);
    EXPECT_EQ(cache.stats().hits, 2u);
    ASSERT_EQ(cache.lookup("/f43", f, t0 + 1s), outcome::found);
    EXPECT_EQ(cache.stats().hits, 2u);  // a miss: it was the one evicted
    // Unused for `inactive`: closed at the next lookup, whatever it is for.
    EXPECT_EQ(cache.lookup("/missing", f, t0 + 12s), outcome::not_found);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(open_descriptors(), before);
  }
  EXPECT_EQ(open_descriptors(), before);
}

TEST_F(cache_fixture, the_index_survives_heavy_churn) {
  // Deletions shift probe runs back: every cached key must stay findable
  // (a missed shift would hide an entry and cache its file twice).
  open_file_cache_options o;
  o.entries = 48;  // an index of 128 slots: runs of several keys form
  open_file_cache cache(files, o);
  static_files::file f;
  constexpr int keys = 400;
  for (int i = 0; i < keys; ++i) root.write("k" + std::to_string(i), std::to_string(i));
  std::uint64_t lookups = 0;
  for (int round = 0; round < 6000; ++round) {
    const int k = (round * 7919 + round / 50) % (round % 3 == 0 ? keys : 60);
    const auto now = t0 + std::chrono::microseconds(round);
    ASSERT_EQ(cache.lookup("/k" + std::to_string(k), f, now), outcome::found);
    ASSERT_EQ(body_of(f), std::to_string(k));
    ASSERT_EQ(cache.lookup("/k" + std::to_string(k), f, now), outcome::found);  // a hit now
    lookups += 2;
    ASSERT_TRUE(cache.index_consistent()) << "after round " << round;
  }
  EXPECT_EQ(cache.stats().hits + cache.stats().misses, lookups);
  EXPECT_GE(cache.stats().hits, lookups / 2);
  EXPECT_GT(cache.stats().evictions, 1000u);
}

TEST_F(cache_fixture, zero_entries_is_no_cache) {
  root.write("a", "x");
  open_file_cache_options o;
  o.entries = 0;
  open_file_cache cache(files, o);
  static_files::file f;
  ASSERT_EQ(cache.lookup("/a", f, t0), outcome::found);
  EXPECT_TRUE(f.owned);
  EXPECT_EQ(f.content.data(), nullptr);
  ::close(f.fd);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace sluice::httpd
