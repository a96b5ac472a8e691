// The fp32 half of the quantized dot products, shared by every kernel that computes the exact
// integer block sums its own way (dot_avx2.cpp, dot_vnni.cpp). Keeping one copy is what makes
// the kernels bit-identical: the float operations, and their order, are written only here.
// These are plain x86-64-v3 inline functions, so the wider kernels inline them unchanged.
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>

#include <cstdint>

#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"

namespace minitx::quant::detail {

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The fp16 scales of 8 consecutive blocks, widened to fp32. Built in two general registers
// (written out, not looped: a loop here became read-modify-writes through the stack).
template <class Block>
inline __m256 scales8(const Block* x) {
  const auto d = [x](int k) { return static_cast<std::uint64_t>(x[k].d); };
  const std::uint64_t lo = d(0) | d(1) << 16 | d(2) << 32 | d(3) << 48;
  const std::uint64_t hi = d(4) | d(5) << 16 | d(6) << 32 | d(7) << 48;
  return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
}

// One group of 8 blocks: lane k gains D_k·s_k (D_k = dx_k·dy_k rounded, then one FMA).
// `wscales` are the weight scales of the group widened to fp32 (scales8), `s` the exact sums.
inline __m256 add_group(__m256 acc, __m256 wscales, const Q8Row& y, std::size_t b, __m256i s) {
  return _mm256_fmadd_ps(_mm256_mul_ps(wscales, _mm256_loadu_ps(y.scales + b)), _mm256_cvtepi32_ps(s), acc);
}

// One tail block (past the last whole group of 8), added to the finished lane sum.
inline float add_tail(float sum, std::uint16_t wscale, const Q8Row& y, std::size_t b, std::int32_t s) {
  return sum + (fp16_to_fp32(wscale) * y.scales[b]) * static_cast<float>(s);
}

}  // namespace minitx::quant::detail
#endif
