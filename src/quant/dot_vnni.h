// The AVX-512 VNNI kernels' integer side (dot_vnni.cpp, dot_vnni_tokens.cpp): how a group of 8
// blocks is loaded and its exact sums s_k computed. vpdpbusd adds four unsigned×signed byte
// products into an int32 lane without the int16 step of maddubs, and a 512-bit register holds
// two blocks, so a group is 4 instructions and a shorter reduction tree (unpacks instead of
// hadds). The sums are exact whichever way they are computed, and the fp32 steps are
// dot_lanes.h's, as in dot_avx2.cpp, so every result is the AVX2 kernels' float.
//
// Everything here carries a target attribute rather than the files a flag, so the rest of the
// binary stays at the fixed ISA level; dispatch.cpp calls the kernels only where
// cpu_has_avx512_vnni().
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "dot_lanes.h"
#include "minitx/quant/dot.h"

#define MINITX_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// GCC 12's AVX-512 intrinsics start many results from _mm512_undefined_epi32(), a self-
// initialised variable that -Wmaybe-uninitialized reports once inlined; nothing here reads it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace minitx::quant::vnni {

using detail::add_tail;

// Register j of a group holds blocks j and j+4 (j < 4), as 16-byte quarters:
//   q4_0: [j 0..15 | j+4 0..15 | j 16..31 | j+4 16..31], the order in which one broadcast of each
//         block's packed bytes unpacks (low nibbles are elements 0..15, high ones 16..31);
//   q8_0: [j 0..31 | j+4 0..31], two plain loads.
// The activation is loaded in the weight's order; only the final fold depends on it.
template <class Block>
constexpr bool kInterleaved = std::is_same_v<Block, block_q4_0>;

MINITX_VNNI inline __m256i load32(const std::int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
MINITX_VNNI inline __m128i load16(const std::uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
MINITX_VNNI inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }

template <class Block>
MINITX_VNNI inline __m512i pair(const std::int8_t* a, const std::int8_t* b) {
  if constexpr (kInterleaved<Block>)
    return _mm512_permutex2var_epi64(_mm512_castsi256_si512(load32(a)), _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11),
                                     _mm512_castsi256_si512(load32(b)));
  else
    return _mm512_inserti64x4(_mm512_castsi256_si512(load32(a)), load32(b), 1);
}

// The activation of one group, and the term that makes the unsigned weight bytes signed again:
// q4_0 multiplies nibbles 0..15 (value + 8) and q8_0 bytes flipped to 0..255 (value + 128), so
// s_k = Σ unsigned·qy - offset·Σqy, exact in int32.
struct Group {
  __m512i y[4];
  __m256i offset;
};

template <class Block>
MINITX_VNNI inline Group activation(const Q8Row& y, std::size_t b) {
  Group g;
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) g.y[j] = pair<Block>(y.blocks[b + j].qs, y.blocks[b + j + 4].qs);
  const __m256i sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.sums + b));
  g.offset = _mm256_slli_epi32(sums, std::is_same_v<Block, block_q4_0> ? 3 : 7);
  return g;
}

// Weight blocks j and j+4 as unsigned bytes, in the layout above.
MINITX_VNNI inline __m512i weights(const block_q8_0* row, int j) {
  return _mm512_xor_si512(pair<block_q8_0>(row[j].qs, row[j + 4].qs), _mm512_set1_epi8(-128));
}
MINITX_VNNI inline __m512i weights(const block_q4_0* row, int j) {
  const __m512i both = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(load16(row[j].qs)), 0xF0F0, load16(row[j + 4].qs));
  return _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), _mm512_set1_epi8(0x0F));
}

// scales8's result (the same 8 fp16 values, widened exactly), from whole-register loads and one
// word permute per 128 bytes instead of eight scalar loads and shifts: the eight q4_0 scales lie
// in the group's first 128 bytes (18-byte blocks), the q8_0 ones in two such stretches.

MINITX_VNNI inline __m256 widened_scales(const block_q4_0* row) {
  const auto* p = reinterpret_cast<const char*>(row);
  // Words 0, 9, 18, ..., 63 of the two registers.
  const __m512i words = _mm512_setr_epi64(0x001B001200090000LL, 0x003F0036002D0024LL, 0, 0, 0, 0, 0, 0);
  return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(load64(p), words, load64(p + 64))));
}
MINITX_VNNI inline __m256 widened_scales(const block_q8_0* row) {
  const auto* p = reinterpret_cast<const char*>(row);
  // Words 0, 17, 34, 51 of the first 128 bytes (blocks 0..3), then 4, 21, 38, 55 of the next.
  const __m512i first = _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, 0x0033002200110000LL);
  const __m512i second = _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0x0037002600150004LL, 0);
  const __m512i lo = _mm512_permutex2var_epi16(load64(p), first, load64(p + 64));
  const __m512i hi = _mm512_permutex2var_epi16(load64(p + 128), second, load64(p + 192));
  return _mm256_cvtph_ps(_mm_blend_epi16(_mm512_castsi512_si128(lo), _mm512_castsi512_si128(hi), 0xF0));
}

// Lane k of the result is s_{b+k}: the four registers' products summed within each 16-byte
// quarter (two unpack levels), then the two quarters of each block added.
template <class Block>
MINITX_VNNI inline __m256i block_sums(const Block* row, const Group& g) {
  __m512i p[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) p[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights(row, j), g.y[j]);
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
  const __m512i v = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
  // Quarter i of q: the i-th quarter sums of blocks 0..3 of the pairs, in lanes 0..3.
  __m512i q = _mm512_add_epi32(_mm512_unpacklo_epi64(u, v), _mm512_unpackhi_epi64(u, v));
  if constexpr (!kInterleaved<Block>) q = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), q);
  const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64(q, 1));
  return _mm256_sub_epi32(s, g.offset);
}

MINITX_VNNI inline std::int32_t sum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// One tail block's exact sum.
MINITX_VNNI inline std::int32_t block_sum(const block_q8_0& x, const block_q8_0& y, std::int32_t ysum) {
  const __m256i flipped = _mm256_xor_si256(load32(x.qs), _mm256_set1_epi8(-128));
  const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), flipped, load32(y.qs));
  return sum8(p) - 128 * ysum;
}
MINITX_VNNI inline std::int32_t block_sum(const block_q4_0& x, const block_q8_0& y, std::int32_t ysum) {
  const __m128i packed = load16(x.qs);
  const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
  const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles, load32(y.qs));
  return sum8(p) - 8 * ysum;
}

// The tail blocks of four rows, after their lane sums out[0..3], in dot_rows' order.
template <class Block>
MINITX_VNNI inline void add_tails(std::size_t b, std::size_t blocks, const Block* x, std::size_t stride, const Q8Row& y,
                                  float* out) {
  for (; b < blocks; ++b)
    for (std::size_t r = 0; r < 4; ++r) {
      const Block& block = x[r * stride + b];
      out[r] = add_tail(out[r], block.d, y, b, block_sum(block, y.blocks[b], y.sums[b]));
    }
}

}  // namespace minitx::quant::vnni
#endif
