#pragma once
// The encoder that matches length_field_decoder: writes a length field of 1,
// 2, 4 or 8 bytes (big or little endian) in front of each payload. The value
// written is the payload's size plus length_adjustment (e.g. +4 for a 4-byte
// field that counts itself, matching a decoder with adjustment -4).
//
//   auto p = codec::length_field_prepender::make({.field_size = 4});
//   p->send(c, std::move(payload_chain));        // header + payload, zero copy
//   p->encode("hello", c.output());               // header + a copy of the bytes
//
// Stateless after construction; owner core only (it writes into chains of
// one loop's pool).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/codec/byte_order.hpp"
#include "sluice/base/result.hpp"

namespace sluice {
class connection;
}

namespace sluice::codec {

// Writes a length header in front of payloads (see the file comment). Made by
// make(); a plain value, copied freely.
class length_field_prepender {
 public:
  // The length field it writes.
  struct options {
    unsigned field_size = 4;  // 1, 2, 4 or 8
    byte_order order = byte_order::big;  // the field's byte order
    std::int64_t length_adjustment = 0;  // added to the payload size to make the value written
  };

  // Checks the options: a valid field size, and an adjustment that fits the
  // field.
  static result<length_field_prepender> make(const options& opts);

  // The largest payload whose length fits the field.
  [[nodiscard]] std::uint64_t max_payload() const noexcept { return max_payload_; }
  // Bytes of header written in front of each payload (the field size).
  [[nodiscard]] unsigned header_size() const noexcept { return opts_.field_size; }

  // Writes the header for a payload of `payload_size` bytes (the caller
  // writes the payload after it, e.g. in place with reserve/commit). False,
  // nothing written, if the length does not fit the field or buffer memory
  // ran out.
  [[nodiscard]] bool write_header(buffer_chain& out, std::size_t payload_size) const noexcept;
  // Header, then the payload's bytes moved over without copying; on false
  // nothing was written and the payload is untouched.
  [[nodiscard]] bool encode(buffer_chain&& payload, buffer_chain& out) const noexcept;
  // Header, then a copy of the payload; on false nothing was written.
  [[nodiscard]] bool encode(std::string_view payload, buffer_chain& out) const noexcept;
  // Header and payload (zero copy) into c's output through connection::send,
  // so the output limit applies; on false nothing was queued (counted in the
  // loop's writes_rejected) and the payload is dropped.
  [[nodiscard]] bool send(connection& c, buffer_chain&& payload) const noexcept;

 private:
  explicit length_field_prepender(const options& opts) noexcept;
  [[nodiscard]] bool header(std::size_t payload_size, std::byte* out) const noexcept;

  options opts_;
  std::uint64_t max_payload_ = 0;
};

}  // namespace sluice::codec
