// libFuzzer target: line_decoder with fuzzed limits and stripping.
#include "decoder_harness.hpp"
#include "sluice/core/codec/line_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  fuzz::input in(data, size);
  codec::line_decoder::options o;
  o.max_length = in.byte();
  o.strip_ending = (in.byte() & 1) != 0;
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  const std::string_view stream = in.rest();
  fuzz::check_decoder(codec::line_decoder(o), stream, seed, [&](const std::string& f) {
    if (o.strip_ending) return f.size() <= o.max_length && f.find('\n') == std::string::npos;
    const std::size_t lf = f.find('\n');
    return f.size() <= o.max_length + 2 && lf == f.size() - 1;
  });
  return 0;
}
