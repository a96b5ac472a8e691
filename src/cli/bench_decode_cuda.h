// `minitx bench decode --device cuda`: the GPU's prompt and decode speed for a model shape, with
// the memory floor beside it (bench_decode_cuda.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "minitx/infer/cuda_decoder.h"
#include "minitx/model/gpt.h"

namespace minitx::cli {

struct DecodeBenchShape {
  std::size_t prompt, gen, depth, reps;
  bool profile = false;  // also time each kernel of `gen` steps (decoder.profile)
  std::size_t batch = 1;  // sequences decoded at once, each after its own prompt
};

// `recipe`: f32 (the model's matrices in the decoder's precision), q8_0, q4_0 or q4_mix, quantized
// in memory from `model`. prompts: one per sequence of the batch (the first also times the
// prompt). Prints the table; writes the CSV to `output` when given.
void bench_decode_cuda(const GptModel& model, const std::string& recipe, GpuPrecision precision,
                       const std::vector<std::vector<std::uint32_t>>& prompts, const DecodeBenchShape& shape,
                       const std::optional<std::string>& output);

}  // namespace minitx::cli
