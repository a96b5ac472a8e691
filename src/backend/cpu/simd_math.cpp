#include "simd_math.h"

#include <immintrin.h>

#include <algorithm>

namespace minitx::cpu::detail {
namespace {

// exp(x) = 2^n · e^r with n = round(x·log2 e) and |r| ≤ ln2/2; e^r by the degree-6 polynomial
// of Cephes' expf (relative error about 1e-7 over the range).
inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 underflow = _mm256_set1_ps(-87.0f);
  const __m256 tiny_mask = _mm256_cmp_ps(x, underflow, _CMP_LT_OQ);
  x = _mm256_min_ps(x, hi);
  x = _mm256_max_ps(x, underflow);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n through the exponent bits; n is in [-126, 128) after the clamps.
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(tiny_mask, result);
}

inline float lanes_sum(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace

float exp_shifted_sum(float* row, std::size_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), s));
    _mm256_storeu_ps(row + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (j < n) {
    alignas(32) float tail[8];
    const std::size_t rest = n - j;
    std::copy(row + j, row + n, tail);
    std::fill(tail + rest, tail + 8, shift - 1000.0f);  // exp of these is exactly 0
    const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(tail), s));
    _mm256_store_ps(tail, e);
    std::copy(tail, tail + rest, row + j);
    sum = _mm256_add_ps(sum, e);
  }
  return lanes_sum(sum);
}

void sigmoid_scaled(float* out, const float* in, std::size_t n, float scale) {
  const __m256 minus_scale = _mm256_set1_ps(-scale), one = _mm256_set1_ps(1.0f);
  auto eight = [&](__m256 x) { return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_mul_ps(minus_scale, x)))); };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, eight(_mm256_loadu_ps(in + i)));
  if (i < n) {
    alignas(32) float tail[8] = {};
    std::copy(in + i, in + n, tail);
    _mm256_store_ps(tail, eight(_mm256_load_ps(tail)));
    std::copy(tail, tail + (n - i), out + i);
  }
}

}  // namespace minitx::cpu::detail
