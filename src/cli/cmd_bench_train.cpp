// minitx bench train: training throughput (forward + backward + AdamW) on the shapes of
// torch_cpu_peer.py, optionally beside its numbers ("train NAME ... tok_s=X").
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "commands.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

namespace minitx::cli {
namespace {

struct Shape {
  const char* name;
  std::size_t V, T, L, C, NH, B;
};
// The peer's shapes, same names.
constexpr Shape kShapes[] = {{"tiny-2L64", 512, 64, 2, 64, 2, 8},
                             {"mini-4L256", 2048, 256, 4, 256, 4, 8},
                             {"nanogpt-cpu-4L128", 2048, 64, 4, 128, 4, 12}};

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

}  // namespace

int run_bench_train(Args& args) {
  const std::string only = args.option("--shapes").value_or("");
  const auto steps = static_cast<std::size_t>(args.integer("--steps", 1, 1000, 7));
  const auto torch_log = args.option("--torch-log");
  const auto output = args.option("--output");
  args.done();
  const auto torch = torch_log ? read_torch_log(*torch_log) : std::map<std::string, double>{};

  std::string csv = "shape,params,batch,seq,threads,step_ms,tokens_per_s,torch_tokens_per_s,ratio\n";
  fmt::print("{:<18} {:>9} {:>6} {:>9} {:>10} {:>10} {:>8}\n", "shape", "params", "B×T", "step ms", "tokens/s",
             "PyTorch", "ratio");
  for (const Shape& s : kShapes) {
    if (!only.empty() && ("," + only + ",").find(std::string(",") + s.name + ",") == std::string::npos) continue;
    ModelConfig m;
    m.n_layer = s.L;
    m.n_embd = s.C;
    m.n_head = s.NH;
    m.context = s.T;
    m.vocab_size = s.V;
    const auto model = random_model(m, 1);
    const std::size_t P = model->size(), N = s.B * s.T;
    std::vector<float> grads(P), mom(P, 0.0f), vel(P, 0.0f);
    std::vector<std::uint32_t> ids(N), targets(N);
    const CounterRng rng(2, 0);
    for (std::size_t i = 0; i < N; ++i) {
      ids[i] = static_cast<std::uint32_t>(rng.below(2 * i, s.V));
      targets[i] = static_cast<std::uint32_t>(rng.below(2 * i + 1, s.V));
    }
    GptTrainer trainer(*model, s.B, s.T);
    std::vector<double> times;
    for (std::size_t step = 0; step <= steps; ++step) {  // step 0 warms up
      const auto start = std::chrono::steady_clock::now();
      trainer.forward(ids.data(), targets.data());
      trainer.backward(grads.data());
      const cpu::AdamWStep a{1e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, step + 1};
      cpu::adamw_update(model->data(), grads.data(), mom.data(), vel.data(), P, a);
      if (step > 0) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    const double tps = static_cast<double>(N) / median;
    const auto it = torch.find(s.name);
    const std::string pt = it == torch.end() ? "" : fmt::format("{:.0f}", it->second);
    const std::string ratio = it == torch.end() ? "" : fmt::format("{:.2f}", tps / it->second);
    fmt::print("{:<18} {:>9} {:>6} {:>9.1f} {:>10.0f} {:>10} {:>8}\n", s.name, P, N, median * 1e3, tps, pt, ratio);
    csv += fmt::format("{},{},{},{},{},{:.1f},{:.0f},{},{}\n", s.name, P, s.B, s.T, thread_count(), median * 1e3, tps, pt, ratio);
  }
  if (output) write_file_atomic(*output, csv);
  return 0;
}

}  // namespace minitx::cli
