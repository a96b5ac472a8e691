// minitx bench generate: per-token latency with and without the KV cache -> OUT/bench.csv and
// OUT/bench_positions.csv (latency by position, for scripts/plot_latencia.gp).
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/io.h"
#include "minitx/infer/latency_bench.h"
#include "minitx/model/load.h"

namespace minitx::cli {

int run_bench_generate(Args& args) {
  Experiment ex = experiment_from_args(args);
  const fs::path checkpoint = args.option("--checkpoint").value_or((ex.out_dir / "model.ckpt").string());
  const fs::path output = args.option("--output").value_or((ex.out_dir / "bench.csv").string());
  ex.bench.reps = static_cast<std::size_t>(args.integer("--reps", 1, 100, static_cast<std::int64_t>(ex.bench.reps)));
  ex.bench.max_length = static_cast<std::size_t>(args.integer("--max-length", 0, 65536, static_cast<std::int64_t>(ex.bench.max_length)));
  const bool quiet = args.flag("--quiet");
  args.done();

  const auto model = load_model(checkpoint, ex.model, ex.config_path.string());
  const LatencyBench bench = run_latency_bench(*model, ex.bench, !quiet);
  fs::path positions = output;
  positions.replace_filename(output.stem().string() + "_positions.csv");
  write_file_atomic(output, latency_table_csv(bench));
  write_file_atomic(positions, latency_positions_csv(bench));
  fmt::print("{:>7} {:>18} {:>18} {:>10} {:>10} {:>8}\n", "length", "cached ms/token", "recompute ms/token",
             "cached t/s", "recomp t/s", "speedup");
  for (const LatencyRow& r : bench.rows)
    fmt::print("{:>7} {:>10.3f} ± {:<5.3f} {:>10.3f} ± {:<5.3f} {:>10.1f} {:>10.1f} {:>7.1f}x\n", r.length, r.cached_ms,
               r.cached_std_ms, r.recompute_ms, r.recompute_std_ms, 1e3 / r.cached_ms, 1e3 / r.recompute_ms,
               r.recompute_ms / r.cached_ms);
  fmt::print("bench generate: {} repetitions -> {}, {}\n", ex.bench.reps, output.string(), positions.string());
  return 0;
}

}  // namespace minitx::cli
