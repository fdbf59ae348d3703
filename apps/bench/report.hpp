#pragma once
// Formatting of sluice-bench results: human text and JSON.

#include <cstdint>
#include <string>

#include "sluice/core/histogram.hpp"

namespace sluice::bench {

struct summary {
  std::string mode;
  std::string target;
  std::string path;  // http only
  unsigned connections = 0;
  std::size_t size = 0;
  unsigned pipeline = 0;
  double rate = 0;  // open loop: intended messages per second (0: closed loop)
  double seconds = 0;
  unsigned loops = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;  // reply bytes received in the measured window
  std::uint64_t connect_failures = 0;
  std::uint64_t closed_early = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t protocol_errors = 0;  // replies that could not be framed
  std::string first_error;
  histogram latency;
  bool tls = false;                      // --tls
  bool reconnecting = false;             // --conn-messages: handshakes are part of the load
  std::uint64_t handshakes = 0;          // connections opened (TLS: handshakes done) in the window
  std::uint64_t resumed = 0;             // of which resumed a TLS session
  std::uint64_t handshake_failures = 0;  // TLS handshakes that failed in the window

  [[nodiscard]] std::uint64_t errors() const noexcept {
    return connect_failures + closed_early + mismatches + protocol_errors + handshake_failures;
  }
};

// "812us", "1.25ms", "3.1s".
std::string format_ns(std::uint64_t ns);
// The first line of the text report (also the plot's title).
std::string headline(const summary& s);
std::string to_text(const summary& s);
std::string to_json(const summary& s);

}  // namespace sluice::bench
