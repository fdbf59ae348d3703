#include "sluice/core/http/grammar.hpp"

#include <algorithm>
#include <array>

namespace sluice::http::grammar {

namespace {

// One table for every byte class the checks need (RFC 9110 5.6.2, 5.5; RFC 3986).
enum : std::uint8_t { tchar = 1, value_byte = 2, reg_name = 4, hex = 8 };

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool digit = c >= '0' && c <= '9';
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    std::uint8_t k = 0;
    if (digit || alpha || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      k |= tchar;
    }
    // field-vchar / obs-text, SP and HTAB.
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) k |= value_byte;
    // unreserved / sub-delims, and '%' of pct-encoded.
    if (digit || alpha || std::string_view("-._~!$&'()*+,;=%").find(static_cast<char>(c)) != std::string_view::npos) {
      k |= reg_name;
    }
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) k |= hex;
    t[static_cast<std::size_t>(c)] = k;
  }
  return t;
}
constexpr std::array<std::uint8_t, 256> classes = make_classes();

constexpr bool in(char c, std::uint8_t k) noexcept { return (classes[static_cast<unsigned char>(c)] & k) != 0; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_hex(char c) noexcept { return in(c, hex); }
constexpr bool is_ws(char c) noexcept { return c == ' ' || c == '\t'; }
constexpr bool is_value_byte(char c) noexcept { return in(c, value_byte); }
constexpr bool is_reg_name_byte(char c) noexcept { return in(c, reg_name); }

}  // namespace

bool is_tchar(char c) noexcept { return in(c, tchar); }

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!in(c, tchar)) return false;
  }
  return true;
}

const char* check_field_lines(std::string_view lines) noexcept {
  while (!lines.empty()) {
    std::string_view line = first_line(lines);
    if (line.empty()) return "a header line without its end";
    lines.remove_prefix(line.size());
    line.remove_suffix(1);  // LF
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return lines.empty() ? nullptr : "bytes after the end of the head";
    if (is_ws(line.front())) return "obsolete line folding in a header field";
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "a header line without a colon";
    if (!is_token(line.substr(0, colon))) return "header field name is not a token";
    for (char c : line.substr(colon + 1)) {
      if (!is_value_byte(c)) return c == '\r' ? "a bare CR in a header field" : "a control byte in a header field";
    }
  }
  return "a head without its final empty line";
}

bool valid_target(std::string_view target) noexcept {
  if (target.empty()) return false;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

bool valid_host(std::string_view host) noexcept {
  if (host.empty()) return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : host.substr(1, close - 1)) {
      if (!is_hex(c) && c != ':' && c != '.') return false;
    }
    name = {};
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    if (name.empty()) return false;
  }
  for (char c : name) {
    if (!is_reg_name_byte(c)) return false;
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!is_digit(c)) return false;
  }
  return true;
}

bool split_absolute_form(std::string_view target, absolute_form& out) noexcept {
  const std::size_t sep = target.find("://");
  if (sep == std::string_view::npos || sep == 0 || !is_alpha(target.front())) return false;
  for (char c : target.substr(0, sep)) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  const std::string_view rest = target.substr(sep + 3);
  const std::size_t path = rest.find_first_of("/?#");
  out.authority = rest.substr(0, path);
  // userinfo ("user@host") is not part of the host.
  if (const std::size_t at = out.authority.rfind('@'); at != std::string_view::npos) {
    out.authority.remove_prefix(at + 1);
  }
  out.origin = path == std::string_view::npos ? std::string_view() : rest.substr(path);
  if (!out.origin.empty() && out.origin.front() == '#') out.origin = {};
  return true;
}

bool chunk_framing::feed(std::string_view framing) noexcept {
  for (char c : framing) {
    switch (state_) {
      case state::size_start:
        if (!is_hex(c)) return state_ = state::failed, false;
        last_ = c == '0';
        state_ = state::size;
        break;
      case state::size:
        if (is_hex(c)) {
          last_ = last_ && c == '0';
        } else if (is_ws(c)) {
          state_ = state::size_bws;
        } else if (c == ';') {
          state_ = state::ext;
        } else if (c == '\r') {
          state_ = state::size_lf;
        } else {
          return state_ = state::failed, false;
        }
        break;
      case state::size_bws:
        if (c == ';') {
          state_ = state::ext;
        } else if (!is_ws(c)) {
          return state_ = state::failed, false;
        }
        break;
      case state::ext:
        // chunk-ext: names, values and quoted strings; no controls but HTAB,
        // and the line ends only with CRLF.
        if (c == '\r') {
          state_ = state::size_lf;
        } else if (!is_value_byte(c)) {
          return state_ = state::failed, false;
        }
        break;
      case state::size_lf:
        if (c != '\n') return state_ = state::failed, false;
        state_ = last_ ? state::trailer_start : state::data_cr;
        break;
      case state::data_cr:
        if (c != '\r') return state_ = state::failed, false;
        state_ = state::data_lf;
        break;
      case state::data_lf:
        if (c != '\n') return state_ = state::failed, false;
        state_ = state::size_start;
        break;
      case state::trailer_start:
        if (c == '\r') {
          state_ = state::final_lf;
        } else if (is_tchar(c)) {
          state_ = state::trailer;
        } else {
          return state_ = state::failed, false;
        }
        break;
      case state::trailer:
        if (c == '\r') {
          state_ = state::trailer_lf;
        } else if (!is_value_byte(c)) {
          return state_ = state::failed, false;
        }
        break;
      case state::trailer_lf:
        if (c != '\n') return state_ = state::failed, false;
        state_ = state::trailer_start;
        break;
      case state::final_lf:
        if (c != '\n') return state_ = state::failed, false;
        state_ = state::done;
        break;
      case state::done:
      case state::failed:
        return state_ = state::failed, false;
    }
  }
  return true;
}

bool chunk_framing::feed(const buffer_chain& in, std::size_t from, std::size_t n) noexcept {
  bool ok = true;
  in.for_each_piece(
      [&](std::string_view piece) {
        const std::size_t k = std::min(n, piece.size());
        ok = feed(piece.substr(0, k));
        n -= k;
        return ok && n != 0;
      },
      from);
  return ok && n == 0;
}

}  // namespace sluice::http::grammar
