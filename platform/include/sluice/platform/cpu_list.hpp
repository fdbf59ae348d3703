#pragma once
// CPU lists as people write them: "0-3,8,10-11". Parsed into sorted, unique
// OS CPU indexes and printed back in the same compact form.

#include <string>
#include <string_view>
#include <vector>

#include "sluice/base/result.hpp"

namespace sluice::platform {

// OS CPU indexes, sorted and unique.
using cpu_list = std::vector<unsigned>;

// "0-3,8" -> {0,1,2,3,8}. Errors name the bad part.
result<cpu_list> parse_cpu_list(std::string_view text);
// {0,1,2,3,8} -> "0-3,8".
std::string format_cpu_list(const cpu_list& cpus);

}  // namespace sluice::platform
