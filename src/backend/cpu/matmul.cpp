#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"
#include "reduce_rows.h"

namespace minitx::cpu {

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, std::size_t N,
                    std::size_t C, std::size_t OC) {
  // The bias enters as the initial C of the product (beta = 1), so out is written once.
  if (bias != nullptr) {
    parallel_for(N, [&](std::size_t begin, std::size_t end) {
      for (std::size_t n = begin; n < end; ++n)
        for (std::size_t o = 0; o < OC; ++o) out[n * OC + o] = bias[o];
    });
  }
  sgemm(Trans::no, Trans::yes, N, OC, C, 1.0f, inp, C, weight, C, bias != nullptr ? 1.0f : 0.0f, out, OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, std::size_t N, std::size_t C, std::size_t OC) {
  sgemm(Trans::no, Trans::no, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);       // dinp += dout·W
  sgemm(Trans::yes, Trans::no, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);      // dW += doutᵀ·inp
  if (dbias != nullptr)
    detail::accumulate_column_sums(dbias, N, OC, [&](std::size_t n, std::size_t o) { return dout[n * OC + o]; });
}

}  // namespace minitx::cpu
