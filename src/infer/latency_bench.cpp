#include "minitx/infer/latency_bench.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <optional>

#include "minitx/core/config.h"
#include "minitx/core/progress.h"
#include "minitx/infer/generate.h"

namespace minitx {

BenchConfig parse_bench_config(const ConfigSection& s) {
  BenchConfig c;
  c.reps = static_cast<std::size_t>(s.integer("reps", 1, 100, 3));
  c.max_length = static_cast<std::size_t>(s.integer("max_length", 0, 65536, 0));
  s.finish();
  return c;
}

namespace {

struct Stats {
  double mean, std;
};

Stats stats(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  return {mean, values.size() > 1 ? std::sqrt(var / static_cast<double>(values.size() - 1)) : 0.0};
}

}  // namespace

LatencyBench run_latency_bench(const GptModel& model, const BenchConfig& config, std::optional<GpuPrecision> gpu,
                               bool progress) {
  const std::size_t max_len = config.max_length == 0 ? model.config.context : std::min(config.max_length, model.config.context);
  const std::string device = gpu ? "cuda" : "cpu";
  std::vector<std::vector<double>> runs[2];  // [cached, recompute][rep][position] seconds
  // On the GPU one decoder serves every run, warmed up by a short untimed one: its graphs are
  // captured once, not inside a timed token.
  std::unique_ptr<CudaDecoder> decoder;
  const auto options_for = [&](int mode, std::size_t max_new) {
    GenerateOptions options;
    options.max_new = max_new;
    options.sampling.temperature = 0.0;
    options.use_cache = mode == 0;
    options.cuda = gpu.has_value();
    if (gpu) options.precision = *gpu;
    options.decoder = decoder.get();
    return options;
  };
  if (gpu) {
    decoder = std::make_unique<CudaDecoder>(weights_of(model), *gpu);
    for (int mode = 0; mode < 2; ++mode) generate(model, {0}, options_for(mode, std::min<std::size_t>(max_len, 4)));
  }
  std::optional<Progress> bar;
  if (progress) bar.emplace("bench generate " + device, config.reps * 2, "runs");
  for (std::size_t rep = 0; rep < config.reps; ++rep)
    for (int mode = 0; mode < 2; ++mode) {
      runs[mode].push_back(generate(model, {0}, options_for(mode, max_len)).step_seconds);
      if (bar) bar->update(rep * 2 + static_cast<std::size_t>(mode) + 1);
    }
  if (bar) bar->finish();
  LatencyBench bench;
  bench.device = device;
  std::vector<std::size_t> lengths;
  for (std::size_t len = 32; len < max_len; len *= 2) lengths.push_back(len);
  lengths.push_back(max_len);
  for (std::size_t len : lengths) {
    LatencyRow row{len, 0, 0, 0, 0};
    for (int mode = 0; mode < 2; ++mode) {
      std::vector<double> means;
      for (const auto& run : runs[mode]) {
        double sum = 0;
        for (std::size_t i = 0; i < len; ++i) sum += run[i];
        means.push_back(sum / static_cast<double>(len) * 1e3);
      }
      const Stats s = stats(means);
      (mode == 0 ? row.cached_ms : row.recompute_ms) = s.mean;
      (mode == 0 ? row.cached_std_ms : row.recompute_std_ms) = s.std;
    }
    bench.rows.push_back(row);
  }
  for (int mode = 0; mode < 2; ++mode) {
    auto& out = mode == 0 ? bench.cached_ms : bench.recompute_ms;
    for (std::size_t i = 0; i < max_len; ++i) {
      double sum = 0;
      for (const auto& run : runs[mode]) sum += run[i];
      out.push_back(sum / static_cast<double>(runs[mode].size()) * 1e3);
    }
  }
  return bench;
}

std::string latency_table_csv(const std::vector<LatencyBench>& benches) {
  std::string out =
      "device,length,cached_ms_per_token,cached_std_ms,recompute_ms_per_token,recompute_std_ms,cached_tokens_per_s,"
      "recompute_tokens_per_s,speedup\n";
  for (const LatencyBench& bench : benches)
    for (const LatencyRow& r : bench.rows)
      out += fmt::format("{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.1f},{:.1f},{:.2f}\n", bench.device, r.length, r.cached_ms,
                         r.cached_std_ms, r.recompute_ms, r.recompute_std_ms, 1e3 / r.cached_ms, 1e3 / r.recompute_ms,
                         r.recompute_ms / r.cached_ms);
  return out;
}

std::string latency_positions_csv(const std::vector<LatencyBench>& benches) {
  std::string out = "device,position,cached_ms,recompute_ms\n";
  for (const LatencyBench& bench : benches)
    for (std::size_t i = 0; i < bench.cached_ms.size(); ++i)
      out += fmt::format("{},{},{:.4f},{:.4f}\n", bench.device, i + 1, bench.cached_ms[i], bench.recompute_ms[i]);
  return out;
}

}  // namespace minitx
