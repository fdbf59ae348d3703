#include "sluice/platform/cpu_list.hpp"

#include <algorithm>
#include <charconv>

namespace sluice::platform {

namespace {
bool parse_uint(std::string_view s, unsigned& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

result<cpu_list> parse_cpu_list(std::string_view text) {
  cpu_list out;
  if (text.empty()) return error{"empty CPU list", {}};
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto dash = part.find('-');
    unsigned lo = 0, hi = 0;
    bool ok = dash == std::string_view::npos ? parse_uint(part, lo) && parse_uint(part, hi)
                                              : parse_uint(part.substr(0, dash), lo) && parse_uint(part.substr(dash + 1), hi);
    if (!ok || hi < lo) return error{"bad CPU list part '" + std::string(part) + "' (expected N or N-M)", {}};
    if (hi - lo > 65536) return error{"CPU range '" + std::string(part) + "' is too large", {}};
    for (unsigned c = lo; c <= hi; ++c) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string format_cpu_list(const cpu_list& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace sluice::platform
