#pragma once
// Command-line flags for sluice's apps: declared once with their help text,
// parsed with one clear line on error. Accepts --name=value and --name value.
//
//   cli args("sluice-echo", "TCP and UDP echo server.");
//   args.flag("--udp", "echo UDP datagrams instead of TCP", udp);
//   args.option("--listen", "HOST:PORT", "where to listen (repeatable)", listens);
//   if (auto rc = args.parse(argc, argv)) return *rc;   // --help: 0, error: 2
//
// Values: durations take ns, us, ms, s, m or h suffixes (a bare number is
// seconds); sizes take k, m, g (powers of 1024).
//
// Every size, count and duration has a range (number_range, duration_range)
// that it is checked against as it is parsed, here for every app's flags and
// by check_range() for the gateway's TOML file: a value outside gives one
// line such as "--max-headers: 4294967296 is out of range (1 to 1000)" and
// exit code 2, before anything starts. The ranges shared by several apps are
// named in `ranges` below; --help prints each flag's range.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/result.hpp"
#include "sluice/base/time.hpp"

namespace sluice {

// What a number in a range counts: printed as "64k" (bytes) or "64" (count).
enum class number_unit : std::uint8_t { count, bytes };

// The values a size or a count may take: min to max, and 0 as well where
// zero_is_off (a limit that 0 turns off).
struct number_range {
  std::uint64_t min;                      // smallest value accepted
  std::uint64_t max;                      // largest value accepted
  number_unit unit = number_unit::count;  // how to_string() prints the bounds
  bool zero_is_off = false;               // 0 is accepted too, meaning "off"
};

// The values a duration may take: min to max, and 0 as well where
// zero_is_off (a deadline that 0 turns off). No range reaches past a day, so
// that now + d never leaves the clock's range.
struct duration_range {
  duration min;              // shortest duration accepted
  duration max;              // longest duration accepted
  bool zero_is_off = false;  // 0 is accepted too, meaning "off"
};

// Parses without a range: the text's own form only. A size or a duration too
// large for 64 bits is an error, never a wrapped value.
result<duration> parse_duration(std::string_view text);
// A size: digits with an optional k, m or g suffix (powers of 1024).
result<std::uint64_t> parse_size(std::string_view text);
// A count: digits only.
result<std::uint64_t> parse_count(std::string_view text);

// The one range check of sizes, counts and durations, for flags and files
// alike. The error reads "VALUE is out of range (RANGE)"; callers put the
// flag or the key in front.
result<void> check_range(std::uint64_t value, const number_range& r);
// The same, for durations: "VALUE is out of range (RANGE)" on error.
result<void> check_range(duration value, const duration_range& r);
// parse_size(text), then check_range.
result<std::uint64_t> parse_size(std::string_view text, const number_range& r);
// parse_count(text), then check_range.
result<std::uint64_t> parse_count(std::string_view text, const number_range& r);
// parse_duration(text), then check_range.
result<duration> parse_duration(std::string_view text, const duration_range& r);
// "1 to 1000", "1k to 1g", "0 (off) or 1ms to 24h".
[[nodiscard]] std::string to_string(const number_range& r);
// "1ms to 24h", "0 (off) or 1s to 1h".
[[nodiscard]] std::string to_string(const duration_range& r);
// "64k", "1g", "1000" (bytes in the largest unit that divides them).
[[nodiscard]] std::string format_size(std::uint64_t bytes);
// "250ms", "10s", "2m" (in the largest unit that divides it).
[[nodiscard]] std::string format_duration(duration d);

// The ranges that several apps (or an app and the gateway's file) share.
// Bounds are where a value stops making sense or starts to break something:
// an allocation per connection, a head the parser could never hold, a time
// past the clock's range.
namespace ranges {
using namespace std::chrono_literals;
// One kibibyte (1024 bytes); mib, gib and tib follow.
inline constexpr std::uint64_t kib = 1024;
// 1024 kib.
inline constexpr std::uint64_t mib = kib * 1024;
// 1024 mib.
inline constexpr std::uint64_t gib = mib * 1024;
// 1024 gib.
inline constexpr std::uint64_t tib = gib * 1024;

// Loops and connections (app_options).
inline constexpr number_range cores{1, 4096};
// --numa-node.
inline constexpr number_range numa_node{0, 1023};
// The connection table grows up to this; more than 4M per loop is more
// than the descriptors a process can have.
inline constexpr number_range max_connections{1, 4 * mib};
// Input below a few segments cannot hold a request head; above 1g one
// connection could take a whole pool.
inline constexpr number_range max_input{4 * kib, gib, number_unit::bytes};
// --max-output: per-connection output limit.
inline constexpr number_range max_output{4 * kib, 4 * gib, number_unit::bytes};
// --segment-size: bytes per buffer segment.
inline constexpr number_range segment_size{kib, 16 * mib, number_unit::bytes};
// Below 1m a loop cannot hold one connection's input and output at once
// (--pool-limit=1 made every request wait for memory that never came).
inline constexpr number_range pool_limit{mib, tib, number_unit::bytes};
// Per-connection deadlines that 0 turns off (idle, read, write, keepalive).
inline constexpr duration_range optional_timeout{1ms, 24h, true};
// Deadlines that must exist (connect, header, response, health checks).
inline constexpr duration_range timeout{1ms, 24h};
// --shutdown-timeout: the grace period of a stop (0: close at once).
inline constexpr duration_range shutdown_timeout{0ms, 1h};
// --spin: how long an idle loop polls before it sleeps.
inline constexpr duration_range spin{0ms, 1s};
// --idle-sleep: the longest sleep between polls of an idle DPDK loop.
inline constexpr duration_range idle_sleep{1us, 1s};
// RFC 9293 3.8.6.3: an ACK must not be delayed by 0.5 s or more.
inline constexpr duration_range tcp_delayed_ack{0ms, 499ms};
// How long a peer's zero window may hold a connection with data waiting.
inline constexpr duration_range tcp_persist_timeout{1s, 1h};

// --tls-ticket-rotate (sluice-httpd, the gateway's flag and file): how
// often a process's session-ticket key is replaced. Under a second every
// client would miss; past a week a stolen key opens too much traffic.
inline constexpr duration_range ticket_rotate{1s, 7 * 24h};
// Its default: a ticket lives between one and two of these.
inline constexpr duration default_ticket_rotate = 1h;

// HTTP limits (sluice-httpd's flags, the gateway's flags and file).
inline constexpr number_range max_request_line{16, 64 * kib, number_unit::bytes};
// libhttp-parser refuses any head over 80k by itself (431).
inline constexpr number_range max_header_bytes{64, 80 * kib, number_unit::bytes};
// Each parser holds an array of this many fields.
inline constexpr number_range max_headers{1, 1000};
// Request body size (0: no body accepted).
inline constexpr number_range max_body{0, tib, number_unit::bytes};
}  // namespace ranges

// Declares an app's flags and parses argv against them (see the file comment).
// Each declaration binds a variable that parse() sets; those variables must
// outlive parse(). Main thread, before anything starts.
class cli {
 public:
  // A parser for `program` (shown in usage and errors) with a one-line
  // `summary` for --help.
  cli(std::string program, std::string summary);

  // A flag without a value: sets target to true when given.
  void flag(std::string name, std::string help, bool& target);
  // An option with a value (shown as value_name in --help), stored as given;
  // the last one given wins.
  void option(std::string name, std::string value_name, std::string help, std::string& target);
  // A repeatable option: every value given is appended to target.
  void option(std::string name, std::string value_name, std::string help, std::vector<std::string>& target);
  // An option whose value is a decimal number (strtod); anything else is an
  // error.
  void option(std::string name, std::string value_name, std::string help, double& target);
  // Sizes, counts and durations: parsed and checked against their range
  // (which --help prints after the help text).
  void duration_option(std::string name, std::string help, duration& target, const duration_range& r);
  // A size in bytes (k, m, g suffixes), checked against r.
  void size_option(std::string name, std::string help, std::size_t& target, const number_range& r);
  // A count (digits only), checked against r.
  void count_option(std::string name, std::string value_name, std::string help, std::size_t& target,
                    const number_range& r);
  // A count (digits only), checked against r.
  void count_option(std::string name, std::string value_name, std::string help, unsigned& target,
                    const number_range& r);
  // A flag or option with a custom parser; return an error to reject the value.
  void custom(std::string name, std::string value_name, std::string help,
              std::function<result<void>(std::string_view value)> apply);
  // A first positional word (a mode such as "echo"); optional unless required.
  void positional(std::string name, std::string help, std::string& target, bool required);
  // A line of text printed under the flags in --help.
  void note(std::string text);

  // Parses argv. nullopt: go on. Otherwise the exit code to return at once:
  // 0 after --help, 2 after printing one error line to stderr.
  [[nodiscard]] std::optional<int> parse(int argc, char** argv);
  // The --help text: usage, summary, every flag with its help and range, then
  // the notes.
  [[nodiscard]] std::string help() const;
  // Prints "PROGRAM: error: MESSAGE" to stderr and returns 2.
  [[nodiscard]] int fail(std::string_view message) const;
  // The program name given to the constructor.
  [[nodiscard]] const std::string& program() const noexcept { return program_; }

 private:
  struct entry {
    std::string name;
    std::string value_name;  // empty: a flag (no value)
    std::string help;
    std::function<result<void>(std::string_view)> apply;
  };
  const entry* find(std::string_view name) const;

  std::string program_;
  std::string summary_;
  std::vector<entry> entries_;
  std::vector<std::string> notes_;
  std::string positional_name_;
  std::string positional_help_;
  std::string* positional_ = nullptr;
  bool positional_required_ = false;
};

}  // namespace sluice
