#include "sluice/core/codec/frame_status.hpp"

#include "sluice/core/connection.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::codec {

frame_status fit_input(connection& c, frame_status s) noexcept {
  if (s != frame_status::need_more) return s;
  return c.input().size() >= c.loop().options().max_input_bytes ? frame_status::input_full : s;
}

void reject(connection& c, frame_status s) noexcept {
  c.loop().stats().frames_rejected.add();
  const bool limit = s == frame_status::no_buffer || s == frame_status::input_full;
  c.close(limit ? close_reason::resource_limit : close_reason::protocol_error);
}

}  // namespace sluice::codec
