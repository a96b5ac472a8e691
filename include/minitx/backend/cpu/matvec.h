// Matrix-vector products for decoding one token: out (OC) = W (OC, C) · x (C) + bias (OC, may
// be null). Rows of W are contiguous, so each output is one streamed dot product; threads split
// the outputs, and each dot product is summed in the same order whatever the thread count.
#pragma once
#include <cstddef>

namespace minitx::cpu {

void matvec(float* out, const float* w, const float* x, const float* bias, std::size_t OC, std::size_t C);

// Dot product of n floats in 8 AVX2 lanes (lanes combined in a fixed order, scalar tail).
float dot(const float* a, const float* b, std::size_t n);

}  // namespace minitx::cpu
