// Dot products of a quantized weight row with a q8_0 activation row: per block an exact integer
// sum s_k = Σ_i qx_i·qy_i, then Σ_k D_k·s_k in fp32 with D_k = fp32(dx_k·dy_k). `n` counts
// values (a multiple of QK).
//
// The *_ref functions define the result: D_k·s_k rounded and added left to right. The fast
// versions (chosen in dispatch.cpp) compute every s_k exactly too, then add D_k·s_k by FMA in
// eight lanes (block k in lane k mod 8) with a scalar tail for the last n/QK mod 8 blocks, so
// their fp32 total differs from the reference's by rounding only; test_quant_formats.cpp derives
// the bound. They take the activation row as a Q8Row, which carries per block what every weight
// row would otherwise recompute: the scale widened to fp32 and the sum of the 32 integers
// (q4_0 multiplies the unsigned nibbles and subtracts 8·Σqy, instead of sign juggling).
//
// Activations must lie in [-127, 127] (quantize_row_q8_0 guarantees it): the q8_0 kernel moves
// the weight's sign onto the activation, and -(-128) does not fit in an int8.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/quant/block.h"

namespace minitx::quant {

struct Q8Row {
  const block_q8_0* blocks = nullptr;
  const float* scales = nullptr;       // scales[k] = fp16_to_fp32(blocks[k].d)
  const std::int32_t* sums = nullptr;  // sums[k] = Σ_i blocks[k].qs[i]
};

// T activation rows of C values quantized to q8_0, with their Q8Rows.
class Q8Activations {
 public:
  // Quantizes inp (T rows of C values, C a multiple of QK); rows in parallel when T > 1.
  void quantize(const float* inp, std::size_t T, std::size_t C);
  // Takes rows already in q8_0 (tests; files from elsewhere).
  void assign(const block_q8_0* blocks, std::size_t T, std::size_t C);
  Q8Row row(std::size_t t) const {
    const std::size_t at = t * (cols_ / QK);
    return {blocks_.data() + at, scales_.data() + at, sums_.data() + at};
  }
  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }

 private:
  void describe(std::size_t begin, std::size_t end);  // scales and sums of rows [begin, end)
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<block_q8_0> blocks_;
  std::vector<float> scales_;
  std::vector<std::int32_t> sums_;
};

float vec_dot_q8_0_q8_0_ref(std::size_t n, const block_q8_0* x, const block_q8_0* y);
float vec_dot_q4_0_q8_0_ref(std::size_t n, const block_q4_0* x, const block_q8_0* y);
float vec_dot_f32_ref(std::size_t n, const float* x, const float* y);

float vec_dot_q8_0_q8_0(std::size_t n, const block_q8_0* x, const Q8Row& y);
float vec_dot_q4_0_q8_0(std::size_t n, const block_q4_0* x, const Q8Row& y);
// fp32 weights: the baseline the quantized kernels are measured against.
float vec_dot_f32(std::size_t n, const float* x, const float* y);

// Four weight rows at once, x + r·stride blocks for r < 4: out[r] is exactly what vec_dot gives
// for that row (same operations in the same order), with the per-row overhead shared.
void vec_dot4_q8_0_q8_0(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out);
void vec_dot4_q4_0_q8_0(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out);

#if defined(__AVX2__)
float vec_dot_q8_0_q8_0_avx2(std::size_t n, const block_q8_0* x, const Q8Row& y);
float vec_dot_q4_0_q8_0_avx2(std::size_t n, const block_q4_0* x, const Q8Row& y);
float vec_dot_f32_avx2(std::size_t n, const float* x, const float* y);
void vec_dot4_q8_0_q8_0_avx2(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out);
void vec_dot4_q4_0_q8_0_avx2(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out);

// AVX-512 VNNI twins of the AVX2 kernels: the same bits (only the exact integer sums are
// computed differently). Call them only where cpu_has_avx512_vnni().
bool cpu_has_avx512_vnni();
float vec_dot_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, const Q8Row& y);
float vec_dot_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, const Q8Row& y);
void vec_dot4_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out);
void vec_dot4_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out);
// `rows` rows (x + r·stride) against y: out[r] is what vec_dot4 / vec_dot give for row r.
void vec_dotN_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride, std::size_t rows,
                             const Q8Row& y, float* out);
void vec_dotN_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride, std::size_t rows,
                             const Q8Row& y, float* out);
// Four rows against every row of y: out[4t + r] is what vec_dot4 gives for row r and y.row(t),
// with each weight block rearranged once for all the tokens. `slices` is what prepare_tokens_vnni
// made of y (once per product; it returns the start, aligned, within `buffer`).
const std::byte* prepare_tokens_vnni(const Q8Activations& y, std::vector<std::byte>& buffer);
void vec_dot4xT_q8_0_q8_0_vnni(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Activations& y,
                               const std::byte* slices, float* out);
void vec_dot4xT_q4_0_q8_0_vnni(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Activations& y,
                               const std::byte* slices, float* out);
#endif

// The quantized kernels of one product, chosen by dot_kernels() on the calling thread and handed
// to its workers: the choice reads cpu::gemm_isa() (MINITX_GEMM_ISA), which may throw, and must
// not change halfway through a product. The VNNI kernels where gemm_isa() is avx512 and the CPU
// has them, else the AVX2 ones; the results are the same either way. vec_dot_* and vec_dot4_*
// above call dot_kernels() themselves.
struct DotKernels {
  const char* name;  // "vnni", "avx2" or "reference", for tables and `minitx info`
  float (*q8_0)(std::size_t n, const block_q8_0* x, const Q8Row& y);
  float (*q4_0)(std::size_t n, const block_q4_0* x, const Q8Row& y);
  void (*q8_0_rows4)(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out);
  void (*q4_0_rows4)(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out);
  // Many rows against one token: vec_dotN_*, or null (the caller then takes four at a time).
  void (*q8_0_rowsN)(std::size_t n, const block_q8_0* x, std::size_t stride, std::size_t rows, const Q8Row& y,
                     float* out);
  void (*q4_0_rowsN)(std::size_t n, const block_q4_0* x, std::size_t stride, std::size_t rows, const Q8Row& y,
                     float* out);
  // Prompts: prepare_tokens_vnni and vec_dot4xT_*, or null where the set has none (the caller
  // then loops over the tokens).
  const std::byte* (*prepare_tokens)(const Q8Activations& y, std::vector<std::byte>& buffer);
  void (*q8_0_rows4xT)(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Activations& y,
                       const std::byte* slices, float* out);
  void (*q4_0_rows4xT)(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Activations& y,
                       const std::byte* slices, float* out);
};
const DotKernels& dot_kernels();

}  // namespace minitx::quant
