#include "sluice/core/codec/line_decoder.hpp"

#include <algorithm>
#include <cstdint>

namespace sluice::codec {

frame_bounds line_decoder::locate(const buffer_chain& in) noexcept {
  const std::size_t max = opts_.max_length;
  // A valid line's LF lies at index max + 1 at the latest (content, CR, LF).
  const std::size_t window = max > SIZE_MAX - 2 ? SIZE_MAX : max + 2;
  auto lf = in.find_any("\n", window, std::min(scanned_, in.size()));
  if (!lf) {
    const std::size_t have = in.size();
    // Sure to be too long: no LF where one must be, or content already past
    // max with no CR in the one place that could still end it in time.
    if (have >= window || (have == window - 1 && in.at(max) != '\r')) return {frame_status::too_long};
    scanned_ = have;
    return {frame_status::need_more};
  }
  std::size_t content = *lf;
  if (content > 0 && in.at(content - 1) == '\r') --content;
  if (content > max) return {frame_status::too_long};
  const std::size_t ending = *lf + 1 - content;
  if (opts_.strip_ending) return {frame_status::frame, 0, content, ending};
  return {frame_status::frame, 0, content + ending, 0};
}

}  // namespace sluice::codec
