// `minitx bench generate`: per-token generation latency with and without the KV cache.
//
// Each repetition generates (greedily, from a one-token prompt) until the context is full, in
// both modes, timing every token. The per-token latency for a length L is the mean over the
// first L tokens of a repetition (generating L tokens is exactly the first L steps of the longer
// run), and the table reports its mean and standard deviation over the repetitions.
//
// On the GPU the tokens come from generate() with the model on the device (infer/cuda_decoder.h):
// with the cache, a prefill and then one captured step per token (the second token's time
// includes capturing it, as in any generate() call); without, a prefill of the whole prefix per
// token. Only each token leaves the device.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "minitx/infer/cuda_decoder.h"
#include "minitx/model/gpt.h"

namespace minitx {

class ConfigSection;

struct BenchConfig {
  std::size_t reps = 3;
  std::size_t max_length = 0;  // 0: the model's context
};
BenchConfig parse_bench_config(const ConfigSection& section);

struct LatencyRow {
  std::size_t length;
  double cached_ms, cached_std_ms, recompute_ms, recompute_std_ms;
};

struct LatencyBench {
  std::string device;                                    // "cpu" or "cuda"
  std::vector<LatencyRow> rows;                          // lengths 32, 64, … up to the maximum
  std::vector<double> cached_ms, recompute_ms;           // per position, mean over repetitions
};

// On the GPU in `gpu`'s precision, or on the CPU when it is empty.
LatencyBench run_latency_bench(const GptModel& model, const BenchConfig& config, std::optional<GpuPrecision> gpu,
                               bool progress);

// CSV texts, one block of rows per device in the order given, each row led by its device: the
// table, and latency by position (for the plot).
std::string latency_table_csv(const std::vector<LatencyBench>& benches);
std::string latency_positions_csv(const std::vector<LatencyBench>& benches);

}  // namespace minitx
