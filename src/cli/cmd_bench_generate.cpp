// minitx bench generate: per-token latency with and without the KV cache, on the CPU and/or the
// GPU -> OUT/bench.csv and OUT/bench_positions.csv (latency by position, for
// scripts/plot_latencia.gp), a block of rows per device.
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/io.h"
#include "minitx/core/threads.h"
#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/latency_bench.h"
#include "minitx/model/load.h"
#include "minitx/model/train_engine.h"

namespace minitx::cli {
namespace {

// The GPU's table line says how far a cached token is from the memory floor: the weight bytes a
// step reads over the measured copy bandwidth (what `bench decode --device cuda` reports too).
void print_table(const LatencyBench& bench, const GptModel& model, GpuPrecision precision) {
  double floor = 0;
  if (bench.device == "cuda") {
    const std::size_t bytes = CudaDecoder(weights_of(model), precision).step_weight_bytes();
    const double bandwidth = cuda_copy_bandwidth();
    floor = bandwidth / static_cast<double>(bytes);
    fmt::print("on the GPU ({}, {}): a token reads {:.2f} MB of weights; at {:.2f} TB/s of copy bandwidth, the floor is "
               "{:.0f} tokens/s\n",
               cuda_devices().front().name, to_string(precision), static_cast<double>(bytes) / 1e6, bandwidth / 1e12,
               floor);
  } else {
    fmt::print("on the CPU ({} threads):\n", thread_count());
  }
  fmt::print("{:>7} {:>18} {:>18} {:>10}{} {:>10} {:>8}\n", "length", "cached ms/token", "recompute ms/token",
             "cached t/s", floor > 0 ? fmt::format(" {:>10} {:>9}", "floor t/s", "of floor") : "", "recomp t/s",
             "speedup");
  for (const LatencyRow& r : bench.rows) {
    const double cached = 1e3 / r.cached_ms;
    fmt::print("{:>7} {:>10.3f} ± {:<5.3f} {:>10.3f} ± {:<5.3f} {:>10.1f}{} {:>10.1f} {:>7.1f}x\n", r.length,
               r.cached_ms, r.cached_std_ms, r.recompute_ms, r.recompute_std_ms, cached,
               floor > 0 ? fmt::format(" {:>10.0f} {:>8.1f}%", floor, 100.0 * cached / floor) : "",
               1e3 / r.recompute_ms, r.recompute_ms / r.cached_ms);
  }
}

}  // namespace

int run_bench_generate(Args& args) {
  Experiment ex = experiment_from_args(args);
  const fs::path checkpoint = args.option("--checkpoint").value_or((ex.out_dir / "model.ckpt").string());
  const fs::path output = args.option("--output").value_or((ex.out_dir / "bench.csv").string());
  ex.bench.reps = static_cast<std::size_t>(args.integer("--reps", 1, 100, static_cast<std::int64_t>(ex.bench.reps)));
  ex.bench.max_length = static_cast<std::size_t>(args.integer("--max-length", 0, 65536, static_cast<std::int64_t>(ex.bench.max_length)));
  const std::vector<std::string> devices = resolve_bench_devices(args.option("--device").value_or("cpu"));
  const std::optional<std::string> precision_option = args.option("--precision");
  const bool quiet = args.flag("--quiet");
  args.done();

  const auto model = load_model(checkpoint, ex.model, ex.config_path.string());
  // The GPU's default is training's: bf16 where the prefill's attention kernel takes the head
  // size, fp32 otherwise.
  const GpuPrecision precision =
      parse_gpu_precision(precision_option.value_or(default_precision(model->config, "cuda")), "--precision");
  std::vector<LatencyBench> benches;
  for (const std::string& device : devices)
    benches.push_back(run_latency_bench(*model, ex.bench, device == "cuda" ? std::optional(precision) : std::nullopt,
                                        !quiet));
  fs::path positions = output;
  positions.replace_filename(output.stem().string() + "_positions.csv");
  write_file_atomic(output, latency_table_csv(benches));
  write_file_atomic(positions, latency_positions_csv(benches));
  for (const LatencyBench& bench : benches) print_table(bench, *model, precision);
  fmt::print("bench generate: {} repetitions -> {}, {}\n", ex.bench.reps, output.string(), positions.string());
  return 0;
}

}  // namespace minitx::cli
