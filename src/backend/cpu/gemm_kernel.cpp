#include "gemm_kernel.h"

#include <immintrin.h>

namespace minitx::cpu::detail {

// C is read only when its old value is used: with beta == 0 it may hold garbage.
void combine_scalar(float acc, float& out, const TileStore& s) {
  if (!s.first)
    out = out + s.alpha * acc;
  else if (s.beta == 0.0f)
    out = s.alpha * acc;
  else
    out = s.alpha * acc + s.beta * out;
}

namespace {

inline __m256 combine(__m256 acc, const float* old, const TileStore& s, __m256 alpha, __m256 beta) {
  if (!s.first) return _mm256_add_ps(_mm256_loadu_ps(old), _mm256_mul_ps(alpha, acc));
  if (s.beta == 0.0f) return _mm256_mul_ps(alpha, acc);
  return _mm256_add_ps(_mm256_mul_ps(alpha, acc), _mm256_mul_ps(beta, _mm256_loadu_ps(old)));
}

}  // namespace

void micro_kernel_6x16(std::size_t kc, const float* a, std::size_t a_row, std::size_t a_col, const float* b,
                       float* c, std::size_t ldc, std::size_t rows, std::size_t cols, TileStore store) {
  // Two base pointers and one stride address all six rows ([a0], [a0 + r], [a0 + 2r], [a3], ...).
  const float* a0 = a;
  const float* a3 = a + 3 * a_row;
  const std::size_t r = a_row;
  // Twelve accumulators, two B vectors and one broadcast: 15 of the 16 ymm registers.
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a0);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a0 + r);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a0 + 2 * r);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a3 + r);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a3 + 2 * r);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
    a0 += a_col;
    a3 += a_col;
    b += 16;
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256 alpha = _mm256_set1_ps(store.alpha), beta = _mm256_set1_ps(store.beta);
  if (rows == 6 && cols == 16) {
    for (std::size_t i = 0; i < 6; ++i) {
      float* row = c + i * ldc;
      _mm256_storeu_ps(row, combine(acc[i][0], row, store, alpha, beta));
      _mm256_storeu_ps(row + 8, combine(acc[i][1], row + 8, store, alpha, beta));
    }
    return;
  }
  alignas(32) float tile[6][16];
  for (std::size_t i = 0; i < 6; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) combine_scalar(tile[i][j], c[i * ldc + j], store);
}

}  // namespace minitx::cpu::detail
