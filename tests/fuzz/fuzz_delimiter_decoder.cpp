// libFuzzer target: delimiter_decoder with fuzzed delimiter sets (from a
// small alphabet, so that delimiters overlap and occur often) and limits.
#include <array>

#include "decoder_harness.hpp"
#include "sluice/core/codec/delimiter_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  fuzz::input in(data, size);
  std::array<std::string, 8> storage;
  std::array<std::string_view, 8> delims;
  const std::size_t count = 1 + in.byte() % 4;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t len = 1 + in.byte() % 4;
    for (std::size_t k = 0; k < len; ++k) storage[i] += static_cast<char>('a' + in.byte() % 3);
    delims[i] = storage[i];
  }
  codec::delimiter_decoder::options o;
  o.max_length = in.byte();
  o.strip_delimiter = (in.byte() & 1) != 0;
  const auto seed = static_cast<std::uint32_t>(in.number(4));
  auto d = codec::delimiter_decoder::make(std::span<const std::string_view>(delims.data(), count), o);
  SLUICE_FUZZ_CHECK(d.ok());
  fuzz::check_decoder(*d, in.rest(), seed, [&](const std::string& f) {
    // Stripped frames hold at most max_length bytes; kept ones end in a delimiter.
    if (o.strip_delimiter) return f.size() <= o.max_length;
    for (std::size_t i = 0; i < count; ++i) {
      if (f.size() >= delims[i].size() && f.compare(f.size() - delims[i].size(), delims[i].size(), delims[i]) == 0 &&
          f.size() - delims[i].size() <= o.max_length) {
        return true;
      }
    }
    return false;
  });
  return 0;
}
