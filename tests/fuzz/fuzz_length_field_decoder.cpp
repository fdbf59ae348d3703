// libFuzzer target: length_field_decoder with every option fuzzed (offset,
// size, byte order, adjustment of either sign, strip, maximum).
#include "decoder_harness.hpp"
#include "sluice/core/codec/length_field_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  fuzz::input in(data, size);
  codec::length_field_decoder::options o;
  o.field_offset = in.byte() % 8;
  static constexpr unsigned sizes[] = {1, 2, 4, 8};
  o.field_size = sizes[in.byte() % 4];
  o.order = (in.byte() & 1) != 0 ? codec::byte_order::little : codec::byte_order::big;
  o.length_adjustment = static_cast<std::int64_t>(in.number(8));
  if ((in.byte() & 3) != 0) o.length_adjustment %= 64;  // mostly small, sometimes extreme
  o.strip = in.byte() % 16;
  o.max_frame_length = in.number(2);
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  auto d = codec::length_field_decoder::make(o);
  if (!d.ok()) return 0;  // options that make() refuses
  fuzz::check_decoder(*d, in.rest(), seed,
                      [&](const std::string& f) { return f.size() + o.strip <= o.max_frame_length; });
  return 0;
}
