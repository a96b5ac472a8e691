// AVX2 dot products, in groups of 8 blocks:
//   1. each block's 32 byte products become 8 int32 lanes: maddubs (unsigned x signed bytes to
//      pairwise int16, at most 2·128·127 < 32768, so never saturating) and madd with ones;
//   2. a tree of hadds turns the 8 blocks' lanes into one vector of their exact sums s_k;
//   3. one FMA adds D_k·s_k into lane k of the accumulator, D_k = dx_k·dy_k from 8 gathered
//      fp16 weight scales and the activation's widened scales.
// Blocks past the last whole group (n/QK mod 8 of them) are the scalar tail.
#if defined(__AVX2__)
#include <immintrin.h>

#include <type_traits>

#include "minitx/core/error.h"
#include "minitx/quant/dot.h"
#include "dot_lanes.h"

namespace minitx::quant {

namespace {

using detail::add_group;
using detail::add_tail;
using detail::horizontal_sum;
using detail::scales8;

// Lane k of the result is the sum of the 8 lanes of v[k].
inline __m256i sum_each(const __m256i v[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a = [lo halves of v0..v3 | hi halves of v0..v3], b likewise for v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// A weight block's 32 values as bytes: q8_0 as they are; q4_0 as its unsigned nibbles (0..15) in
// element order, from the 16 packed bytes put in both halves and the upper half shifted right by
// 4 to bring the high nibbles (elements 16..31) down.
inline __m256i unpack(const block_q8_0& x) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs)); }
inline __m256i unpack(const block_q4_0& x) {
  const __m256i packed = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.qs)));
  return _mm256_and_si256(_mm256_srlv_epi32(packed, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
}

// Σ over the 32 byte products of an unpacked weight block and an activation block, in 8 int32
// lanes. q8_0: the weight's sign moves onto the activation so that maddubs sees |x| unsigned.
// q4_0: the nibbles are unsigned already (Σ nibble·qy; see q4_0_correction).
template <class Block>
inline __m256i multiply(__m256i x, const block_q8_0& y) {
  const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs));
  if constexpr (std::is_same_v<Block, block_q8_0>)
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(qy, x)), _mm256_set1_epi16(1));
  else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, qy), _mm256_set1_epi16(1));
}

std::int32_t horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// q4_0 lanes multiply the unsigned nibbles, and Σ (nibble - 8)·qy = Σ nibble·qy - 8·Σqy: this is
// 8·Σqy of blocks b..b+7.
inline __m256i q4_0_correction(const Q8Row& y, std::size_t b) {
  return _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.sums + b)), 3);
}

template <class Block>
inline __m256i lanes(const Block& x, const block_q8_0& y) {
  return multiply<Block>(unpack(x), y);
}

// R weight rows (x, x + stride, ...) against one activation row. Each row's arithmetic is the
// same whatever R is, so the one-row and the four-row entry points give the same bits.
template <std::size_t R, class Block>
inline void dot_rows(std::size_t n, const Block* x, std::size_t stride, const Q8Row& y, float* out) {
  MINITX_CHECK(n % QK == 0, "vec_dot: {} values is not a whole number of {}-value blocks", n, QK);
  const std::size_t blocks = n / QK;
  __m256 acc[R];
  for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  std::size_t b = 0;
  for (; b + 8 <= blocks; b += 8) {
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r) {
      const Block* row = x + r * stride + b;
      __m256i block_lanes[8];
#pragma GCC unroll 8
      for (std::size_t k = 0; k < 8; ++k) block_lanes[k] = lanes(row[k], y.blocks[b + k]);
      __m256i s = sum_each(block_lanes);
      if constexpr (std::is_same_v<Block, block_q4_0>) s = _mm256_sub_epi32(s, q4_0_correction(y, b));
      acc[r] = add_group(acc[r], scales8(row), y, b, s);
    }
  }
  for (std::size_t r = 0; r < R; ++r) out[r] = horizontal_sum(acc[r]);
  for (; b < blocks; ++b)
    for (std::size_t r = 0; r < R; ++r) {
      const Block& block = x[r * stride + b];
      std::int32_t s = horizontal_sum(lanes(block, y.blocks[b]));
      if constexpr (std::is_same_v<Block, block_q4_0>) s -= 8 * y.sums[b];
      out[r] = add_tail(out[r], block.d, y, b, s);
    }
}

}  // namespace

float vec_dot_q8_0_q8_0_avx2(std::size_t n, const block_q8_0* x, const Q8Row& y) {
  float out;
  dot_rows<1>(n, x, 0, y, &out);
  return out;
}

float vec_dot_q4_0_q8_0_avx2(std::size_t n, const block_q4_0* x, const Q8Row& y) {
  float out;
  dot_rows<1>(n, x, 0, y, &out);
  return out;
}

void vec_dot4_q8_0_q8_0_avx2(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out) {
  dot_rows<4>(n, x, stride, y, out);
}

void vec_dot4_q4_0_q8_0_avx2(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out) {
  dot_rows<4>(n, x, stride, y, out);
}

// The fp32 baseline: four accumulators of 8 lanes, then 8 at a time, then a scalar tail.
float vec_dot_f32_avx2(std::size_t n, const float* x, const float* y) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc[0]);
  float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

}  // namespace minitx::quant
#endif
