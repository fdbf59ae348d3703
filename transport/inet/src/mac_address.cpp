#include "sluice/inet/mac_address.hpp"

#include <cstdio>

namespace sluice::inet {

std::string mac_address::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
                bytes[5]);
  return buf;
}

std::optional<mac_address> mac_address::parse(std::string_view text) noexcept {
  // Exactly six two-digit hex groups separated by ':'.
  if (text.size() != 17) return std::nullopt;
  mac_address m;
  for (std::size_t i = 0; i < 6; ++i) {
    unsigned v = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      const char c = text[i * 3 + k];
      unsigned d;
      if (c >= '0' && c <= '9') {
        d = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
      v = v * 16 + d;
    }
    if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
    m.bytes[i] = static_cast<std::uint8_t>(v);
  }
  return m;
}

}  // namespace sluice::inet
