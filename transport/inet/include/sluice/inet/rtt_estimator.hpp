#pragma once
// The retransmission timeout of one connection, computed as RFC 6298
// section 2 says: SRTT and RTTVAR from round-trip samples (alpha 1/8, beta
// 1/4, K = 4), RTO = SRTT + max(G, 4 RTTVAR), clamped to [min, max], doubled
// on each timeout (section 5.5) and recomputed from the next sample.
//
// Which samples are valid is the caller's business: Karn's rule (RFC 6298
// section 3: no sample from a retransmitted segment, unless timestamps make
// it unambiguous, RFC 7323 section 4) lives in the TCP control block.
//
// A value type; owner core only.

#include <algorithm>

#include "sluice/base/time.hpp"

namespace sluice::inet {

// The RTT estimator of one connection (RFC 6298, see the file comment). A value
// type held by the control block.
class rtt_estimator {
 public:
  // RTO starts at `initial` (before the first sample) and stays within
  // [min_rto, max_rto]; `granularity` is the clock's (RFC 6298's G).
  rtt_estimator(duration initial, duration min_rto, duration max_rto, duration granularity) noexcept
      : rto_(initial), min_(min_rto), max_(max_rto), g_(granularity) {}

  // A round-trip measurement.
  void sample(duration r) noexcept {
    if (r < duration::zero()) return;
    if (!have_) {
      // RFC 6298 2.2: the first measurement.
      srtt_ = r;
      rttvar_ = r / 2;
      have_ = true;
    } else {
      // RFC 6298 2.3: RTTVAR first (it uses the old SRTT), then SRTT.
      const duration err = srtt_ > r ? srtt_ - r : r - srtt_;
      rttvar_ = (rttvar_ * 3 + err) / 4;
      srtt_ = (srtt_ * 7 + r) / 8;
    }
    backoff_ = 0;
    rto_ = std::clamp(srtt_ + std::max(g_, rttvar_ * 4), min_, max_);
  }
  // RFC 6298 5.5: the timer expired; the next RTO is twice as long.
  void back_off() noexcept {
    rto_ = std::min(rto_ * 2, max_);
    ++backoff_;
  }

  // The current retransmission timeout.
  [[nodiscard]] duration rto() const noexcept { return rto_; }
  // At least one sample was taken.
  [[nodiscard]] bool has_sample() const noexcept { return have_; }
  // The smoothed round-trip time (zero before the first sample).
  [[nodiscard]] duration srtt() const noexcept { return srtt_; }
  // The round-trip time variation (zero before the first sample).
  [[nodiscard]] duration rttvar() const noexcept { return rttvar_; }
  // Back-offs since the last sample (consecutive timeouts).
  [[nodiscard]] unsigned backoffs() const noexcept { return backoff_; }

 private:
  duration rto_;
  duration min_;
  duration max_;
  duration g_;
  duration srtt_{};
  duration rttvar_{};
  bool have_ = false;
  unsigned backoff_ = 0;
};

}  // namespace sluice::inet
