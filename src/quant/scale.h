// The fp16 scale of one block, shared by the reference and the AVX2 quantizers so that both
// store the same bits.
#pragma once
#include <cstdint>

#include "minitx/quant/fp16.h"

namespace minitx::quant::detail {

// `nominal` rounded to fp16, then stepped up one fp16 value at a time until `covers(d)` holds,
// where covers says every value of the block stays within half a step of the grid. Rounding to
// nearest rarely goes down by enough to matter (only for subnormal scales), so this loop
// normally runs zero times. A nominal scale beyond fp16's range saturates.
template <class Covers>
inline std::uint16_t block_scale(float nominal, Covers covers) {
  if (!(nominal < 65504.0f)) return kFp16MaxFinite;  // also catches NaN
  std::uint16_t bits = fp32_to_fp16(nominal);
  while (bits < kFp16MaxFinite && !covers(fp16_to_fp32(bits))) ++bits;
  return bits;
}

// q8_0: values up to amax must round to at most 127 steps.
inline std::uint16_t scale_q8_0(float amax) {
  return block_scale(amax / 127.0f, [amax](float d) { return d * 127.5f >= amax; });
}

}  // namespace minitx::quant::detail
