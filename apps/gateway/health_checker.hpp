#pragma once
// Active health checks for one loop's upstream pools: every `interval`, a
// probe per upstream connects (tcp) or asks `GET path` (http; 2xx or 3xx
// passes) within `timeout`, and tells the pool the result (rise/fall decide
// when the verdict changes). Each loop checks for itself (shared-nothing:
// its verdicts steer only its own traffic).
//
// Each probe's connection has a session (sluice::sessions) that points at the
// probe it runs for; the probes themselves (timers, verdict state) live as
// long as the checker.
//
// Owner core only. start() once the loop runs; stop() when it stops (cancels
// the timers, aborts probes in flight).

#include <memory>
#include <vector>

#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/session.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "upstream_pool.hpp"

namespace sluice {
class loop_base;
}

namespace sluice::gateway {

class health_checker {
 public:
  health_checker(loop_base& loop, std::vector<upstream_pool>& pools);
  ~health_checker();
  health_checker(const health_checker&) = delete;
  health_checker& operator=(const health_checker&) = delete;

  void start();
  void stop() noexcept;

 private:
  struct probe;
  // A probe connection's session.
  struct check {
    check(health_checker*& h, connection&) noexcept : owner(h) {}
    health_checker* owner;
    probe* p = nullptr;  // set as soon as the connect starts
    void on_open(connection& c) noexcept;
    void on_data(connection& c) noexcept;
    void on_close(connection& c, close_reason why) noexcept;
  };
  struct probe {
    health_checker* owner = nullptr;
    unsigned pool = 0;
    unsigned member = 0;
    connection_handle conn;
    timer deadline;
    bool busy = false;  // a check is in flight
    bool done = false;  // its result was given to the pool
    void expired() noexcept;
  };
  struct pool_clock {
    health_checker* owner = nullptr;
    unsigned pool = 0;
    timer tick;
    void fire() noexcept;
  };
  void run_checks(unsigned pool) noexcept;
  void conclude(probe& p, bool passed) noexcept;

  loop_base& loop_;
  std::vector<upstream_pool>& pools_;
  std::vector<std::unique_ptr<probe[]>> probes_;  // [pool][member]
  std::vector<std::unique_ptr<pool_clock>> clocks_;
  sessions<check, health_checker*> checks_;
  bool stopped_ = false;
};

}  // namespace sluice::gateway
