// Masked dense attention over a layout's element mask, in plain loops with double accumulation:
// the oracle the block-sparse kernels are tested against, and the CPU path for any layout.
// Shapes as in cpu::attention_forward: qkv (B, T, 3C) with q, k, v side by side in each row and
// heads contiguous in C (D = C / H), out (B, T, C), scale 1/sqrt(D).
#pragma once
#include <cstddef>

#include "minitx/sparse/layout.h"

namespace minitx::sparse {

// out (B, T, C); lse (B, H, T), may be null: the natural log of Σ_k exp(scale·q·k) over the
// allowed keys of each row (what the kernels save for the backward).
void attention_ref_forward(float* out, float* lse, const float* qkv, const BlockLayout& layout, std::size_t B,
                           std::size_t T, std::size_t C, std::size_t H);

// dqkv (B, T, 3C) is overwritten (not accumulated) with the gradient of Σ out ⊙ dout.
void attention_ref_backward(float* dqkv, const float* dout, const float* qkv, const BlockLayout& layout, std::size_t B,
                            std::size_t T, std::size_t C, std::size_t H);

}  // namespace minitx::sparse
