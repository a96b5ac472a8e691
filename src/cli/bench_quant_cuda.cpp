#include "bench_quant_cuda.h"

#include <chrono>
#include <memory>

#include "common.h"

namespace minitx::cli {

std::vector<FormatSpeed> time_formats_cuda(const std::vector<const GptWeights*>& models, GpuPrecision precision,
                                           const std::vector<std::uint32_t>& ids, const SpeedShape& shape) {
  std::vector<std::unique_ptr<CudaDecoder>> decoders;
  for (const GptWeights* w : models) decoders.push_back(std::make_unique<CudaDecoder>(*w, precision));
  const SamplingConfig greedy{0.0, 0, 1.0, 0};
  std::vector<std::vector<double>> pp(models.size()), tg(models.size());
  std::vector<double> bandwidth;
  for (std::size_t rep = 0; rep <= shape.reps; ++rep) {
    for (std::size_t i = 0; i < models.size(); ++i) {
      CudaDecoder& d = *decoders[i];
      // prefill_sample returns the token, so the time runs to the end of the prefill.
      auto start = std::chrono::steady_clock::now();
      d.prefill_sample(ids.data(), shape.prompt, greedy, 0);
      const double prefill_s = seconds_since(start);
      d.prefill_sample(ids.data(), shape.depth, greedy, 0);
      // One wait, at the end: the tokens come back together.
      start = std::chrono::steady_clock::now();
      d.step_sample(shape.gen);
      const double decode_s = seconds_since(start);
      if (rep > 0) {
        pp[i].push_back(static_cast<double>(shape.prompt) / prefill_s);
        tg[i].push_back(static_cast<double>(shape.gen) / decode_s);
      }
    }
    if (rep > 0) bandwidth.push_back(cuda_copy_bandwidth());
  }
  const double bw = median(bandwidth);
  std::vector<FormatSpeed> out;
  for (std::size_t i = 0; i < models.size(); ++i)
    out.push_back({median(pp[i]), median(tg[i]), bw / static_cast<double>(decoders[i]->step_weight_bytes())});
  return out;
}

}  // namespace minitx::cli
