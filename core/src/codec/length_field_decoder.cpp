#include "sluice/core/codec/length_field_decoder.hpp"

#include <array>
#include <string>

namespace sluice::codec {

result<length_field_decoder> length_field_decoder::make(const options& opts) {
  if (!valid_field_size(opts.field_size)) return error{"the length field must be 1, 2, 4 or 8 bytes", {}};
  if (opts.field_offset > SIZE_MAX / 2) return error{"the length field offset is out of range", {}};
  const std::size_t header = opts.field_offset + opts.field_size;
  if (opts.max_frame_length < header) {
    return error{"the maximum frame length (" + std::to_string(opts.max_frame_length) +
                     ") leaves no room for the header (" + std::to_string(header) + " bytes)",
                 {}};
  }
  if (opts.strip > opts.max_frame_length) return error{"cannot strip more bytes than a frame may have", {}};
  return length_field_decoder(opts);
}

frame_bounds length_field_decoder::locate(const buffer_chain& in) const noexcept {
  const std::size_t header = opts_.field_offset + opts_.field_size;
  if (in.size() < header) return {frame_status::need_more};
  std::array<std::byte, 8> field{};
  (void)in.copy_out(field.data(), opts_.field_size, opts_.field_offset);
  const std::uint64_t value = load_uint(field.data(), opts_.field_size, opts_.order);
  // Bytes after the header: value + adjustment, in 64 bits without overflow.
  const std::uint64_t room = opts_.max_frame_length - header;  // make() checked max >= header
  std::uint64_t rest = 0;
  if (opts_.length_adjustment >= 0) {
    const auto adj = static_cast<std::uint64_t>(opts_.length_adjustment);
    if (value > room || adj > room - value) return {frame_status::too_long};
    rest = value + adj;
  } else {
    // -(INT64_MIN) does not fit an int64: negate in unsigned arithmetic.
    const std::uint64_t sub = 0 - static_cast<std::uint64_t>(opts_.length_adjustment);
    if (value < sub) return {frame_status::bad_length};
    rest = value - sub;
    if (rest > room) return {frame_status::too_long};
  }
  const std::size_t total = header + static_cast<std::size_t>(rest);
  if (opts_.strip > total) return {frame_status::bad_length};
  if (in.size() < total) return {frame_status::need_more};
  return {frame_status::frame, opts_.strip, total - opts_.strip, 0};
}

}  // namespace sluice::codec
