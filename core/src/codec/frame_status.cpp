#include "sluice/core/codec/frame_status.hpp"

#include "sluice/core/connection.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::codec {

void reject(connection& c, frame_status s) noexcept {
  c.loop().stats().frames_rejected.add();
  c.close(s == frame_status::no_buffer ? close_reason::resource_limit : close_reason::protocol_error);
}

}  // namespace sluice::codec
