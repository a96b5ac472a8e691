#include "gemm_pack.h"

#include <immintrin.h>

#include <algorithm>

#include "minitx/backend/cpu/gemm.h"

namespace minitx::cpu::detail {
namespace {

constexpr std::size_t kMr = kGemmMr, kNr = kGemmNr;

// 8×8 transpose of rows r[0..8) in registers.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace

// op(A)[i0 .. i0+rows, k0 .. k0+kc) → panels of kMr rows, each stored k-major, zero-padded.
// Packing runs once per tile of rows and would cost as much as the arithmetic for N ≈ 256 if done
// one float at a time, so full panels of A go through 8×8 register transposes. `out` needs 8
// floats of slack at the end (each k writes 8 floats, of which the next k overwrites 2).
void pack_a(const Operand& a, std::size_t i0, std::size_t rows, std::size_t k0, std::size_t kc, float* out) {
  for (std::size_t p = 0; p < rows; p += kMr) {
    const std::size_t r = std::min(kMr, rows - p);
    float* panel = out + p * kc;
    std::size_t k = 0;
    if (a.trans && r == kMr) {
      for (; k < kc; ++k) {  // six contiguous floats per k: one 4-wide and one 2-wide move
        const float* src = a.data + (k0 + k) * a.ld + i0 + p;
        float* dst = panel + k * kMr;
        _mm_storeu_ps(dst, _mm_loadu_ps(src));
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4), _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(src + 4)));
      }
    } else if (!a.trans && r == kMr) {
      const float* row = a.data + (i0 + p) * a.ld + k0;
      for (; k + 8 <= kc; k += 8) {
        __m256 v[8];
        for (std::size_t i = 0; i < kMr; ++i) v[i] = _mm256_loadu_ps(row + i * a.ld + k);
        v[6] = v[7] = _mm256_setzero_ps();
        transpose8(v);
        for (std::size_t j = 0; j < 8; ++j) _mm256_storeu_ps(panel + (k + j) * kMr, v[j]);
      }
    }
    for (; k < kc; ++k)
      for (std::size_t i = 0; i < kMr; ++i) panel[k * kMr + i] = i < r ? a.at(i0 + p + i, k0 + k) : 0.0f;
  }
}

// op(B)[k0 .. k0+kc, j0 .. j0+cols) for one kNr-wide panel, stored k-major, zero-padded.
void pack_b_panel(const Operand& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t cols, float* panel) {
  if (!b.trans) {
    for (std::size_t k = 0; k < kc; ++k) {
      const float* src = b.data + (k0 + k) * b.ld + j0;
      float* dst = panel + k * kNr;
      if (cols == kNr) {
        _mm256_store_ps(dst, _mm256_loadu_ps(src));
        _mm256_store_ps(dst + 8, _mm256_loadu_ps(src + 8));
      } else {
        for (std::size_t j = 0; j < kNr; ++j) dst[j] = j < cols ? src[j] : 0.0f;
      }
    }
  } else {
    std::size_t k = 0;
    if (cols == kNr) {  // two 8×8 register transposes per 8 values of k
      for (; k + 8 <= kc; k += 8)
        for (std::size_t half = 0; half < kNr; half += 8) {
          __m256 v[8];
          for (std::size_t j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(b.data + (j0 + half + j) * b.ld + k0 + k);
          transpose8(v);
          for (std::size_t kk = 0; kk < 8; ++kk) _mm256_storeu_ps(panel + (k + kk) * kNr + half, v[kk]);
        }
    }
    for (; k < kc; ++k)
      for (std::size_t j = 0; j < kNr; ++j) panel[k * kNr + j] = j < cols ? b.data[(j0 + j) * b.ld + k0 + k] : 0.0f;
  }
}

}  // namespace minitx::cpu::detail
