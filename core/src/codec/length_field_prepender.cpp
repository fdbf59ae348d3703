#include "sluice/core/codec/length_field_prepender.hpp"

#include <array>
#include <cstring>

#include "sluice/core/connection.hpp"
#include "sluice/core/loop_base.hpp"

namespace sluice::codec {

result<length_field_prepender> length_field_prepender::make(const options& opts) {
  if (!valid_field_size(opts.field_size)) return error{"the length field must be 1, 2, 4 or 8 bytes", {}};
  const std::uint64_t field_max = max_uint(opts.field_size);
  if (opts.length_adjustment > 0 && static_cast<std::uint64_t>(opts.length_adjustment) > field_max) {
    return error{"the length adjustment does not fit the length field", {}};
  }
  return length_field_prepender(opts);
}

length_field_prepender::length_field_prepender(const options& opts) noexcept : opts_(opts) {
  const std::uint64_t field_max = max_uint(opts.field_size);
  if (opts.length_adjustment >= 0) {
    max_payload_ = field_max - static_cast<std::uint64_t>(opts.length_adjustment);
  } else {
    // A negative adjustment lets payloads grow past the field's maximum by
    // that much; beyond 64 bits nobody sends anything.
    const std::uint64_t sub = 0 - static_cast<std::uint64_t>(opts.length_adjustment);
    max_payload_ = field_max > UINT64_MAX - sub ? UINT64_MAX : field_max + sub;
  }
}

bool length_field_prepender::header(std::size_t payload_size, std::byte* out) const noexcept {
  const std::uint64_t n = payload_size;
  if (n > max_payload_) return false;
  std::uint64_t value = 0;
  if (opts_.length_adjustment >= 0) {
    value = n + static_cast<std::uint64_t>(opts_.length_adjustment);
  } else {
    const std::uint64_t sub = 0 - static_cast<std::uint64_t>(opts_.length_adjustment);
    if (n < sub) return false;  // the value would be negative
    value = n - sub;
  }
  store_uint(out, value, opts_.field_size, opts_.order);
  return true;
}

bool length_field_prepender::write_header(buffer_chain& out, std::size_t payload_size) const noexcept {
  std::array<std::byte, 8> h{};
  if (!header(payload_size, h.data())) return false;
  return out.write(std::span<const std::byte>(h.data(), opts_.field_size));
}

bool length_field_prepender::encode(buffer_chain&& payload, buffer_chain& out) const noexcept {
  if (!write_header(out, payload.size())) return false;
  out.append(std::move(payload));
  return true;
}

bool length_field_prepender::encode(std::string_view payload, buffer_chain& out) const noexcept {
  std::array<std::byte, 8> h{};
  if (!header(payload.size(), h.data())) return false;
  // Header and payload in one write, so a failure writes neither.
  auto room = out.reserve(opts_.field_size + payload.size());
  if (room.size() >= opts_.field_size + payload.size()) {
    std::memcpy(room.data(), h.data(), opts_.field_size);
    std::memcpy(room.data() + opts_.field_size, payload.data(), payload.size());
    out.commit(opts_.field_size + payload.size());
    return true;
  }
  buffer_chain framed(out.pool());
  if (!framed.write(std::span<const std::byte>(h.data(), opts_.field_size)) || !framed.write(payload)) return false;
  out.append(std::move(framed));
  return true;
}

bool length_field_prepender::send(connection& c, buffer_chain&& payload) const noexcept {
  buffer_chain framed(&c.loop().pool());
  if (!encode(std::move(payload), framed)) {
    c.loop().stats().writes_rejected.add();
    return false;
  }
  return c.send(std::move(framed));
}

}  // namespace sluice::codec
