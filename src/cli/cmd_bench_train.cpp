// minitx bench train: training throughput (forward + backward + clip + AdamW, the engines of
// `minitx train`) on the peers' shapes, beside their numbers: torch_cpu_peer.py's log on the CPU,
// torch_peers.py's peers.json (eager and torch.compile) on the GPU.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <span>
#include <sstream>

#include "commands.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "minitx/model/train_engine.h"
#include "../model/strict_json.h"
#include "common.h"
#include "minitx/model/params.h"
#include "minitx/sparse/pattern.h"

namespace minitx::cli {
namespace {

struct Shape {
  const char* name;
  std::size_t V, T, L, C, NH, B;
};
// What one row measures: a named model at batch B and sequence length T.
struct Run {
  std::string name;
  ModelConfig model;
  std::size_t B, T;
};

// The peers' shapes, same names: torch_cpu_peer.py's for the CPU, torch_peers.py's for the GPU.
constexpr Shape kCpuShapes[] = {{"tiny-2L64", 512, 64, 2, 64, 2, 8},
                                {"mini-4L256", 2048, 256, 4, 256, 4, 8},
                                {"nanogpt-cpu-4L128", 2048, 64, 4, 128, 4, 12}};
constexpr Shape kGpuShapes[] = {{"mini-6L384", 8192, 256, 6, 384, 6, 64}, {"gpt2-124M", 50304, 1024, 12, 768, 12, 16}};

// torch_cpu_peer.py's log: lines "train NAME ... tok_s=X".
std::map<std::string, double> read_torch_log(const fs::path& path) {
  std::map<std::string, double> out;
  std::stringstream in(read_file(path));
  std::string line;
  for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.rfind("train ", 0) != 0) continue;
    const std::string name = line.substr(6, line.find(' ', 6) - 6);
    const std::size_t at = line.find("tok_s=");
    if (at == std::string::npos) continue;
    const std::string value = line.substr(at + 6, line.find(' ', at) - at - 6);
    char* end = nullptr;
    const double tokens_per_s = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(tokens_per_s) || tokens_per_s < 0)
      fail("{}:{}: tok_s= expects a number of tokens per second, got '{}'", path.string(), line_no, excerpt(value));
    out[name] = tokens_per_s;
  }
  return out;
}

// torch_peers.py's peers.json: rows {"model", "mode": eager|compile, "tok_s"} under "train".
std::map<std::string, double> read_torch_json(const fs::path& path) {
  const nlohmann::json doc = detail::parse_json_strict(read_file(path), path.string());
  std::map<std::string, double> out;
  if (!doc.contains("train")) return out;
  for (const nlohmann::json& row : doc.at("train")) {
    if (!row.contains("tok_s")) continue;  // a peer that failed: its error is in the file
    MINITX_CHECK(row.at("tok_s").is_number() && row.at("model").is_string() && row.at("mode").is_string(),
                 "{}: a train row needs model and mode (strings) and tok_s (a number)", path.string());
    out[row.at("model").get<std::string>() + " " + row.at("mode").get<std::string>()] = row.at("tok_s").get<double>();
  }
  return out;
}

std::string ratio_field(double ours, const std::map<std::string, double>& peers, const std::string& key) {
  const auto it = peers.find(key);
  return it == peers.end() ? "" : fmt::format("{:.2f}", ours / it->second);
}
std::string peer_field(const std::map<std::string, double>& peers, const std::string& key) {
  const auto it = peers.find(key);
  return it == peers.end() ? "" : fmt::format("{:.0f}", it->second);
}

}  // namespace

int run_bench_train(Args& args) {
  const std::string only = args.option("--shapes").value_or("");
  // --config: the experiment's own model (attention pattern included), batch and sequence length.
  const std::optional<Experiment> ex = optional_experiment_from_args(args);
  const auto steps = static_cast<std::size_t>(args.integer("--steps", 1, 1000, 7));
  const std::string device = resolve_device(args.option("--device").value_or("cpu"));
  const auto asked_precision = args.option("--precision");
  const auto torch_log = args.option("--torch-log");
  const auto torch_json = args.option("--torch-json");
  const auto output = args.option("--output");
  const auto profile_output = args.option("--profile");  // where the time goes, per op (GPU): a CSV
  args.done();
  std::string profile_csv = "shape,op,ms_per_step,share,calls_per_step\n";
  // Peers keyed "shape mode": the CPU log's single figure is "eager".
  std::map<std::string, double> torch;
  if (torch_log)
    for (const auto& [name, tps] : read_torch_log(*torch_log)) torch[name + " eager"] = tps;
  if (torch_json) torch.merge(read_torch_json(*torch_json));
  const bool gpu = device == "cuda";
  MINITX_CHECK(!asked_precision || *asked_precision == "fp32" || (gpu && *asked_precision == "bf16"),
               "--precision {}: expected {}", *asked_precision, gpu ? "bf16 or fp32" : "fp32 (the cpu trains in fp32 only)");
  MINITX_CHECK(!profile_output || gpu, "--profile times the GPU's ops: it needs --device cuda");

  std::vector<Run> runs;
  if (ex) {
    MINITX_CHECK(only.empty(), "--shapes and --config exclude each other: the config is the shape");
    ModelConfig m = ex->model;
    if (m.vocab_size == 0) m.vocab_size = ex->tokenizer.trainer.vocab_size;  // what its tokenizer will make
    m.validate(ex->config_path.string());
    runs.push_back({ex->name, m, ex->train.batch_size, ex->train.seq_len == 0 ? m.context : ex->train.seq_len});
  } else {
    for (const Shape& s : gpu ? std::span<const Shape>(kGpuShapes) : std::span<const Shape>(kCpuShapes)) {
      if (!only.empty() && ("," + only + ",").find(std::string(",") + s.name + ",") == std::string::npos) continue;
      ModelConfig m;
      m.n_layer = s.L;
      m.n_embd = s.C;
      m.n_head = s.NH;
      m.context = s.T;
      m.vocab_size = s.V;
      runs.push_back({s.name, m, s.B, s.T});
    }
  }
  // The built-in GPU shapes have head size 64, so bf16 is their default; a config's model may not.
  const std::string precision =
      asked_precision.value_or(ex ? default_precision(runs.front().model, device) : gpu ? "bf16" : "fp32");
  const double peak = gpu ? peak_flops(cuda_devices().front(), precision) : 0.0;
  std::string csv =
      "shape,device,precision,params,batch,seq,threads,step_ms,tokens_per_s,mfu,torch_tokens_per_s,ratio,"
      "torch_compile_tokens_per_s,compile_ratio,attention,density\n";
  fmt::print("{} ({}), median of {} steps after a warm-up step\n", gpu ? cuda_devices().front().name : "cpu",
             precision, steps);
  fmt::print("{:<18} {:>9} {:>6} {:>9} {:>10} {:>6} {:>10} {:>6} {:>10} {:>6}\n", "shape", "params", "B×T", "step ms",
             "tokens/s", "MFU", "PyTorch", "ratio", "compile", "ratio");
  for (const Run& s : runs) {
    const ModelConfig& m = s.model;
    const std::size_t P = param_count(m), N = s.B * s.T;
    TrainState state{std::vector<float>(P), std::vector<float>(P, 0.0f), std::vector<float>(P, 0.0f)};
    init_params(state.params.data(), m, 1);
    auto engine = gpu ? make_cuda_engine(m, precision, s.B, s.T, std::move(state))
                      : make_cpu_engine(m, s.B, s.T, std::move(state));
    std::vector<std::uint32_t> ids(N), targets(N);
    const CounterRng rng(2, 0);
    for (std::size_t i = 0; i < N; ++i) {
      ids[i] = static_cast<std::uint32_t>(rng.below(2 * i, m.vocab_size));
      targets[i] = static_cast<std::uint32_t>(rng.below(2 * i + 1, m.vocab_size));
    }
    TrainConfig tc;
    tc.weight_decay = 0.0;
    std::vector<double> times;
    for (std::size_t step = 0; step <= steps; ++step) {  // step 0 warms up (and picks the GPU's algorithms)
      const auto start = std::chrono::steady_clock::now();
      const StepStats stats = engine->forward_backward(ids.data(), targets.data());
      engine->update(tc, 1e-4, stats, step + 1);
      engine->synchronize();
      if (step > 0) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    const double tps = static_cast<double>(N) / median;
    // Model FLOPs as the peer counts them: 6 per parameter and token, plus causal attention.
    const double flops = model_flops_per_token(m, s.T) * static_cast<double>(N);
    const std::string mfu = peak > 0 ? fmt::format("{:.1f}%", 100.0 * flops / median / peak) : "";
    const std::string eager = s.name + " eager", compiled = s.name + " compile";
    fmt::print("{:<18} {:>9} {:>6} {:>9.2f} {:>10.0f} {:>6} {:>10} {:>6} {:>10} {:>6}\n", s.name, P, N, median * 1e3, tps,
               mfu, peer_field(torch, eager), ratio_field(tps, torch, eager), peer_field(torch, compiled),
               ratio_field(tps, torch, compiled));
    if (profile_output && gpu) {
      // Steps again with an event after every op; these steps are slower by the events' cost,
      // so the shares, not the sums, are the result.
      engine->set_profiling(true);
      for (std::size_t step = 0; step < steps; ++step) {
        const StepStats stats = engine->forward_backward(ids.data(), targets.data());
        engine->update(tc, 1e-4, stats, steps + step + 2);
      }
      engine->set_profiling(false);
      auto ops = engine->op_times();
      std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
      double total = 0.0;
      for (const auto& op : ops) total += op.ms;
      fmt::print("  {} — where a step's time goes ({:.2f} ms per step with events):\n", s.name,
                 total / static_cast<double>(steps));
      for (const auto& op : ops) {
        const double per_step = op.ms / static_cast<double>(steps);
        fmt::print("    {:<26} {:>8.3f} ms {:>6.1f}% {:>5} calls\n", op.op, per_step, 100.0 * op.ms / total,
                   op.calls / steps);
        profile_csv += fmt::format("{},{},{:.4f},{:.4f},{}\n", s.name, op.op, per_step, op.ms / total, op.calls / steps);
      }
    }
    // The attention the model used: its pattern and the share of causal blocks it keeps at T.
    const double density =
        m.attention.dense() ? 1.0
                            : sparse::build_layout(m.attention, static_cast<std::int32_t>(s.T),
                                                   static_cast<std::int32_t>(m.n_head), 64)
                                  .density();
    csv += fmt::format("{},{},{},{},{},{},{},{:.2f},{:.0f},{},{},{},{},{},{},{:.4f}\n", s.name, device, precision, P, s.B,
                       s.T, gpu ? 0 : thread_count(), median * 1e3, tps, mfu, peer_field(torch, eager),
                       ratio_field(tps, torch, eager), peer_field(torch, compiled), ratio_field(tps, torch, compiled),
                       sparse::to_string(m.attention.kind), density);
  }
  if (output) write_file_atomic(*output, csv);
  if (profile_output) write_file_atomic(*profile_output, profile_csv);
  return 0;
}

}  // namespace minitx::cli
