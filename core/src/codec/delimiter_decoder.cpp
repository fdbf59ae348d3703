#include "sluice/core/codec/delimiter_decoder.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sluice::codec {

result<delimiter_decoder> delimiter_decoder::make(std::span<const std::string_view> delimiters,
                                                  const options& opts) {
  if (delimiters.empty() || delimiters.size() > max_delimiters) {
    return error{"a delimiter decoder takes 1 to " + std::to_string(max_delimiters) + " delimiters", {}};
  }
  delimiter_decoder d;
  d.opts_ = opts;
  for (std::string_view delim : delimiters) {
    if (delim.empty() || delim.size() > max_delimiter_size) {
      return error{"each delimiter must be 1 to " + std::to_string(max_delimiter_size) + " bytes", {}};
    }
    std::memcpy(d.delims_[d.count_].data(), delim.data(), delim.size());
    d.sizes_[d.count_] = static_cast<std::uint8_t>(delim.size());
    ++d.count_;
    d.longest_ = std::max(d.longest_, delim.size());
    const auto firsts = std::string_view(d.firsts_.data(), d.firsts_count_);
    if (firsts.find(delim[0]) == std::string_view::npos) d.firsts_[d.firsts_count_++] = delim[0];
  }
  return d;
}

frame_bounds delimiter_decoder::locate(const buffer_chain& in) noexcept {
  const std::size_t max = opts_.max_length;
  // A delimiter must start at index max at the latest.
  const std::size_t window = max == SIZE_MAX ? SIZE_MAX : max + 1;
  const std::string_view firsts(firsts_.data(), firsts_count_);
  std::size_t from = std::min(scanned_, in.size());
  for (;;) {
    auto pos = in.find_any(firsts, window, from);
    if (!pos) {
      if (in.size() > max) return {frame_status::too_long};
      scanned_ = in.size();
      return {frame_status::need_more};
    }
    std::array<char, max_delimiter_size> here{};
    const std::size_t have = in.copy_out(here.data(), longest_, *pos);
    std::size_t best = 0;
    bool undecided = false;
    for (std::size_t i = 0; i < count_; ++i) {
      const std::size_t n = sizes_[i];
      if (n <= have) {
        if (std::memcmp(here.data(), delims_[i].data(), n) == 0) best = std::max(best, n);
      } else if (std::memcmp(here.data(), delims_[i].data(), have) == 0) {
        undecided = true;  // this longer delimiter may still match
      }
    }
    if (undecided) {
      scanned_ = *pos;
      return {frame_status::need_more};
    }
    if (best != 0) {
      if (opts_.strip_delimiter) return {frame_status::frame, 0, *pos, best};
      return {frame_status::frame, 0, *pos + best, 0};
    }
    from = *pos + 1;
  }
}

}  // namespace sluice::codec
