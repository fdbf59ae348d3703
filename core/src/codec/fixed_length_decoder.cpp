#include "sluice/core/codec/fixed_length_decoder.hpp"

namespace sluice::codec {

result<fixed_length_decoder> fixed_length_decoder::make(const options& opts) {
  if (opts.frame_length == 0) return error{"a fixed frame length must be at least 1 byte", {}};
  return fixed_length_decoder(opts);
}

}  // namespace sluice::codec
