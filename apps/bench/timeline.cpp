#include "timeline.hpp"

namespace sluice::bench {

timeline::timeline(time_point origin, duration interval, std::size_t expected_intervals)
    : origin_(origin), interval_(interval) {
  intervals_.reserve(expected_intervals);
  for (std::size_t i = 0; i < expected_intervals; ++i) intervals_.push_back(std::make_unique<histogram>());
}

bool timeline::grow(std::size_t index) noexcept {
  // Past the planned end (a slow finish, or a run without a known end): one
  // more histogram per interval reached, never one per message.
  try {
    while (intervals_.size() <= index) intervals_.push_back(std::make_unique<histogram>());
    return true;
  } catch (...) {
    return false;
  }
}

void timeline::merge(const timeline& other) {
  if (other.size() > size()) (void)grow(other.size() - 1);
  for (std::size_t i = 0; i < other.size() && i < size(); ++i) intervals_[i]->merge(other.at(i));
}

}  // namespace sluice::bench
