// `minitx bench quant --speed`: one format's speed at batch 1 on a device, and the GPU's timing of
// each format's model with CudaDecoder, beside the memory floor (bench_quant_cuda.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/infer/cuda_decoder.h"
#include "minitx/model/weights.h"

namespace minitx::cli {

struct FormatSpeed {
  double prompt_tok_s = 0;  // a prefill of the prompt test's tokens, to its first token
  double decode_tok_s = 0;  // greedy tokens, one after another
  double floor_tok_s = 0;   // the GPU's: copy bandwidth / the weight bytes a step reads (0: not measured)
};

struct SpeedShape {
  std::size_t prompt, depth, gen, reps;  // prompt test, then gen tokens after `depth` prompt tokens
};

// One decoder per model, all on the device at once; repetitions outermost and the formats inside
// (so a burst of load on the GPU hits every format), repetition 0 a warm-up, medians reported.
// Decoding queues the gen tokens back to back (step_sample) with one wait at the end. `ids` holds
// at least max(prompt, depth) tokens.
std::vector<FormatSpeed> time_formats_cuda(const std::vector<const GptWeights*>& models, GpuPrecision precision,
                                           const std::vector<std::uint32_t>& ids, const SpeedShape& shape);

}  // namespace minitx::cli
