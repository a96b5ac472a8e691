// The one place where a kernel's fast version is chosen. The ISA level is fixed when the binary
// is built (the Makefile pins it), so one binary gives the same bits on every machine; the one
// run-time choice, the VNNI kernels, gives the AVX2 kernels' bits.
#include "minitx/backend/cpu/gemm.h"
#include "minitx/quant/dot.h"
#include "minitx/quant/quantize.h"

namespace minitx::quant {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

namespace {
constexpr DotKernels kAvx2{"avx2", vec_dot_q8_0_q8_0_avx2, vec_dot_q4_0_q8_0_avx2, vec_dot4_q8_0_q8_0_avx2,
                           vec_dot4_q4_0_q8_0_avx2, nullptr, nullptr, nullptr, nullptr, nullptr};
constexpr DotKernels kVnni{"vnni", vec_dot_q8_0_q8_0_vnni, vec_dot_q4_0_q8_0_vnni, vec_dot4_q8_0_q8_0_vnni,
                           vec_dot4_q4_0_q8_0_vnni, vec_dotN_q8_0_q8_0_vnni, vec_dotN_q4_0_q8_0_vnni,
                           prepare_tokens_vnni, vec_dot4xT_q8_0_q8_0_vnni,
                           vec_dot4xT_q4_0_q8_0_vnni};
}  // namespace

// MINITX_GEMM_ISA=avx2 pins the AVX2 kernels too: one knob for every width-dependent kernel.
const DotKernels& dot_kernels() {
  return cpu::gemm_isa() == cpu::GemmIsa::avx512 && cpu_has_avx512_vnni() ? kVnni : kAvx2;
}

void quantize_row_q8_0(const float* x, block_q8_0* y, std::size_t n) { quantize_row_q8_0_avx2(x, y, n); }
float vec_dot_f32(std::size_t n, const float* x, const float* y) { return vec_dot_f32_avx2(n, x, y); }

#else

namespace {
void ref4_q8_0(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out) {
  for (std::size_t r = 0; r < 4; ++r) out[r] = vec_dot_q8_0_q8_0_ref(n, x + r * stride, y.blocks);
}
void ref4_q4_0(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out) {
  for (std::size_t r = 0; r < 4; ++r) out[r] = vec_dot_q4_0_q8_0_ref(n, x + r * stride, y.blocks);
}
float ref_q8_0(std::size_t n, const block_q8_0* x, const Q8Row& y) { return vec_dot_q8_0_q8_0_ref(n, x, y.blocks); }
float ref_q4_0(std::size_t n, const block_q4_0* x, const Q8Row& y) { return vec_dot_q4_0_q8_0_ref(n, x, y.blocks); }
constexpr DotKernels kRef{"reference", ref_q8_0, ref_q4_0, ref4_q8_0, ref4_q4_0, nullptr, nullptr, nullptr, nullptr, nullptr};
}  // namespace

const DotKernels& dot_kernels() { return kRef; }

void quantize_row_q8_0(const float* x, block_q8_0* y, std::size_t n) { quantize_row_q8_0_ref(x, y, n); }
float vec_dot_f32(std::size_t n, const float* x, const float* y) { return vec_dot_f32_ref(n, x, y); }

#endif

float vec_dot_q8_0_q8_0(std::size_t n, const block_q8_0* x, const Q8Row& y) { return dot_kernels().q8_0(n, x, y); }
float vec_dot_q4_0_q8_0(std::size_t n, const block_q4_0* x, const Q8Row& y) { return dot_kernels().q4_0(n, x, y); }
void vec_dot4_q8_0_q8_0(std::size_t n, const block_q8_0* x, std::size_t stride, const Q8Row& y, float* out) {
  dot_kernels().q8_0_rows4(n, x, stride, y, out);
}
void vec_dot4_q4_0_q8_0(std::size_t n, const block_q4_0* x, std::size_t stride, const Q8Row& y, float* out) {
  dot_kernels().q4_0_rows4(n, x, stride, y, out);
}

}  // namespace minitx::quant
