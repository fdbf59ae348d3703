#include "sluice/inet/flow_steering.hpp"

#include <cstring>

namespace sluice::inet {

namespace {

constexpr std::size_t input_len = 12;     // two IPv4 addresses and two ports
constexpr std::size_t input_len_v6 = 36;  // two IPv6 addresses and two ports

// The 32 key bits that start at bit position `bit` (bit 0 is the most
// significant bit of key byte 0): the window the Toeplitz hash XORs in for
// input bit `bit`.
std::uint32_t window_at(const std::array<std::uint8_t, flow_steering::key_len>& key, std::size_t bit) {
  std::uint32_t w = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    const std::size_t b = bit + i;
    const unsigned v = b / 8 < key.size() ? (key[b / 8] >> (7 - b % 8)) & 1u : 0u;
    w = (w << 1) | v;
  }
  return w;
}

}  // namespace

const std::array<std::uint8_t, flow_steering::key_len> flow_steering::default_key = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

flow_steering::flow_steering(unsigned loops, std::size_t table_size, const std::array<std::uint8_t, key_len>& key)
    : loops_(loops == 0 ? 1 : loops), key_(key) {
  std::size_t size = 1;
  while (size < table_size) size <<= 1;
  table_.resize(size);
  for (std::size_t i = 0; i < size; ++i) table_[i] = static_cast<std::uint16_t>(i % loops_);
  lookup_.assign(input_len_v6 * 256, 0);
  for (std::size_t pos = 0; pos < input_len_v6; ++pos) {
    for (unsigned v = 0; v < 256; ++v) {
      std::uint32_t x = 0;
      for (unsigned bit = 0; bit < 8; ++bit) {
        if ((v >> (7 - bit)) & 1u) x ^= window_at(key_, pos * 8 + bit);
      }
      lookup_[pos * 256 + v] = x;
    }
  }
}

std::uint32_t flow_steering::toeplitz(const std::uint8_t* input, std::size_t n) const noexcept {
  std::uint32_t h = 0;
  for (std::size_t i = 0; i < n; ++i) h ^= lookup_[i * 256 + input[i]];
  return h;
}

std::uint32_t flow_steering::hash(std::uint32_t src_ip, std::uint32_t dst_ip, std::uint16_t src_port,
                                  std::uint16_t dst_port) const noexcept {
  const std::uint8_t in[input_len] = {
      static_cast<std::uint8_t>(src_ip >> 24), static_cast<std::uint8_t>(src_ip >> 16),
      static_cast<std::uint8_t>(src_ip >> 8),  static_cast<std::uint8_t>(src_ip),
      static_cast<std::uint8_t>(dst_ip >> 24), static_cast<std::uint8_t>(dst_ip >> 16),
      static_cast<std::uint8_t>(dst_ip >> 8),  static_cast<std::uint8_t>(dst_ip),
      static_cast<std::uint8_t>(src_port >> 8), static_cast<std::uint8_t>(src_port),
      static_cast<std::uint8_t>(dst_port >> 8), static_cast<std::uint8_t>(dst_port),
  };
  return toeplitz(in, input_len);
}

std::uint32_t flow_steering::hash(std::uint32_t src_ip, std::uint32_t dst_ip) const noexcept {
  const std::uint8_t in[8] = {
      static_cast<std::uint8_t>(src_ip >> 24), static_cast<std::uint8_t>(src_ip >> 16),
      static_cast<std::uint8_t>(src_ip >> 8),  static_cast<std::uint8_t>(src_ip),
      static_cast<std::uint8_t>(dst_ip >> 24), static_cast<std::uint8_t>(dst_ip >> 16),
      static_cast<std::uint8_t>(dst_ip >> 8),  static_cast<std::uint8_t>(dst_ip),
  };
  return toeplitz(in, 8);
}

std::uint32_t flow_steering::hash6(const ip_address& src, const ip_address& dst, std::uint16_t src_port,
                                   std::uint16_t dst_port) const noexcept {
  std::uint8_t in[input_len_v6];
  std::memcpy(in, src.data(), 16);
  std::memcpy(in + 16, dst.data(), 16);
  in[32] = static_cast<std::uint8_t>(src_port >> 8);
  in[33] = static_cast<std::uint8_t>(src_port);
  in[34] = static_cast<std::uint8_t>(dst_port >> 8);
  in[35] = static_cast<std::uint8_t>(dst_port);
  return toeplitz(in, input_len_v6);
}

std::uint32_t flow_steering::hash6(const ip_address& src, const ip_address& dst) const noexcept {
  std::uint8_t in[32];
  std::memcpy(in, src.data(), 16);
  std::memcpy(in + 16, dst.data(), 16);
  return toeplitz(in, sizeof in);
}

}  // namespace sluice::inet
