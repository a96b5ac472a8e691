#include <algorithm>
#include <cmath>

#include "minitx/core/error.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/quantize.h"
#include "scale.h"

namespace minitx::quant {

namespace {

void check_length(std::size_t n, const char* what) {
  MINITX_CHECK(n % QK == 0, "{}: {} values is not a whole number of {}-value blocks", what, n, QK);
}

// Round to nearest, ties to even: std::nearbyint in the default rounding mode, which is what
// _mm256_round_ps(_MM_FROUND_TO_NEAREST_INT) does.
int round_clamped(float value, int lo, int hi) {
  const float r = std::nearbyint(value);
  return static_cast<int>(std::clamp(r, static_cast<float>(lo), static_cast<float>(hi)));
}

}  // namespace

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, std::size_t n) {
  check_length(n, "quantize_row_q8_0");
  for (std::size_t b = 0; b < n / QK; ++b, x += QK) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < QK; ++i) amax = std::max(amax, std::fabs(x[i]));
    y[b].d = detail::scale_q8_0(amax);
    const float d = fp16_to_fp32(y[b].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (std::size_t i = 0; i < QK; ++i) y[b].qs[i] = static_cast<std::int8_t>(round_clamped(x[i] * id, -127, 127));
  }
}

void dequantize_row_q8_0_ref(const block_q8_0* x, float* y, std::size_t n) {
  check_length(n, "dequantize_row_q8_0");
  for (std::size_t b = 0; b < n / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (std::size_t i = 0; i < QK; ++i) *y++ = static_cast<float>(x[b].qs[i]) * d;
  }
}

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, std::size_t n) {
  check_length(n, "quantize_row_q4_0");
  for (std::size_t b = 0; b < n / QK; ++b, x += QK) {
    // m: the first value of largest magnitude; it maps to -8. `same` and `opposite` are the
    // largest magnitudes on m's side of zero and on the other side, which must stay within
    // -8.5 and +7.5 steps.
    float m = 0.0f;
    for (std::size_t i = 0; i < QK; ++i)
      if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
    const float same = std::fabs(m);
    float opposite = 0.0f;
    for (std::size_t i = 0; i < QK; ++i)
      if ((x[i] < 0.0f) != (m < 0.0f)) opposite = std::max(opposite, std::fabs(x[i]));
    const std::uint16_t magnitude = detail::block_scale(
        std::max(same / 8.0f, opposite / 7.5f), [&](float d) { return d * 8.5f >= same && d * 7.5f >= opposite; });
    // The sign goes into d so that m's side reaches -8.
    y[b].d = static_cast<std::uint16_t>(m > 0.0f ? magnitude | 0x8000 : magnitude);
    const float d = fp16_to_fp32(y[b].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (std::size_t i = 0; i < QK; ++i) q4_0_set(y[b], i, round_clamped(x[i] * id, -8, 7));
  }
}

void dequantize_row_q4_0_ref(const block_q4_0* x, float* y, std::size_t n) {
  check_length(n, "dequantize_row_q4_0");
  for (std::size_t b = 0; b < n / QK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (std::size_t i = 0; i < QK; ++i) *y++ = static_cast<float>(q4_0_get(x[b], i)) * d;
  }
}

}  // namespace minitx::quant
