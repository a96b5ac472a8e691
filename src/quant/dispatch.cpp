// The one place where a kernel's fast version is chosen. The choice is fixed when the binary is
// built (the Makefile pins the ISA level), so one binary gives the same bits on every machine.
#include "minitx/quant/dot.h"
#include "minitx/quant/quantize.h"

namespace minitx::quant {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

void quantize_row_q8_0(const float* x, block_q8_0* y, std::size_t n) { quantize_row_q8_0_avx2(x, y, n); }
float vec_dot_q8_0_q8_0(std::size_t n, const block_q8_0* x, const Q8Row& y) { return vec_dot_q8_0_q8_0_avx2(n, x, y); }
float vec_dot_q4_0_q8_0(std::size_t n, const block_q4_0* x, const Q8Row& y) { return vec_dot_q4_0_q8_0_avx2(n, x, y); }
float vec_dot_f32(std::size_t n, const float* x, const float* y) { return vec_dot_f32_avx2(n, x, y); }
void vec_dot4_q8_0_q8_0(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out) {
  vec_dot4_q8_0_q8_0_avx2(n, x, stride, y, out);
}
void vec_dot4_q4_0_q8_0(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out) {
  vec_dot4_q4_0_q8_0_avx2(n, x, stride, y, out);
}

#else

void quantize_row_q8_0(const float* x, block_q8_0* y, std::size_t n) { quantize_row_q8_0_ref(x, y, n); }
float vec_dot_q8_0_q8_0(std::size_t n, const block_q8_0* x, const Q8Row& y) { return vec_dot_q8_0_q8_0_ref(n, x, y.blocks); }
float vec_dot_q4_0_q8_0(std::size_t n, const block_q4_0* x, const Q8Row& y) { return vec_dot_q4_0_q8_0_ref(n, x, y.blocks); }
float vec_dot_f32(std::size_t n, const float* x, const float* y) { return vec_dot_f32_ref(n, x, y); }
void vec_dot4_q8_0_q8_0(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out) {
  for (std::size_t r = 0; r < 4; ++r) out[r] = vec_dot_q8_0_q8_0_ref(n, x + r * stride, y.blocks);
}
void vec_dot4_q4_0_q8_0(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out) {
  for (std::size_t r = 0; r < 4; ++r) out[r] = vec_dot_q4_0_q8_0_ref(n, x + r * stride, y.blocks);
}

#endif

}  // namespace minitx::quant
