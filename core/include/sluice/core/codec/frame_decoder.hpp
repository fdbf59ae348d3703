#pragma once
// The part every decoder shares: given where the next frame lies in the
// input (Decoder::locate), hand it out either as a buffer chain of its own or
// as one contiguous view, and consume its bytes.
//
//   input:  [ head | body ........ | tail ][ next frame ...
//             skip   handed out      skip
//
// `head` is what the decoder strips in front (a length header), `tail` what
// it strips behind (a line ending, a delimiter).
//
// A decoder belongs to one connection and remembers how far it has scanned,
// so it never looks at the same bytes twice while a frame trickles in: it
// owns the front of that input chain, and nothing else may consume from it
// between calls (call reset() if something did). Owner core only.

#include <cstddef>
#include <string_view>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/codec/frame_status.hpp"

namespace sluice::codec {

// Where the next frame lies, counted from the first unconsumed input byte.
struct frame_bounds {
  frame_status status = frame_status::need_more;  // frame: the bounds below hold; otherwise why there is no frame
  std::size_t head = 0;  // bytes skipped before the frame
  std::size_t body = 0;  // bytes handed out
  std::size_t tail = 0;  // bytes skipped after the frame
};

// The decode() half of every decoder, by CRTP: Decoder derives from
// frame_decoder<Decoder> and provides `frame_bounds locate(const
// buffer_chain&)` and `void reset()`. One per connection; owner core only.
template <class Decoder>
class frame_decoder {
 public:
  // Moves the next frame's bytes from `in` into `frame` (whose previous
  // content is dropped) without copying: whole segments move, a segment cut
  // at a frame boundary is shared by both chains. The frame chain may be
  // kept, sent (connection::send) or appended elsewhere.
  // After an error the input is left as it was or partly consumed: the
  // caller closes the connection (codec::reject).
  [[nodiscard]] frame_status decode(buffer_chain& in, buffer_chain& frame) noexcept {
    const frame_bounds b = self().locate(in);
    if (b.status != frame_status::frame) return b.status;
    self().reset();
    frame.clear();
    (void)in.skip(b.head);
    if (b.body != 0 && !in.take(b.body, frame)) return frame_status::no_buffer;
    (void)in.skip(b.tail);
    return frame_status::frame;
  }

  // Consumes the next frame and points `frame` at its bytes as one
  // contiguous view: into the segment that holds it, or, for a frame that
  // spans segments, into one copy in the pool's scratch arena. The view
  // stays valid until the handler returns (or, outside a handler, until
  // in.release()).
  [[nodiscard]] frame_status decode(buffer_chain& in, std::string_view& frame) noexcept {
    const frame_bounds b = self().locate(in);
    if (b.status != frame_status::frame) return b.status;
    self().reset();
    (void)in.skip(b.head);
    auto v = in.next(b.body);
    if (!v) return frame_status::no_buffer;
    (void)in.skip(b.tail);
    frame = *v;
    return frame_status::frame;
  }

 private:
  Decoder& self() noexcept { return static_cast<Decoder&>(*this); }
};

}  // namespace sluice::codec
