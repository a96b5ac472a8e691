// The 6×32 AVX-512 micro-kernel: twice the columns of the AVX2 kernel per instruction, and the
// same bits. Each element of C is still one FMA per k in order from zero, then the same
// multiply-and-add store (FMA and the store's operations are correctly rounded, so the width of
// the register holding an element cannot change its value). Compiled for AVX-512F by a target
// attribute rather than a flag, so the rest of the binary stays at the fixed ISA level; only
// called after the CPU has been asked (gemm_kernel.cpp).
#include <immintrin.h>

#include "gemm_kernel.h"

namespace minitx::cpu::detail {
namespace {

__attribute__((target("avx512f"))) inline __m512 combine512(__m512 acc, const float* old, const TileStore& s,
                                                             __m512 alpha, __m512 beta) {
  if (!s.first) return _mm512_add_ps(_mm512_loadu_ps(old), _mm512_mul_ps(alpha, acc));
  if (s.beta == 0.0f) return _mm512_mul_ps(alpha, acc);
  return _mm512_add_ps(_mm512_mul_ps(alpha, acc), _mm512_mul_ps(beta, _mm512_loadu_ps(old)));
}

}  // namespace

__attribute__((target("avx512f"))) void micro_kernel_6x32_avx512(std::size_t kc, const float* a, std::size_t a_row,
                                                                   std::size_t a_col, const float* b0,
                                                                   const float* b1, float* c, std::size_t ldc,
                                                                   std::size_t rows, std::size_t cols,
                                                                   TileStore store) {
  const float* a0 = a;
  const float* a3 = a + 3 * a_row;
  const std::size_t r = a_row;
  // Twelve accumulators: six rows × two 16-wide panels.
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p) {
    const __m512 x0 = _mm512_load_ps(b0 + p * 16);
    const __m512 x1 = _mm512_load_ps(b1 + p * 16);
    __m512 y = _mm512_set1_ps(*a0);
    c00 = _mm512_fmadd_ps(y, x0, c00);
    c01 = _mm512_fmadd_ps(y, x1, c01);
    y = _mm512_set1_ps(a0[r]);
    c10 = _mm512_fmadd_ps(y, x0, c10);
    c11 = _mm512_fmadd_ps(y, x1, c11);
    y = _mm512_set1_ps(a0[2 * r]);
    c20 = _mm512_fmadd_ps(y, x0, c20);
    c21 = _mm512_fmadd_ps(y, x1, c21);
    y = _mm512_set1_ps(*a3);
    c30 = _mm512_fmadd_ps(y, x0, c30);
    c31 = _mm512_fmadd_ps(y, x1, c31);
    y = _mm512_set1_ps(a3[r]);
    c40 = _mm512_fmadd_ps(y, x0, c40);
    c41 = _mm512_fmadd_ps(y, x1, c41);
    y = _mm512_set1_ps(a3[2 * r]);
    c50 = _mm512_fmadd_ps(y, x0, c50);
    c51 = _mm512_fmadd_ps(y, x1, c51);
    a0 += a_col;
    a3 += a_col;
  }
  const __m512 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m512 alpha = _mm512_set1_ps(store.alpha), beta = _mm512_set1_ps(store.beta);
  if (rows == 6 && cols == 32) {
    for (std::size_t i = 0; i < 6; ++i) {
      float* row = c + i * ldc;
      _mm512_storeu_ps(row, combine512(acc[i][0], row, store, alpha, beta));
      _mm512_storeu_ps(row + 16, combine512(acc[i][1], row + 16, store, alpha, beta));
    }
    return;
  }
  alignas(64) float tile[6][32];
  for (std::size_t i = 0; i < 6; ++i) {
    _mm512_store_ps(tile[i], acc[i][0]);
    _mm512_store_ps(tile[i] + 16, acc[i][1]);
  }
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) combine_scalar(tile[i][j], c[i * ldc + j], store);
}

}  // namespace minitx::cpu::detail
