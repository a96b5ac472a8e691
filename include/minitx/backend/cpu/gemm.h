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
#include <memory>

namespace minitx::cpu {

enum class Trans { no, yes };

inline constexpr std::size_t kGemmMr = 6, kGemmNr = 16, kGemmKc = 256;

// The instruction set of the micro-kernel: AVX-512 (6×32 tiles) where the CPU has it, else AVX2
// (6×16). Both give the same bits: every element is the same sequence of FMAs and stores, and
// the rest of the binary stays at the fixed ISA level. Tests and benchmarks may pin one.
enum class GemmIsa { avx2, avx512 };
GemmIsa gemm_isa();
bool cpu_has_avx512();
void set_gemm_isa(GemmIsa isa);  // avx512 on a CPU without it is an error
const char* gemm_isa_name(GemmIsa isa);

// beta == 0 overwrites C without reading it (C may hold garbage or NaN).
void sgemm(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);

// op(B) of a product with fixed K×N weights, packed once into the kGemmKc × kGemmNr panels
// that sgemm would otherwise rebuild on every call. Inference multiplies the same weights by
// many prompts; at 128 rows of A, repacking B was about a quarter of a product's time.
class PackedB {
 public:
  PackedB(Trans trans_b, std::size_t k, std::size_t n, const float* b, std::size_t ldb);

  std::size_t k() const { return k_; }
  std::size_t n() const { return n_; }

 private:
  friend void sgemm_packed(Trans, std::size_t, float, const float*, std::size_t, const PackedB&, float, float*,
                           std::size_t, const float*);
  struct Free {
    void operator()(float* p) const;
  };
  std::size_t k_, n_;
  std::unique_ptr<float, Free> data_;  // kc × kGemmNr panels, every k-block in order
};

// C (M×N) = alpha · op(A) · B + beta · C, with B packed: bit for bit what sgemm computes from
// the unpacked B. With a bias (N floats, and beta must be 0) C = alpha · op(A) · B + bias,
// bit for bit sgemm with C preset to the bias and beta = 1, without a separate pass over C.
// One parallel region per call: threads own output tiles across all k-blocks.
void sgemm_packed(Trans trans_a, std::size_t m, float alpha, const float* a, std::size_t lda, const PackedB& b,
                  float beta, float* c, std::size_t ldc, const float* bias = nullptr);

// The plain triple loop in double precision, for tests and the benchmark's check.
void sgemm_reference(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                     const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                     std::size_t ldc);

}  // namespace minitx::cpu
