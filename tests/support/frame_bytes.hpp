#pragma once
// Byte helpers of the independent frame builders (frames.cpp,
// frames_ipv6.cpp): big-endian puts and gets, and RFC 1071 written plainly,
// word by word: deliberately not the stack's code, so a test compares the
// stack with something else.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/inet/mac_address.hpp"

namespace sluice::test::frame_bytes {

using inet::mac_address;

// Appends v big-endian.
inline void put16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}
// Appends v big-endian.
inline void put32(std::string& s, std::uint32_t v) {
  put16(s, static_cast<std::uint16_t>(v >> 16));
  put16(s, static_cast<std::uint16_t>(v));
}
// Appends the six bytes of m.
inline void put_mac(std::string& s, const mac_address& m) {
  for (auto b : m.bytes) s.push_back(static_cast<char>(b));
}
// The big-endian 16-bit value at s[at].
inline std::uint16_t get16(std::string_view s, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) | static_cast<unsigned char>(s[at + 1]));
}
// The big-endian 32-bit value at s[at].
inline std::uint32_t get32(std::string_view s, std::size_t at) {
  return (std::uint32_t{get16(s, at)} << 16) | get16(s, at + 2);
}
// The MAC address at s[at].
inline mac_address get_mac(std::string_view s, std::size_t at) {
  mac_address m;
  for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = static_cast<std::uint8_t>(s[at + i]);
  return m;
}
// RFC 1071's sum of b's big-endian words added to sum (not folded).
inline std::uint32_t sum_words(std::string_view b, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i < b.size(); i += 2) {
    std::uint32_t w = static_cast<unsigned char>(b[i]) << 8;
    if (i + 1 < b.size()) w |= static_cast<unsigned char>(b[i + 1]);
    sum += w;
  }
  return sum;
}
// The checksum field's value for a sum: folded and complemented.
inline std::uint16_t finish(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

}  // namespace sluice::test::frame_bytes
