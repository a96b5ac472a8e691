// Matrix products with weights in any Format, threaded over output rows with parallel_for so
// each output is computed by one thread in one fixed order: results do not depend on the thread
// count. For quantized weights the activations are quantized to q8_0 per row first and every
// product is an integer dot product with the packed blocks (dot.h); weights are never
// dequantized. Shapes follow llm.c: W is (OC, C), the input (T, C), the output (T, OC).
#pragma once
#include <cstddef>

#include "minitx/quant/dot.h"
#include "minitx/quant/tensor.h"

namespace minitx::quant {

// out[t, o] = Σ_c inp[t, c] * W[o, c] (+ bias[o] when bias is not null).
void matmul(float* out, const float* inp, const QMatrix& w, const float* bias, std::size_t T);

// y = W x (+ bias): matmul with T = 1.
inline void matvec(float* y, const QMatrix& w, const float* x, const float* bias = nullptr) {
  matmul(y, x, w, bias, 1);
}

// The same product from activations already quantized, so that a caller can quantize one input
// once for several weights (q, k, v). W must be quantized; T is inp.rows().
void matmul_q8(float* out, const Q8Activations& inp, const QMatrix& w, const float* bias);

}  // namespace minitx::quant
