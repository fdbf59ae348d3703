#include "sluice/inet/congestion_control.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::inet {

namespace {

// RFC 9438 section 5: C = 0.4, beta_cubic = 0.7.
constexpr double cubic_c = 0.4;
constexpr double cubic_beta = 0.7;
// RFC 9438 4.3: alpha_cubic = 3 (1 - beta) / (1 + beta), so that the
// Reno-friendly estimate grows as fast as Reno with the same beta would.
constexpr double cubic_alpha = 3.0 * (1.0 - cubic_beta) / (1.0 + cubic_beta);

}  // namespace

std::string_view to_string(congestion_algorithm a) noexcept {
  return a == congestion_algorithm::cubic ? "cubic" : "newreno";
}

congestion_control::congestion_control(congestion_algorithm algo, std::uint32_t mss) noexcept
    : algo_(algo), mss_(mss), cwnd_(initial_window(mss)) {}

std::uint32_t congestion_control::initial_window(std::uint32_t mss) noexcept {
  return std::min(10 * mss, std::max(2 * mss, 14600u));
}

void congestion_control::set_mss(std::uint32_t mss) noexcept {
  // Before any data moved (the handshake settled the MSS): restart from
  // the initial window of the real segment size.
  mss_ = mss;
  cwnd_ = initial_window(mss);
}

void congestion_control::on_ack(std::uint32_t acked, bool cwnd_limited, time_point now, duration rtt) noexcept {
  if (!cwnd_limited || acked == 0) return;
  if (cwnd_ < ssthresh_) {
    // Slow start (RFC 5681 3.1 equation 2), by bytes acknowledged up to
    // two segments per ACK (RFC 3465's L = 2).
    cwnd_ += std::min(acked, 2 * mss_);
    return;
  }
  if (algo_ == congestion_algorithm::newreno) {
    // Congestion avoidance: one segment per window of data acknowledged.
    bytes_acked_ += acked;
    if (bytes_acked_ >= cwnd_) {
      bytes_acked_ -= cwnd_;
      cwnd_ += mss_;
    }
    return;
  }
  cubic_avoidance(acked, now, rtt);
}

void congestion_control::cubic_avoidance(std::uint32_t acked, time_point now, duration rtt) noexcept {
  const double cw = static_cast<double>(cwnd_) / mss_;
  if (!epoch_started_) {
    // RFC 9438 4.2: the epoch starts with the first ACK in avoidance; K is
    // the time the curve takes to climb back to W_max from here.
    epoch_ = now;
    epoch_started_ = true;
    if (w_max_ <= cw) {
      w_max_ = cw;
      k_ = 0;
    } else {
      k_ = std::cbrt((w_max_ - cw) / cubic_c);
    }
    w_est_ = cw;
  }
  const double t = std::chrono::duration<double>(now - epoch_).count();
  const double r = std::chrono::duration<double>(rtt).count();
  const double segments = static_cast<double>(acked) / mss_;
  // RFC 9438 4.3: the Reno-friendly estimate; alpha becomes 1 once it has
  // reached the window it had before the last reduction.
  const double alpha = w_est_ >= w_last_max_ ? 1.0 : cubic_alpha;
  w_est_ += alpha * segments / cw;
  const double d = t - k_;
  const double w_cubic = cubic_c * d * d * d + w_max_;
  double next = cw;
  if (w_cubic < w_est_) {
    next = w_est_;  // the Reno-friendly region
  } else {
    // RFC 9438 4.4/4.5: aim at W_cubic(t + RTT), no lower than the window
    // and no more than 1.5 times it, a fraction per segment acknowledged.
    const double dt = t + r - k_;
    const double target = std::clamp(cubic_c * dt * dt * dt + w_max_, cw, 1.5 * cw);
    next = cw + (target - cw) / cw * segments;
  }
  const double bytes = next * mss_;
  if (bytes > static_cast<double>(cwnd_)) cwnd_ = static_cast<std::uint32_t>(std::min(bytes, 1.0e9));
}

void congestion_control::cubic_reduce() noexcept {
  const double cw = static_cast<double>(cwnd_) / mss_;
  // RFC 9438 4.7, fast convergence: a window that shrank since the last
  // event gives up some of the old W_max to newcomers.
  w_max_ = cw < w_max_ ? cw * (1.0 + cubic_beta) / 2.0 : cw;
  w_last_max_ = cw;
  epoch_started_ = false;
  ssthresh_ = std::max(static_cast<std::uint32_t>(cwnd_ * cubic_beta), 2 * mss_);
}

void congestion_control::on_loss(std::uint32_t flight, time_point) noexcept {
  if (algo_ == congestion_algorithm::cubic) {
    cubic_reduce();  // RFC 9438 4.6: ssthresh = cwnd x beta_cubic
  } else {
    ssthresh_ = std::max(flight / 2, 2 * mss_);  // RFC 5681 equation 4
    bytes_acked_ = 0;
  }
  cwnd_ = ssthresh_;
}

void congestion_control::on_recovery_exit(std::uint32_t flight) noexcept {
  // RFC 6582 3.2 step 3, option 1: no burst larger than the flight allows.
  cwnd_ = std::min(ssthresh_, std::max(flight, mss_) + mss_);
}

void congestion_control::on_timeout(std::uint32_t flight, time_point) noexcept {
  if (algo_ == congestion_algorithm::cubic) {
    cubic_reduce();  // RFC 9438 4.8: ssthresh with beta_cubic, then as Reno
  } else {
    ssthresh_ = std::max(flight / 2, 2 * mss_);
    bytes_acked_ = 0;
  }
  cwnd_ = mss_;  // RFC 5681 3.1: the loss window is one segment
}

void congestion_control::on_idle_restart() noexcept {
  cwnd_ = std::min(cwnd_, initial_window(mss_));
  epoch_started_ = false;
}

}  // namespace sluice::inet
