#include <cstdint>

#include "minitx/core/error.h"
#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"

namespace minitx::quant {

float vec_dot_q8_0_q8_0_ref(std::size_t n, const block_q8_0* x, const block_q8_0* y) {
  MINITX_CHECK(n % QK == 0, "vec_dot_q8_0_q8_0: {} values is not a whole number of blocks", n);
  float sum = 0.0f;
  for (std::size_t b = 0; b < n / QK; ++b) {
    std::int32_t s = 0;  // at most 32 * 128 * 127 in magnitude: exact, and exact as a float too
    for (std::size_t i = 0; i < QK; ++i) s += x[b].qs[i] * y[b].qs[i];
    sum += (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) * static_cast<float>(s);
  }
  return sum;
}

float vec_dot_q4_0_q8_0_ref(std::size_t n, const block_q4_0* x, const block_q8_0* y) {
  MINITX_CHECK(n % QK == 0, "vec_dot_q4_0_q8_0: {} values is not a whole number of blocks", n);
  float sum = 0.0f;
  for (std::size_t b = 0; b < n / QK; ++b) {
    std::int32_t s = 0;
    for (std::size_t i = 0; i < QK; ++i) s += q4_0_get(x[b], i) * y[b].qs[i];
    sum += (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) * static_cast<float>(s);
  }
  return sum;
}

float vec_dot_f32_ref(std::size_t n, const float* x, const float* y) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

}  // namespace minitx::quant
