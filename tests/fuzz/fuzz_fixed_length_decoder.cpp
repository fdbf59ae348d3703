// libFuzzer target: fixed_length_decoder with a fuzzed frame length.
#include "decoder_harness.hpp"
#include "sluice/core/codec/fixed_length_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  fuzz::input in(data, size);
  const std::size_t length = 1 + in.byte();
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  auto d = codec::fixed_length_decoder::make({.frame_length = length});
  SLUICE_FUZZ_CHECK(d.ok());
  const std::string_view stream = in.rest();
  fuzz::check_decoder(*d, stream, seed, [&](const std::string& f) { return f.size() == length; });
  return 0;
}
