#include "sluice/inet/drop_reason.hpp"

#include <array>

namespace sluice::inet {

namespace {

constexpr std::array<std::string_view, drop_reason_count> names = {
#define SLUICE_X(name) #name,
    SLUICE_INET_DROP_REASONS(SLUICE_X)
#undef SLUICE_X
};

}  // namespace

std::string_view to_string(drop_reason r) noexcept {
  const auto i = static_cast<std::size_t>(r);
  return i < names.size() ? names[i] : "unknown";
}

}  // namespace sluice::inet
