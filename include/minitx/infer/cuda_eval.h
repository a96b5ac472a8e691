// Validation loss on the GPU: evaluate_loss's windows (infer/perplexity.h) through block.h's
// forward with the CUDA op table, then the head and the cross-entropy on the device; only the
// per-token losses come back, and they are summed on the host in stream order, as on the CPU.
//
// Precision: fp32 computes in true fp32 (cuBLASLt never uses TF32 here), so the loss is the
// CPU's to rounding; bf16 rounds the weights and each stored activation to bf16, with fp32
// accumulation (and needs a head size of 64 or 128, as training in bf16 does). A quantized model
// is evaluated on its matrices' dequantized values (dense_parameters): the CPU instead multiplies
// the packed blocks by inputs that it also rounds to q8_0, so the two differ by that rounding.
//
// Windows go through the model in groups fixed by the window length alone (cuda_eval_windows),
// never by a batch size: cuBLASLt picks its kernel, and so its order of additions, by the
// product's shape, so a caller's batch size would otherwise change the loss's last bits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/weights.h"

namespace minitx {

// Windows of T tokens per forward pass: about 4,096 rows, enough to fill the GPU's products.
std::size_t cuda_eval_windows(std::size_t T);

// The whole stream (the final partial window included), as evaluate_loss with max_windows 0.
// Errors, before allocating, when the device lacks the memory; without CUDA or a GPU, an error
// that says which.
EvalResult cuda_evaluate_loss(const GptWeights& weights, const std::vector<std::uint32_t>& ids, std::size_t T,
                              GpuPrecision precision);

}  // namespace minitx
