#pragma once
// Command-line flags for sluice's apps: declared once with their help text,
// parsed with one clear line on error. Accepts --name=value and --name value.
//
//   cli args("sluice-echo", "TCP and UDP echo server.");
//   args.flag("--udp", "echo UDP datagrams instead of TCP", udp);
//   args.option("--listen", "HOST:PORT", "where to listen (repeatable)", listens);
//   if (auto rc = args.parse(argc, argv)) return *rc;   // --help: 0, error: 2
//
// Values: durations take s, ms, us, ns or m suffixes (a bare number is
// seconds); sizes take k, m, g (powers of 1024).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core/result.hpp"
#include "sluice/core/time.hpp"

namespace sluice {

result<duration> parse_duration(std::string_view text);
result<std::uint64_t> parse_size(std::string_view text);
result<std::uint64_t> parse_count(std::string_view text);

class cli {
 public:
  cli(std::string program, std::string summary);

  void flag(std::string name, std::string help, bool& target);
  void option(std::string name, std::string value_name, std::string help, std::string& target);
  void option(std::string name, std::string value_name, std::string help, std::vector<std::string>& target);
  void option(std::string name, std::string value_name, std::string help, unsigned& target);
  void option(std::string name, std::string value_name, std::string help, std::uint64_t& target);
  void option(std::string name, std::string value_name, std::string help, double& target);
  void duration_option(std::string name, std::string help, duration& target);
  void size_option(std::string name, std::string help, std::size_t& target);
  void count_option(std::string name, std::string value_name, std::string help, std::size_t& target);
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
  [[nodiscard]] std::string help() const;
  // Prints "PROGRAM: error: MESSAGE" to stderr and returns 2.
  [[nodiscard]] int fail(std::string_view message) const;
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
