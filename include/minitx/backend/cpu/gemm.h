// Single-precision matrix multiply on the CPU, row-major:
//   C (M×N) = alpha · op(A) (M×K) · op(B) (K×N) + beta · C
// op(A) is A or Aᵀ (A stored K×M); op(B) is B or Bᵀ (B stored N×K).
//
// Cache-blocked (BLIS-style loops, packed panels) with a 6×16 AVX2/FMA register tile. Every
// element of C is computed by the same sequence of operations whatever the thread count, the
// element's position in a tile, or the sizes M and N: the k-loop runs in fixed blocks of
// kGemmKc, each block summed from k = 0 upward with one FMA per k, and blocks added in order.
// So a row of C depends only on its row of op(A) and on op(B) (batch-size independence), and
// threads (split over output tiles) never change a bit.
#pragma once
#include <cstddef>

namespace minitx::cpu {

enum class Trans { no, yes };

inline constexpr std::size_t kGemmMr = 6, kGemmNr = 16, kGemmKc = 256;

// beta == 0 overwrites C without reading it (C may hold garbage or NaN).
void sgemm(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);

// The plain triple loop in double precision, for tests and the benchmark's check.
void sgemm_reference(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                     const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                     std::size_t ldc);

}  // namespace minitx::cpu
