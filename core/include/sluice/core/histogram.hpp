#pragma once
// A log-linear histogram of non-negative integers (latencies in nanoseconds):
// exact below 128, then 64 linear sub-buckets per power of two, so any value
// is recorded within 1.6% of itself, from 1 ns to centuries, in a fixed 30 KB.
// record() is a few instructions and never allocates.
//
// Owner thread only; merge() combines histograms of several loops afterwards.

#include <array>
#include <bit>
#include <cstdint>

namespace sluice {

// A histogram of values (see the file comment). A plain value type (about 30 KB
// inline: keep it in a long-lived object, not on a small stack).
class histogram {
 public:
  static constexpr int sub_bits = 6;  // 64 sub-buckets per power of two
  // Buckets: 128 exact ones, then 64 per power of two up to 2^64.
  static constexpr std::size_t bucket_count = 128 + 57 * 64;

  // Counts v. A few instructions; never allocates.
  void record(std::uint64_t v) noexcept {
    ++counts_[index_of(v)];
    ++total_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  // Adds o's counts to this one (to combine the histograms of several loops).
  void merge(const histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
    if (o.min_ < min_) min_ = o.min_;
  }
  // Forgets every value.
  void reset() noexcept { *this = histogram{}; }

  // Values recorded.
  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  // The largest value recorded (0 if none).
  [[nodiscard]] std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
  // The smallest value recorded (0 if none).
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  // The arithmetic mean of the values (0 if none).
  [[nodiscard]] double mean() const noexcept { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0; }
  // The value at quantile q (0..1): the upper edge of the bucket holding the
  // q-th value, capped at the exact maximum.
  [[nodiscard]] std::uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) rank = total_ - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen > rank) {
        std::uint64_t hi = upper_edge(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }
  // Buckets, for exporting (Prometheus, plots).
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept { return counts_[i]; }
  // The largest value bucket i holds.
  [[nodiscard]] static std::uint64_t upper_edge(std::size_t i) noexcept {
    if (i < 128) return i;
    std::size_t shift = (i - 128) / 64 + 1;
    std::uint64_t sub = (i - 128) % 64 + 64;
    return ((sub + 1) << shift) - 1;
  }
  // The bucket v is counted in.
  [[nodiscard]] static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < 128) return static_cast<std::size_t>(v);
    int msb = 63 - std::countl_zero(v);
    int shift = msb - sub_bits;  // v >> shift lies in [64, 128)
    return 128 + static_cast<std::size_t>(shift - 1) * 64 + static_cast<std::size_t>((v >> shift) - 64);
  }

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace sluice
