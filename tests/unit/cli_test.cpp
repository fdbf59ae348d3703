// The one range check of sizes, counts and durations (sluice/base/cli.hpp)
// that every app's flags and the gateway's file use: values at the edges
// pass, values past them fail with the range in the message, and values too
// large for 64 bits fail instead of wrapping (issue 15, items 3 and 9).

#include "sluice/base/cli.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

std::string message(const result<void>& r) { return r ? "" : r.err().message; }

TEST(cli, sizes_that_overflow_64_bits_are_errors_not_wrapped_values) {
  EXPECT_EQ(parse_size("16g").value(), 16ull << 30);
  EXPECT_FALSE(parse_size("99999999999999999g"));
  EXPECT_EQ(parse_size("99999999999999999g").err().message, "'99999999999999999g' is too large");
  EXPECT_FALSE(parse_size("18446744073709551616"));
  EXPECT_EQ(parse_size("17179869183g").value(), 17179869183ull << 30) << "the largest that fits";
  EXPECT_FALSE(parse_size("17179869184g"));
  EXPECT_FALSE(parse_count("99999999999999999999"));
  EXPECT_EQ(parse_count("99999999999999999999").err().message, "'99999999999999999999' is too large");
  EXPECT_FALSE(parse_size("k"));
}

TEST(cli, durations_past_the_clock_are_errors) {
  EXPECT_EQ(parse_duration("250ms").value(), 250ms);
  EXPECT_EQ(parse_duration("2h").value(), 2h);
  EXPECT_FALSE(parse_duration("99999999h"));
  EXPECT_EQ(parse_duration("99999999h").err().message, "'99999999h' is beyond the clock's range");
  EXPECT_FALSE(parse_duration("1000000000000000000000s"));
  EXPECT_FALSE(parse_duration("5 parsecs"));
}

TEST(cli, ranges_accept_their_edges_and_name_themselves_in_errors) {
  EXPECT_EQ(message(check_range(1, ranges::max_headers)), "");
  EXPECT_EQ(message(check_range(1000, ranges::max_headers)), "");
  EXPECT_EQ(message(check_range(4294967296, ranges::max_headers)), "4294967296 is out of range (1 to 1000)");
  EXPECT_EQ(message(check_range(0, ranges::max_headers)), "0 is out of range (1 to 1000)");
  EXPECT_EQ(message(check_range(0, ranges::max_input)), "0 is out of range (4k to 1g)");
  EXPECT_EQ(message(check_range(1, ranges::pool_limit)), "1 is out of range (1m to 1024g)");
  EXPECT_EQ(message(check_range(80 * 1024, ranges::max_header_bytes)), "");
  EXPECT_EQ(message(check_range(80 * 1024 + 1, ranges::max_header_bytes)), "81921 is out of range (64 to 80k)");
  EXPECT_EQ(message(check_range(24h, ranges::timeout)), "");
  EXPECT_EQ(message(check_range(25h, ranges::timeout)), "25h is out of range (1ms to 24h)");
  EXPECT_EQ(message(check_range(duration::zero(), ranges::timeout)), "0 is out of range (1ms to 24h)");
  EXPECT_EQ(message(check_range(duration::zero(), ranges::optional_timeout)), "") << "0 turns it off";
  EXPECT_EQ(message(check_range(500us, ranges::optional_timeout)), "500us is out of range (0 (off) or 1ms to 24h)");
  EXPECT_EQ(message(check_range(500ms, ranges::tcp_delayed_ack)), "500ms is out of range (0 to 499ms)");
}

TEST(cli, every_range_stays_inside_the_clock_and_its_target) {
  // No duration range reaches past a day: now + d cannot overflow.
  for (const duration_range& r : {ranges::optional_timeout, ranges::timeout, ranges::shutdown_timeout, ranges::spin,
                                  ranges::idle_sleep, ranges::tcp_delayed_ack}) {
    EXPECT_LE(r.max, duration(24h));
    EXPECT_LE(r.min, r.max);
  }
  EXPECT_LE(ranges::max_headers.max, 1000u) << "each parser holds an array of this many fields";
  EXPECT_LE(ranges::max_header_bytes.max, 80u * 1024) << "libhttp-parser's own cap";
}

TEST(cli, flags_check_their_range_and_help_shows_it) {
  std::size_t size = 7;
  duration d = 5s;
  unsigned n = 3;
  cli args("prog", "test");
  args.size_option("--size", "a size", size, ranges::max_input);
  args.duration_option("--wait", "a wait", d, ranges::timeout);
  args.count_option("--n", "N", "a count", n, {1, 10});
  const std::string help = args.help();
  EXPECT_NE(help.find("a size; range 4k to 1g"), std::string::npos) << help;
  EXPECT_NE(help.find("a wait; range 1ms to 24h"), std::string::npos) << help;
  EXPECT_NE(help.find("a count; range 1 to 10"), std::string::npos) << help;
  auto parse = [&](std::vector<std::string> words) {
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    return args.parse(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EQ(parse({"prog", "--size=8k", "--wait=2s", "--n=10"}), std::nullopt);
  EXPECT_EQ(size, 8192u);
  EXPECT_EQ(d, 2s);
  EXPECT_EQ(n, 10u);
  EXPECT_EQ(parse({"prog", "--size=0"}), 2);
  EXPECT_EQ(parse({"prog", "--wait=25h"}), 2);
  EXPECT_EQ(parse({"prog", "--n=4294967297"}), 2) << "not truncated to 1";
  EXPECT_EQ(n, 10u) << "a refused value changes nothing";
}

}  // namespace
}  // namespace sluice
