#pragma once
// The congestion window of one connection: slow start and congestion
// avoidance (RFC 5681), with the window growth of CUBIC (RFC 9438, the
// default) or NewReno (RFC 5681 section 3.1 with RFC 6582's recovery,
// selectable). A closed set of two: one class with an enum, no virtual call.
//
// The control block tells it what happened (new data acknowledged, a loss
// detected by duplicate ACKs or SACK, a retransmission timeout, the end of
// recovery) and reads cwnd() and ssthresh(); fast-recovery sequencing
// (which segment to retransmit, the recovery point) stays in the control
// block. Units are bytes; CUBIC's curve is computed in segments and
// seconds as the RFC writes it.
//
// A value type; owner core only; time is an input.

#include <cstdint>
#include <string_view>

#include "sluice/base/time.hpp"

namespace sluice::inet {

// Which window growth a connection uses (tcp_config::congestion, --tcp-cc).
enum class congestion_algorithm : std::uint8_t { cubic, newreno };

// "cubic" or "newreno".
[[nodiscard]] std::string_view to_string(congestion_algorithm a) noexcept;

// The congestion window of one connection (see the file comment). Held by its
// control block.
class congestion_control {
 public:
  // Starts in slow start at the initial window for mss, ssthresh unlimited.
  congestion_control(congestion_algorithm algo, std::uint32_t mss) noexcept;

  // New data was acknowledged outside recovery: grows the window. `acked`
  // bytes, `cwnd_limited` whether the sender had filled the window (an
  // application-limited sender does not earn growth, RFC 7661's idea),
  // `rtt` the smoothed round trip (CUBIC's t + RTT).
  void on_ack(std::uint32_t acked, bool cwnd_limited, time_point now, duration rtt) noexcept;
  // A loss found by duplicate ACKs or SACK (RFC 5681 3.2 step 2, RFC 9438
  // 4.6): ssthresh and cwnd go down by the algorithm's factor.
  void on_loss(std::uint32_t flight, time_point now) noexcept;
  // Recovery ended (RFC 6582 3.2 step 3): cwnd deflates to ssthresh.
  void on_recovery_exit(std::uint32_t flight) noexcept;
  // A retransmission timeout (RFC 5681 3.1 equation 4, RFC 9438 4.8):
  // ssthresh from the flight, cwnd one segment.
  void on_timeout(std::uint32_t flight, time_point now) noexcept;
  // The connection was idle for more than an RTO (RFC 5681 4.1): restart
  // from the initial window.
  void on_idle_restart() noexcept;
  // During recovery, each duplicate ACK lets one more segment out (the
  // NewReno inflation of RFC 6582 3.2 step 4).
  void inflate(std::uint32_t bytes) noexcept { cwnd_ += bytes; }
  // Sets the window outright: RFC 6582's deflation on a partial ACK, and
  // the one-segment loss window of a repeated timeout.
  void set_window(std::uint32_t bytes) noexcept { cwnd_ = bytes; }
  // The handshake settled the MSS (before any data moved): restarts from the
  // initial window of that segment size.
  void set_mss(std::uint32_t mss) noexcept;

  // The congestion window, bytes.
  [[nodiscard]] std::uint32_t cwnd() const noexcept { return cwnd_; }
  // The slow-start threshold, bytes (UINT32_MAX until the first loss).
  [[nodiscard]] std::uint32_t ssthresh() const noexcept { return ssthresh_; }
  // The algorithm it was made with.
  [[nodiscard]] congestion_algorithm algorithm() const noexcept { return algo_; }
  // cwnd below ssthresh: the window grows by what is acknowledged.
  [[nodiscard]] bool in_slow_start() const noexcept { return cwnd_ < ssthresh_; }
  // RFC 6928: min(10 MSS, max(2 MSS, 14600 bytes)).
  [[nodiscard]] static std::uint32_t initial_window(std::uint32_t mss) noexcept;

  // CUBIC's state, for tests.
  [[nodiscard]] double cubic_w_max() const noexcept { return w_max_; }
  // CUBIC's K: seconds from the last reduction until the window is back at
  // W_max.
  [[nodiscard]] double cubic_k() const noexcept { return k_; }

 private:
  void cubic_avoidance(std::uint32_t acked, time_point now, duration rtt) noexcept;
  void cubic_reduce() noexcept;

  congestion_algorithm algo_;
  std::uint32_t mss_;
  std::uint32_t cwnd_;
  std::uint32_t ssthresh_ = UINT32_MAX;  // RFC 5681 3.1: arbitrarily high at first
  std::uint32_t bytes_acked_ = 0;        // NewReno: byte counting in avoidance (RFC 3465)
  // CUBIC (segments, seconds).
  double w_max_ = 0;
  double w_last_max_ = 0;
  double k_ = 0;
  double w_est_ = 0;
  time_point epoch_{};
  bool epoch_started_ = false;
};

}  // namespace sluice::inet
