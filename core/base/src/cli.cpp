#include "sluice/base/cli.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>

namespace sluice {

namespace {
// Digits only, into 64 bits. nullopt: not a whole number; `too_large` says
// whether it was one that does not fit.
std::optional<std::uint64_t> whole_number(std::string_view text, bool& too_large) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  too_large = ec == std::errc::result_out_of_range && p == text.data() + text.size();
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}
}  // namespace

result<std::uint64_t> parse_count(std::string_view text) {
  bool too_large = false;
  auto v = whole_number(text, too_large);
  if (too_large) return error{"'" + std::string(text) + "' is too large", {}};
  if (!v) return error{"'" + std::string(text) + "' is not a whole number", {}};
  return *v;
}

result<duration> parse_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  std::string_view num = text.substr(0, i);
  std::string_view unit = text.substr(i);
  char* end = nullptr;
  std::string num_z(num);
  double v = std::strtod(num_z.c_str(), &end);
  if (num.empty() || end != num_z.c_str() + num_z.size() || v < 0) {
    return error{"'" + std::string(text) + "' is not a duration (e.g. 5s, 250ms, 2m)", {}};
  }
  double ns_per;
  if (unit.empty() || unit == "s") ns_per = 1e9;
  else if (unit == "ms") ns_per = 1e6;
  else if (unit == "us") ns_per = 1e3;
  else if (unit == "ns") ns_per = 1;
  else if (unit == "m") ns_per = 60e9;
  else if (unit == "h") ns_per = 3600e9;
  else return error{"'" + std::string(text) + "' has an unknown unit (use ns, us, ms, s, m, h)", {}};
  // Converting a double past int64's range is undefined: refuse it here
  // (2^62 ns is about 146 years, far past any range).
  const double ns = v * ns_per;
  if (!(ns < 4.6e18)) return error{"'" + std::string(text) + "' is beyond the clock's range", {}};
  return duration(static_cast<std::int64_t>(ns));
}

result<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t mult = 1;
  std::string_view num = text;
  if (!text.empty()) {
    char u = text.back();
    if (u == 'k' || u == 'K') mult = 1024;
    else if (u == 'm' || u == 'M') mult = 1024 * 1024;
    else if (u == 'g' || u == 'G') mult = 1024ull * 1024 * 1024;
    if (mult != 1) num = text.substr(0, text.size() - 1);
  }
  bool too_large = false;
  auto v = whole_number(num, too_large);
  if (too_large || (v && *v > UINT64_MAX / mult)) return error{"'" + std::string(text) + "' is too large", {}};
  if (!v) return error{"'" + std::string(text) + "' is not a size (e.g. 64, 16k, 1m)", {}};
  return *v * mult;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr struct {
    std::uint64_t unit;
    const char* suffix;
  } units[] = {{ranges::gib, "g"}, {ranges::mib, "m"}, {ranges::kib, "k"}};
  for (const auto& u : units) {
    if (bytes != 0 && bytes % u.unit == 0) return std::to_string(bytes / u.unit) + u.suffix;
  }
  return std::to_string(bytes);
}

std::string format_duration(duration d) {
  const auto ns = static_cast<std::int64_t>(d.count());
  if (ns == 0) return "0";
  static constexpr struct {
    std::int64_t unit;
    const char* suffix;
  } units[] = {{3600'000'000'000, "h"}, {60'000'000'000, "m"}, {1'000'000'000, "s"},
               {1'000'000, "ms"},       {1'000, "us"}};
  for (const auto& u : units) {
    if (ns != 0 && ns % u.unit == 0) return std::to_string(ns / u.unit) + u.suffix;
  }
  return std::to_string(ns) + "ns";
}

namespace {
std::string format_number(std::uint64_t v, number_unit u) {
  return u == number_unit::bytes ? format_size(v) : std::to_string(v);
}
}  // namespace

std::string to_string(const number_range& r) {
  std::string span = format_number(r.min, r.unit) + " to " + format_number(r.max, r.unit);
  return r.zero_is_off && r.min != 0 ? "0 (off) or " + span : span;
}

std::string to_string(const duration_range& r) {
  std::string span = format_duration(r.min) + " to " + format_duration(r.max);
  return r.zero_is_off && r.min != duration::zero() ? "0 (off) or " + span : span;
}

result<void> check_range(std::uint64_t value, const number_range& r) {
  if (value == 0 && r.zero_is_off) return {};
  if (value < r.min || value > r.max) {
    return error{format_number(value, r.unit) + " is out of range (" + to_string(r) + ")", {}};
  }
  return {};
}

result<void> check_range(duration value, const duration_range& r) {
  if (value == duration::zero() && r.zero_is_off) return {};
  if (value < r.min || value > r.max) {
    return error{format_duration(value) + " is out of range (" + to_string(r) + ")", {}};
  }
  return {};
}

result<std::uint64_t> parse_size(std::string_view text, const number_range& r) {
  auto v = parse_size(text);
  if (!v) return v;
  if (auto ok = check_range(*v, r); !ok) return ok.err();
  return v;
}

result<std::uint64_t> parse_count(std::string_view text, const number_range& r) {
  auto v = parse_count(text);
  if (!v) return v;
  if (auto ok = check_range(*v, r); !ok) return ok.err();
  return v;
}

result<duration> parse_duration(std::string_view text, const duration_range& r) {
  auto v = parse_duration(text);
  if (!v) return v;
  if (auto ok = check_range(*v, r); !ok) return ok.err();
  return v;
}

cli::cli(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

void cli::flag(std::string name, std::string help, bool& target) {
  entries_.push_back({std::move(name), "", std::move(help), [&target](std::string_view) -> result<void> {
                        target = true;
                        return {};
                      }});
}

void cli::option(std::string name, std::string value_name, std::string help, std::string& target) {
  entries_.push_back({std::move(name), std::move(value_name), std::move(help),
                      [&target](std::string_view v) -> result<void> {
                        target = std::string(v);
                        return {};
                      }});
}

void cli::option(std::string name, std::string value_name, std::string help, std::vector<std::string>& target) {
  entries_.push_back({std::move(name), std::move(value_name), std::move(help),
                      [&target](std::string_view v) -> result<void> {
                        target.emplace_back(v);
                        return {};
                      }});
}

void cli::option(std::string name, std::string value_name, std::string help, double& target) {
  entries_.push_back({std::move(name), std::move(value_name), std::move(help),
                      [&target](std::string_view v) -> result<void> {
                        std::string z(v);
                        char* end = nullptr;
                        double d = std::strtod(z.c_str(), &end);
                        if (z.empty() || end != z.c_str() + z.size()) {
                          return error{"'" + z + "' is not a number", {}};
                        }
                        target = d;
                        return {};
                      }});
}

namespace {
std::string with_range(std::string help, const std::string& range) { return help + "; range " + range; }
}  // namespace

void cli::duration_option(std::string name, std::string help, duration& target, const duration_range& r) {
  entries_.push_back({std::move(name), "DURATION", with_range(std::move(help), to_string(r)),
                      [&target, r](std::string_view v) -> result<void> {
                        auto d = parse_duration(v, r);
                        if (!d) return d.err();
                        target = *d;
                        return {};
                      }});
}

void cli::size_option(std::string name, std::string help, std::size_t& target, const number_range& r) {
  entries_.push_back({std::move(name), "BYTES", with_range(std::move(help), to_string(r)),
                      [&target, r](std::string_view v) -> result<void> {
                        auto s = parse_size(v, r);
                        if (!s) return s.err();
                        target = static_cast<std::size_t>(*s);
                        return {};
                      }});
}

void cli::count_option(std::string name, std::string value_name, std::string help, std::size_t& target,
                       const number_range& r) {
  entries_.push_back({std::move(name), std::move(value_name), with_range(std::move(help), to_string(r)),
                      [&target, r](std::string_view v) -> result<void> {
                        auto n = parse_count(v, r);
                        if (!n) return n.err();
                        target = static_cast<std::size_t>(*n);
                        return {};
                      }});
}

void cli::count_option(std::string name, std::string value_name, std::string help, unsigned& target,
                       const number_range& r) {
  entries_.push_back({std::move(name), std::move(value_name), with_range(std::move(help), to_string(r)),
                      [&target, r](std::string_view v) -> result<void> {
                        auto n = parse_count(v, r);
                        if (!n) return n.err();
                        target = static_cast<unsigned>(*n);
                        return {};
                      }});
}

void cli::custom(std::string name, std::string value_name, std::string help,
                 std::function<result<void>(std::string_view)> apply) {
  entries_.push_back({std::move(name), std::move(value_name), std::move(help), std::move(apply)});
}

void cli::positional(std::string name, std::string help, std::string& target, bool required) {
  positional_name_ = std::move(name);
  positional_help_ = std::move(help);
  positional_ = &target;
  positional_required_ = required;
}

void cli::note(std::string text) { notes_.push_back(std::move(text)); }

const cli::entry* cli::find(std::string_view name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

int cli::fail(std::string_view message) const {
  std::fprintf(stderr, "%s: error: %.*s (see --help)\n", program_.c_str(), static_cast<int>(message.size()),
               message.data());
  return 2;
}

std::optional<int> cli::parse(int argc, char** argv) {
  bool seen_positional = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return 0;
    }
    if (arg.substr(0, 2) != "--") {
      if (positional_ != nullptr && !seen_positional) {
        *positional_ = std::string(arg);
        seen_positional = true;
        continue;
      }
      return fail("unexpected argument '" + std::string(arg) + "'");
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const entry* e = find(name);
    if (e == nullptr) return fail("unknown flag " + std::string(name));
    if (e->value_name.empty()) {
      if (value) return fail(std::string(name) + " takes no value");
    } else if (!value) {
      if (i + 1 >= argc) return fail(std::string(name) + " needs a value (" + e->value_name + ")");
      value = std::string_view(argv[++i]);
    }
    if (auto r = e->apply(value.value_or("")); !r) return fail(std::string(name) + ": " + r.err().message);
  }
  if (positional_required_ && !seen_positional) return fail("missing " + positional_name_);
  return std::nullopt;
}

std::string cli::help() const {
  std::string out = "Usage: " + program_;
  if (positional_ != nullptr) out += positional_required_ ? " " + positional_name_ : " [" + positional_name_ + "]";
  out += " [FLAGS]\n\n" + summary_ + "\n";
  if (positional_ != nullptr) out += "\n  " + positional_name_ + "\n      " + positional_help_ + "\n";
  out += "\nFlags:\n";
  for (const auto& e : entries_) {
    std::string left = "  " + e.name + (e.value_name.empty() ? "" : "=" + e.value_name);
    out += left + "\n      " + e.help + "\n";
  }
  out += "  --help\n      print this help and exit\n";
  for (const auto& n : notes_) out += "\n" + n + "\n";
  return out;
}

}  // namespace sluice
