// AVX2 quantization of activations to q8_0; writes exactly the bytes of quantize_row_q8_0_ref
// (same scale function, same x * (1 / d) products, same ties-to-even rounding).
#if defined(__AVX2__)
#include <immintrin.h>

#include "minitx/core/error.h"
#include "minitx/quant/quantize.h"
#include "scale.h"

namespace minitx::quant {

namespace {

float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

}  // namespace

void quantize_row_q8_0_avx2(const float* x, block_q8_0* y, std::size_t n) {
  MINITX_CHECK(n % QK == 0, "quantize_row_q8_0: {} values is not a whole number of {}-value blocks", n, QK);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  // packs work within 128-bit lanes; this puts the four groups of 8 back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (std::size_t b = 0; b < n / QK; ++b, x += QK) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    __m256 amax = _mm256_andnot_ps(sign_bit, v[0]);
    for (int k = 1; k < 4; ++k) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[k]));
    y[b].d = detail::scale_q8_0(horizontal_max(amax));
    const float d = fp16_to_fp32(y[b].d);
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    }
    const __m256i q16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), q8);
  }
}

}  // namespace minitx::quant
#endif
