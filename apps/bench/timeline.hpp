#pragma once
// Latency over time for --plot: one histogram per interval (100 ms by
// default) of the measured window, indexed from a common origin so that the
// timelines of several loops line up and merge.
//
// Memory: one 30 KB histogram per interval, made before the run when its
// length is known (a 60 s run at 100 ms: 600 of them, 18 MB); a run without a
// known end (--messages) grows it once per interval, never per message.
// Owner thread only; merge() afterwards.

#include <cstdint>
#include <memory>
#include <vector>

#include "sluice/core/histogram.hpp"
#include "sluice/base/time.hpp"

namespace sluice::bench {

class timeline {
 public:
  timeline(time_point origin, duration interval, std::size_t expected_intervals);

  // Records a latency that completed at `at` (before the origin: ignored).
  void record(time_point at, std::uint64_t latency_ns) noexcept {
    if (at < origin_) return;
    const auto i = static_cast<std::size_t>((at - origin_) / interval_);
    if (i >= intervals_.size() && !grow(i)) return;
    intervals_[i]->record(latency_ns);
  }
  void merge(const timeline& other);

  [[nodiscard]] std::size_t size() const noexcept { return intervals_.size(); }
  [[nodiscard]] const histogram& at(std::size_t i) const noexcept { return *intervals_[i]; }
  [[nodiscard]] duration interval() const noexcept { return interval_; }

 private:
  bool grow(std::size_t index) noexcept;

  time_point origin_;
  duration interval_;
  std::vector<std::unique_ptr<histogram>> intervals_;
};

}  // namespace sluice::bench
