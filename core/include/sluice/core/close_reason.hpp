#pragma once
// Why a connection ended: given to handler::on_close, counted per loop.

#include <cstdint>
#include <string_view>

namespace sluice {

// Why a connection ended, as on_close gets it and connection::reason() returns.
// Counted per loop (loop_stats); to_string() names each value.
enum class close_reason : std::uint8_t {
  none,             // still open
  local,            // the application closed it; pending output was sent first
  aborted,          // the application aborted it: output discarded, RST sent
  peer_closed,      // the peer finished sending and the connection was closed
  peer_reset,       // the peer reset it (RST)
  read_timeout,     // nothing arrived within the read timeout
  write_timeout,    // pending output made no progress within the write timeout
  idle_timeout,     // nothing moved either way within the idle timeout
  connect_timeout,  // an outgoing connection did not complete in time
  connect_refused,  // the peer refused the connection
  unreachable,      // no route to the peer's network or host
  io_error,         // another socket error (connection::error() has errno)
  shutdown,         // the loop stopped and its grace period ended
  protocol_error,   // a codec or parser rejected the peer's bytes
  resource_limit,   // a configured limit or buffer memory ran out
};

// The number of close_reason values (for per-reason counter arrays).
inline constexpr int close_reason_count = static_cast<int>(close_reason::resource_limit) + 1;

// The value's name as written in the enum ("peer_reset"), for logs and metrics.
[[nodiscard]] constexpr std::string_view to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::none: return "none";
    case close_reason::local: return "local";
    case close_reason::aborted: return "aborted";
    case close_reason::peer_closed: return "peer_closed";
    case close_reason::peer_reset: return "peer_reset";
    case close_reason::read_timeout: return "read_timeout";
    case close_reason::write_timeout: return "write_timeout";
    case close_reason::idle_timeout: return "idle_timeout";
    case close_reason::connect_timeout: return "connect_timeout";
    case close_reason::connect_refused: return "connect_refused";
    case close_reason::unreachable: return "unreachable";
    case close_reason::io_error: return "io_error";
    case close_reason::shutdown: return "shutdown";
    case close_reason::protocol_error: return "protocol_error";
    case close_reason::resource_limit: return "resource_limit";
  }
  return "unknown";
}

}  // namespace sluice
