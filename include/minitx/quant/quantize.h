// Quantizing rows of fp32 values into blocks and back. `n` counts values and must be a multiple
// of QK. The *_ref functions define the formats:
//
//   q8_0: d = amax / 127 rounded to fp16, q = round(x / d) in [-127, 127]
//   q4_0: m = the value of largest magnitude, d = -m / 8 rounded to fp16 (so m lands exactly on
//         -8, the end of the range with one more step), q = round(x / d) in [-8, 7]
//
// Rounding is to nearest, ties to even (what the AVX2 rounding instruction does, so the fast path
// matches bit for bit), and x / d is computed as x * (1 / d) in both. The stored fp16 scale is
// the one used to quantize, and it is widened by one fp16 step where rounding it down would push
// a value more than half a step off the grid; for q4_0 it also grows where a value of the sign
// opposite to m would fall beyond +7.5. Hence every value comes back within half a step:
// |x - dequantized(x)| <= |d| / 2 (up to the rounding of x * (1 / d); see the tests), for finite
// x of magnitude below 127 * 65504 (larger ones saturate at the largest fp16 scale).
#pragma once
#include <cstddef>

#include "minitx/quant/block.h"

namespace minitx::quant {

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, std::size_t n);
void dequantize_row_q8_0_ref(const block_q8_0* x, float* y, std::size_t n);
void quantize_row_q4_0_ref(const float* x, block_q4_0* y, std::size_t n);
void dequantize_row_q4_0_ref(const block_q4_0* x, float* y, std::size_t n);

// Activations are quantized on every matrix product, so q8_0 has a fast version, chosen in
// dispatch.cpp; it writes exactly the bytes of the reference. Weights are quantized once,
// offline, by the reference.
void quantize_row_q8_0(const float* x, block_q8_0* y, std::size_t n);
#if defined(__AVX2__)
void quantize_row_q8_0_avx2(const float* x, block_q8_0* y, std::size_t n);
#endif

}  // namespace minitx::quant
