#pragma once
// What a decoder says after looking at a connection's input: a frame was
// handed out, more bytes are needed, or the input cannot be framed and the
// connection has to go (reject() closes it and counts why).

#include <cstdint>
#include <string_view>

namespace sluice {
class connection;
}

namespace sluice::codec {

// The outcome of a decoder's decode(): a frame, a wait for more input, or an
// error (is_error()) after which the connection is to be closed (reject()).
enum class frame_status : std::uint8_t {
  frame,       // a frame was handed out and its bytes consumed from the input
  need_more,   // no complete frame yet: wait for on_data and call decode again
  too_long,    // the frame would exceed its maximum (refused before it is buffered)
  bad_length,  // a length field that cannot describe a frame (negative after adjustment, shorter than what is stripped)
  no_buffer,   // a buffer descriptor or scratch memory could not be had
  input_full,  // the frame is not complete, yet the input already holds all the loop will buffer (see fit_input)
};

// too_long, bad_length, no_buffer or input_full: the input cannot be framed and
// the connection has to go.
[[nodiscard]] constexpr bool is_error(frame_status s) noexcept { return s >= frame_status::too_long; }

// A short description in plain words ("frame longer than its maximum"), for
// logs.
[[nodiscard]] constexpr std::string_view to_string(frame_status s) noexcept {
  switch (s) {
    case frame_status::frame: return "frame";
    case frame_status::need_more: return "need more input";
    case frame_status::too_long: return "frame longer than its maximum";
    case frame_status::bad_length: return "length field does not describe a frame";
    case frame_status::no_buffer: return "out of buffer memory";
    case frame_status::input_full: return "frame larger than the input limit";
  }
  return "unknown";
}

// What a decoder's need_more means on connection c: still need_more while c
// may read more, input_full once c's input holds as many bytes as its loop
// buffers (loop_options::max_input_bytes). Reading stops at that limit, so
// such a frame can never complete: the caller rejects it instead of waiting
// for ever. Any other status comes back unchanged. Owner core only.
//
//   auto st = codec::fit_input(c, decoder.decode(c.input(), frame));
[[nodiscard]] frame_status fit_input(connection& c, frame_status s) noexcept;

// Ends c after its decoder returned the error `s`: counts it in the loop's
// frames_rejected and closes c with close_reason::protocol_error
// (resource_limit for no_buffer and input_full). Pending output is still sent; input that
// arrives afterwards is discarded, so nothing more is buffered for c.
// Owner core only.
void reject(connection& c, frame_status s) noexcept;

}  // namespace sluice::codec
