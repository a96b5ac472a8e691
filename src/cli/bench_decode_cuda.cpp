#include "bench_decode_cuda.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "common.h"
#include "minitx/core/build_info.h"
#include "minitx/core/io.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/weights.h"
#include "minitx/sparse/pattern.h"

namespace minitx::cli {

void bench_decode_cuda(const GptModel& model, const std::string& recipe, GpuPrecision precision,
                       const std::vector<std::vector<std::uint32_t>>& prompts, const DecodeBenchShape& shape,
                       const std::optional<std::string>& output) {
  const std::vector<std::uint32_t>& prompt = prompts.front();
  const std::size_t batch = shape.batch;
  std::unique_ptr<QuantModel> quantized;
  GptWeights weights = weights_of(model);
  if (recipe != "f32") {
    quantized = make_quant_model(quantize_model(model, quant::recipe_by_name(recipe), {kNoTokenizer, 0, recipe}),
                                 "the random model quantized to " + recipe);
    weights = quantized->weights;
  }
  CudaDecoder decoder(weights, precision, batch);
  const SamplingConfig greedy{0.0, 0, 1.0, 0};
  // Each repetition (the first only warms up): the prompt's time to the first token, then `gen`
  // tokens after `depth` in each sequence of the batch (each after its own prompt), queued back
  // to back with one wait at the end, two ways — replaying the captured step (the default) and
  // launching its kernels one by one — and the copy bandwidth of the moment.
  struct Mode {
    const char* test;
    bool graphs;
    std::vector<double> tokens_per_s;
  };
  std::vector<Mode> modes = {{"tg", true, {}}, {"tg_eager", false, {}}};
  std::vector<double> pp, ttft, bandwidth;
  const auto prefill_all = [&](std::size_t n) {
    for (std::size_t s = 0; s < batch; ++s) decoder.prefill_sample(s, prompts[s].data(), n, greedy, 0);
  };
  for (std::size_t rep = 0; rep <= shape.reps; ++rep) {
    auto start = std::chrono::steady_clock::now();
    decoder.prefill_sample(prompt.data(), shape.prompt, greedy, 0);
    const double prefill_s = seconds_since(start);
    for (Mode& mode : modes) {
      decoder.use_graphs(mode.graphs);
      prefill_all(shape.depth);
      start = std::chrono::steady_clock::now();
      decoder.step_sample(shape.gen);
      if (rep > 0) mode.tokens_per_s.push_back(static_cast<double>(batch * shape.gen) / seconds_since(start));
    }
    decoder.use_graphs(true);
    if (rep == 0) continue;
    pp.push_back(static_cast<double>(shape.prompt) / prefill_s);
    ttft.push_back(prefill_s * 1e3);
    bandwidth.push_back(cuda_copy_bandwidth());
  }
  const ModelConfig& m = decoder.config();
  const double step_mb = static_cast<double>(decoder.step_weight_bytes()) / 1e6;
  // A step reads the weights once for the whole batch: the floor of the batch's tokens/s is
  // batch × (copy bandwidth / weight bytes).
  const double bw = median(bandwidth);
  const double floor = static_cast<double>(batch) * bw / static_cast<double>(decoder.step_weight_bytes());
  const std::string gpu = cuda_devices().empty() ? "" : cuda_devices().front().name;
  fmt::print("bench decode: {} parameters (layers {}, width {}, heads {}, vocab {}, context {}) on {}\n",
             param_count(m), m.n_layer, m.n_embd, m.n_head, m.vocab_size, m.context, gpu);
  fmt::print("  weights {} (activations and KV cache {}), {:.1f} MB read per step of {} sequence{}; copy bandwidth "
             "{:.2f} TB/s, so at most {:.0f} tokens/s\n",
             decoder.weight_format(), to_string(precision), step_mb, batch, batch == 1 ? "" : "s", bw / 1e12, floor);
  fmt::print("  prompt {} tokens: {:.0f} tokens/s, first token after {:.2f} ms (median of {})\n", shape.prompt,
             median(pp), median(ttft), shape.reps);
  const double tg = median(modes[0].tokens_per_s);
  const auto ms_per_token = [&](double tps) { return 1e3 * static_cast<double>(batch) / tps; };  // per sequence
  if (batch == 1)
    fmt::print("  generate {} tokens after {}: {:.0f} tokens/s ({:.0f}% of the floor); {:.0f} without CUDA graphs\n",
               shape.gen, shape.depth, tg, 100.0 * tg / floor, median(modes[1].tokens_per_s));
  else
    fmt::print("  generate {} tokens after {} in each of {} sequences: {:.0f} tokens/s together, {:.3f} ms per token "
               "of a sequence ({:.0f}% of the floor); {:.0f} tokens/s without CUDA graphs\n",
               shape.gen, shape.depth, batch, tg, ms_per_token(tg), 100.0 * tg / floor, median(modes[1].tokens_per_s));
  const std::string attention = sparse::summarize_pattern(m.attention);
  fmt::print("  attention {}: KV cache {:.1f} MB\n", attention, static_cast<double>(decoder.kv_cache_bytes()) / 1e6);
  // The CSV has no quoting: the summary's commas become semicolons.
  std::string attention_cell = attention;
  std::replace(attention_cell.begin(), attention_cell.end(), ',', ';');
  // tokens_per_s: all sequences together; ms: a step, i.e. a token of each sequence.
  std::string csv =
      "device,gpu,weights,precision,test,tokens,depth,tokens_per_s,ms,step_mb,copy_gb_per_s,floor_tokens_per_s,"
      "attention,kv_cache_bytes,batch\n";
  const auto row = [&](const std::string& test, std::size_t tokens, std::size_t depth, double tps, double ms,
                       std::size_t sequences) {
    csv += fmt::format("cuda,{},{},{},{},{},{},{:.1f},{:.3f},{:.3f},{:.1f},{:.1f},{},{},{}\n", gpu,
                       decoder.weight_format(), to_string(precision), test, tokens, depth, tps, ms, step_mb, bw / 1e9,
                       floor, attention_cell, decoder.kv_cache_bytes(), sequences);
  };
  row("pp", shape.prompt, 0, median(pp), median(ttft), 1);  // one sequence's prompt
  for (const Mode& mode : modes)
    row(mode.test, shape.gen, shape.depth, median(mode.tokens_per_s), ms_per_token(median(mode.tokens_per_s)), batch);
  if (shape.profile) {
    // The step kernel's phases by the device clock, the sampler's kernels by events.
    decoder.use_graphs(false);
    prefill_all(shape.depth);
    const std::vector<CudaDecoder::KernelTime> kernels = decoder.profile(shape.gen);
    double total = 0;
    for (const auto& k : kernels) total += k.us;
    fmt::print("  where a token's {:.1f} us go, phase by phase ({} tokens after {}; floor = bytes / copy bandwidth):\n",
               total, shape.gen, shape.depth);
    fmt::print("    {:<18} {:>9} {:>7} {:>10} {:>9} {:>8}\n", "phase", "us/token", "calls", "MB/token", "floor us",
               "share");
    for (const auto& k : kernels) {
      const double floor_us = static_cast<double>(k.bytes) / bw * 1e6;
      fmt::print("    {:<18} {:>9.1f} {:>7} {:>10.2f} {:>9.1f} {:>7.0f}%\n", k.name, k.us, k.calls,
                 static_cast<double>(k.bytes) / 1e6, floor_us, 100.0 * k.us / total);
      row("kernel:" + k.name, shape.gen, shape.depth, 1e6 / k.us, k.us / 1e3, batch);
    }
  }
  if (output) write_file_atomic(*output, csv);
}

}  // namespace minitx::cli
