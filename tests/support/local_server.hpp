#pragma once
// An in-process server for tests: one epoll loop serving a test's handler on
// 127.0.0.1 and an ephemeral port, stopped and joined when it goes out of
// scope.

#include <gtest/gtest.h>

#include <string>

#include "sluice/runtime/runtime.hpp"

namespace sluice::test {

class local_server {
 public:
  explicit local_server(runtime::handler_factory make) : rt_(config()) {
    rt_.listen(endpoint::loopback_v4(0), std::move(make));
    auto started = rt_.start();
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.err().message);
    if (started.ok()) at_ = rt_.bound().front();
  }
  local_server(const local_server&) = delete;
  local_server& operator=(const local_server&) = delete;
  ~local_server() {
    rt_.stop(std::chrono::seconds(0));
    rt_.wait();
  }

  [[nodiscard]] const endpoint& at() const noexcept { return at_; }
  [[nodiscard]] std::string target() const { return at_.to_string(); }
  // Stops the loop and waits until it has ended (its counters are final
  // then; the loop itself lives until destruction), and returns its counters.
  const loop_stats& stop() {
    rt_.stop(std::chrono::seconds(0));
    EXPECT_TRUE(rt_.wait_for(std::chrono::seconds(10)));
    return rt_.loop(0).stats();
  }

 private:
  static runtime_config config() {
    runtime_config cfg;
    cfg.transport = "epoll";
    cfg.handle_signals = false;
    cfg.placement.loops = 1;  // one loop: its handler sees every connection, its stats count them all
    return cfg;
  }
  runtime rt_;
  endpoint at_;
};

}  // namespace sluice::test
