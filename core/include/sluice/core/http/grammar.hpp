#pragma once
// RFC 9110/9112 grammar checks that sluice applies on top of libhttp-parser.
//
// Debian builds libhttp-parser without HTTP_PARSER_STRICT: it lets through
// field names with spaces, obs-fold lines, bare CRs in the status line, any
// two bytes where CRLF must follow chunk data, bare LFs in chunk extensions,
// and control bytes in request targets. Each is a place where two parsers
// (ours and the next hop's) can disagree on where a message ends, so every
// head and every piece of chunk framing that libhttp-parser accepted is
// checked again here, strictly, before it is acted on. The parsers use it;
// proxies use it for what they write from a parsed message (Host, target).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"

namespace sluice::http::grammar {

// A field value without the optional whitespace around it (RFC 9110 5.5).
[[nodiscard]] inline std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// RFC 9110 5.6.2: tchar.
[[nodiscard]] bool is_tchar(char c) noexcept;
// token = 1*tchar.
[[nodiscard]] bool is_token(std::string_view s) noexcept;

// The field lines of a head, from the first field line to the end of the
// head (the empty line included). Each line: token ":" OWS value OWS, value
// bytes VCHAR, obs-text, SP or HTAB; lines end in CRLF (or a lone LF, which
// RFC 9112 2.2 lets a recipient accept); a CR anywhere else, a line that
// starts with whitespace (obs-fold) or a space before the colon is an error.
// Returns nullptr when well-formed, else what is wrong.
[[nodiscard]] const char* check_field_lines(std::string_view lines) noexcept;

// The first line of `head` up to and including its LF; empty when there is
// no LF.
[[nodiscard]] inline std::string_view first_line(std::string_view head) noexcept {
  const std::size_t lf = head.find('\n');
  return lf == std::string_view::npos ? std::string_view() : head.substr(0, lf + 1);
}

// A request target as it may be forwarded: 1*( VCHAR ), no controls, no
// spaces, no bytes above 0x7E (RFC 9112 3.2 and RFC 3986).
[[nodiscard]] bool valid_target(std::string_view target) noexcept;

// A Host field value (RFC 9110 7.2): uri-host [ ":" port ], uri-host being a
// reg-name (unreserved, pct-encoded, sub-delims) or an IP-literal in
// brackets. Empty is refused: every route and every upstream needs a name.
[[nodiscard]] bool valid_host(std::string_view host) noexcept;

// The authority of an absolute-form target ("http://host:port/path" ->
// "host:port"), and the origin-form rest ("/path", "/" when absent).
struct absolute_form {
  std::string_view authority;  // "host:port", userinfo dropped; not checked here (see valid_host)
  std::string_view origin;  // path and query; empty means "/"
};
// Fills `out` and returns true when `target` is absolute-form (a scheme,
// then "://").
[[nodiscard]] bool split_absolute_form(std::string_view target, absolute_form& out) noexcept;

// RFC 9112 7.1 chunk framing, checked byte by byte: everything of a chunked
// body that is not chunk data (size lines, extensions, the CRLF after each
// chunk's data, the last chunk, trailer lines, the final CRLF) is fed here in
// order. feed() returns false at the first byte that breaks the grammar;
// done() says whether the framing ended with the final CRLF.
class chunk_framing {
 public:
  // Starts over, for the next chunked body.
  void reset() noexcept { state_ = state::size_start; last_ = false; }
  // Checks the next bytes of framing, in order; false at the first byte that
  // breaks the grammar (then the body is to be refused).
  [[nodiscard]] bool feed(std::string_view framing) noexcept;
  // The `n` bytes of `in` at offset `from`.
  [[nodiscard]] bool feed(const buffer_chain& in, std::size_t from, std::size_t n) noexcept;
  // The framing ended with the final CRLF: the body is complete.
  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }

 private:
  enum class state : std::uint8_t {
    size_start,   // the first hex digit of a chunk size
    size,         // more hex digits, BWS, ';' or CR
    size_bws,     // whitespace after the size: only ';' may follow
    ext,          // chunk extensions up to CR
    size_lf,      // the LF of the size line
    data_cr,      // the CR after a chunk's data
    data_lf,      // and its LF
    trailer_start,// a trailer line or the final CR
    trailer,      // inside a trailer line
    trailer_lf,   // the LF of a trailer line
    final_lf,     // the LF of the final CRLF
    done,
    failed,
  };
  state state_ = state::size_start;
  bool last_ = false;  // the size line read so far is of the last chunk (size 0)
};

}  // namespace sluice::http::grammar
