// Choosing tokens on the GPU: the definition of minitx/infer/sampling.h computed in the integers of
// minitx/infer/sampling_math.h, so that every row's token is the one sample_token picks for that
// row's logits, the same config and the same index: by construction, not to rounding.
//
// Made for captured CUDA graphs: the functions only enqueue work on `stream` (no host
// synchronisation, no allocation, no host read of device data), and the draw indices are read
// from device memory when the kernels run, so a graph replayed after advancing them draws anew.
// Deterministic: no atomics; every reduction is an integer max or sum, whose result does not
// depend on the order. Only for builds with MINITX_CUDA.
//
// Cost: greedy configs (sampling_is_greedy) are an argmax, one kernel for V ≤ 2048 and two above
// it. Other configs sort each row (CUB radix sort on 32-bit keys), weigh the kept candidates,
// scan the weights (CUB) and draw: about ten small kernels per row.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "minitx/infer/sampling.h"

namespace minitx::cuda {

// Chooses one token per row of logits on the device. logits: (rows, ld) floats on the device, the
// first V of each row are the candidates (ld ≥ V; the rest of a row is never read). index: device
// pointer to `rows` draw indices (sample_token's `index`), read when the kernels run; it may be
// null for greedy configs, which do not draw. out: device pointer to `rows` tokens.
// scratch: sample_scratch_bytes(rows, V, config) bytes of device memory (null if that is 0),
// allocated once by the caller; it holds nothing between calls. rows = 0 does nothing.
// Throws minitx::Error for arguments that check_sampling rejects, ld < V, rows > 65535, or a
// null pointer that is needed.
void sample_tokens(std::uint32_t* out, const float* logits, std::size_t rows, std::size_t V, std::size_t ld,
                   const SamplingConfig& config, const std::uint64_t* index, void* scratch, cudaStream_t stream);

// The scratch that sample_tokens needs. It depends on the config only through
// sampling_is_greedy(config): a scratch sized for a config that is not greedy serves every
// config with the same rows and V.
std::size_t sample_scratch_bytes(std::size_t rows, std::size_t V, const SamplingConfig& config);

// index[r] += step for r < rows, on the device: how a captured graph moves to the next draw.
void advance_indices(std::uint64_t* index, std::size_t rows, std::uint64_t step, cudaStream_t stream);

}  // namespace minitx::cuda
