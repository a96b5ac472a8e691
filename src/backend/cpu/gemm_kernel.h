// The 6×16 micro-kernel behind sgemm: private to src/backend/cpu.
#pragma once
#include <cstddef>

namespace minitx::cpu::detail {

// How the tile's sum reaches C. `first` is the first k-block: C = alpha·acc (+ beta·C when
// beta != 0); later blocks: C = C + alpha·acc.
struct TileStore {
  float alpha, beta;
  bool first;
};

// acc = Σ_k a(0..6, k) ⊗ b[k][0..16) with a(i, k) = a[i·a_row + k·a_col] (A is read in place
// whatever its layout; a packed panel has a_row = 1, a_col = 6) and b a packed kc×16 panel, then
// stored into the rows × cols corner of C (rows ≤ 6, cols ≤ 16). Edge tiles go through a local
// buffer and a scalar store that performs the very same operations, so edges give the same bits
// as interiors.
void micro_kernel_6x16(std::size_t kc, const float* a, std::size_t a_row, std::size_t a_col, const float* b,
                       float* c, std::size_t ldc, std::size_t rows, std::size_t cols, TileStore store);

// The same product for a 6×32 tile whose columns are two packed panels, b0 then b1 (cols ≤ 32),
// with AVX-512F. Same bits as two calls of micro_kernel_6x16; call only when the CPU has it.
void micro_kernel_6x32_avx512(std::size_t kc, const float* a, std::size_t a_row, std::size_t a_col, const float* b0,
                              const float* b1, float* c, std::size_t ldc, std::size_t rows, std::size_t cols,
                              TileStore store);

// The store of one element, shared by the kernels' edge paths.
void combine_scalar(float acc, float& out, const TileStore& s);

}  // namespace minitx::cpu::detail
