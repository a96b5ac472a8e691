// minitx bench quant: what quantization trades, one row per format (f32, q8_0, q4_0, q4_mix):
//   --quality FILE  file bytes, ratio to fp32, bits per parameter, validation perplexity and
//                   its change from fp32 (deterministic: the same bits on every run), evaluated
//                   on the CPU or, where --device resolves to cuda, on the GPU in fp32
//   --speed FILE    prompt and decode tokens/s at batch 1 (timings), on the CPU and/or the GPU
//                   (--device), the GPU's beside its memory floor
// The models are OUT/model-<format>.mtq (written by `minitx quantize`); with --random the
// config's shape gets random weights quantized in memory instead (speed and sizes only).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>

#include "bench_quant_cuda.h"
#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "minitx/data/token_file.h"
#include "minitx/infer/cuda_eval.h"
#include "minitx/infer/decoder.h"
#include "minitx/infer/perplexity.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"
#include "minitx/model/train_engine.h"

namespace minitx::cli {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = text.find(',', pos);
    parts.push_back(text.substr(pos, end - pos));
    if (end == std::string::npos) return parts;
    pos = end + 1;
  }
}

// The name a format gets in the tables: the fp32 file is the f32 recipe.
std::string row_name(const std::string& format) { return format == "f32" ? "fp32" : format; }

struct Loaded {
  std::string format;
  std::uint64_t bytes = 0;
  InferenceModel model;
};

// The CPU's speed of each model: a prefill of the prompt test, then, as llama-bench's tg test,
// gen tokens after a one-token prompt (shape.depth is 1). Repetitions outermost, formats inside,
// so a burst of load on the shared machine hits every format rather than one; repetition 0
// warms up. Medians are reported.
std::vector<FormatSpeed> time_formats_cpu(const std::vector<Loaded>& models, const std::vector<std::uint32_t>& ids,
                                          const SpeedShape& shape) {
  std::vector<std::unique_ptr<Decoder>> decoders;
  for (const Loaded& x : models) decoders.push_back(std::make_unique<Decoder>(x.model.weights));
  std::vector<std::vector<double>> pp(models.size()), tg(models.size());
  for (std::size_t rep = 0; rep <= shape.reps; ++rep)
    for (std::size_t i = 0; i < models.size(); ++i) {
      Decoder& d = *decoders[i];
      auto start = std::chrono::steady_clock::now();
      d.prefill(ids.data(), shape.prompt);
      const double prefill_s = seconds_since(start);
      d.prefill(ids.data(), shape.depth);
      start = std::chrono::steady_clock::now();
      std::uint32_t next = ids[shape.depth - 1];
      for (std::size_t k = 0; k < shape.gen; ++k) {
        const auto& logits = d.step(next);
        next = static_cast<std::uint32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      const double decode_s = seconds_since(start);
      if (rep > 0) {
        pp[i].push_back(static_cast<double>(shape.prompt) / prefill_s);
        tg[i].push_back(static_cast<double>(shape.gen) / decode_s);
      }
    }
  std::vector<FormatSpeed> out;
  for (std::size_t i = 0; i < models.size(); ++i) out.push_back({median(pp[i]), median(tg[i]), 0.0});
  return out;
}
}  // namespace

int run_bench_quant(Args& args) {
  Experiment ex = experiment_from_args(args);
  const auto formats = split_list(args.option("--formats").value_or("f32,q8_0,q4_0,q4_mix"));
  const auto quality = args.option("--quality");
  const auto speed = args.option("--speed");
  const fs::path val = args.option("--input").value_or((ex.out_dir / "val.bin").string());
  const auto batch = static_cast<std::size_t>(args.integer("--batch-size", 1, 4096, static_cast<std::int64_t>(ex.train.batch_size)));
  // 128 and 128 (llama-bench's pp128 and tg128) unless the context is shorter.
  const auto ctx = static_cast<std::int64_t>(ex.model.context);
  const auto prompt_tokens = static_cast<std::size_t>(args.integer("--prompt", 1, 65536, std::min<std::int64_t>(128, ctx)));
  const auto gen_tokens = static_cast<std::size_t>(args.integer("--gen", 1, 65536, std::min<std::int64_t>(128, ctx - 1)));
  const auto reps = static_cast<std::size_t>(args.integer("--reps", 1, 100, 5));
  const bool random = args.flag("--random");
  const double share = args.number("--q8-share", 0.0, 1.0, 0.25);
  const bool quiet = args.flag("--quiet");
  const std::string device_arg = args.option("--device").value_or("cpu");
  const std::vector<std::string> devices = resolve_bench_devices(device_arg);
  // Perplexity is one computation, so it runs on one device: auto's GPU where there is one (as
  // eval's does). fp32 there: bf16's rounding of the weights would blur q8_0's 0.02%.
  const bool quality_on_gpu = resolve_device(device_arg) == "cuda";
  const std::optional<std::string> precision_option = args.option("--precision");
  args.done();
  MINITX_CHECK(quality || speed, "bench quant: nothing to do: give --quality FILE and/or --speed FILE");
  MINITX_CHECK(!(random && quality), "bench quant: --random models have no perplexity to report (use --speed)");
  MINITX_CHECK(std::find(formats.begin(), formats.end(), "f32") != formats.end(),
               "bench quant: --formats must include f32, the baseline of the ratios");
  for (const std::string& f : formats) (void)quant::recipe_by_name(f);

  // The models, each as its file would be: read from OUT, or made in memory.
  std::vector<Loaded> models;
  std::unique_ptr<GptModel> random_fp32;
  if (random) {
    ex.model.vocab_size = ex.tokenizer.trainer.vocab_size;
    random_fp32 = random_model(ex.model, 1);
  }
  for (const std::string& f : formats) {
    Loaded x;
    x.format = f;
    if (!random) {
      const fs::path path = ex.out_dir / fmt::format("model-{}.mtq", f);
      x.model = load_inference_model(path, ex.model, ex.config_path.string());
      MINITX_CHECK(x.model.quant != nullptr, "bench quant: {} is not a quantized model file", path.string());
      MINITX_CHECK(x.model.format == f, "bench quant: {} holds recipe {}, expected {}", path.string(), x.model.format, f);
      x.bytes = fs::file_size(path);
    } else {
      quant::Recipe recipe = quant::recipe_by_name(f);
      if (f == "q4_mix") {
        const std::size_t T = std::min<std::size_t>(ex.model.context, 256);
        std::vector<std::uint32_t> ids(T);
        const CounterRng rng(5, 0);
        for (std::size_t i = 0; i < T; ++i) ids[i] = static_cast<std::uint32_t>(rng.below(i, ex.model.vocab_size));
        std::vector<std::string> patterns = quant::kEmbeddingPatterns;
        for (const std::string& t : choose_q8_tensors(measure_sensitivity(*random_fp32, ids, T, 1, quant::Format::q4_0), share))
          patterns.push_back(t);
        recipe = quant::recipe_by_name(f, patterns);
      }
      quant::QuantFile file = quantize_model(*random_fp32, recipe, {std::string(64, '0'), 0, f});
      x.bytes = quant::encode_quant_file(file).size();
      x.model.quant = make_quant_model(std::move(file), f);
      x.model.weights = x.model.quant->weights;
      x.model.config = x.model.quant->config;
      x.model.format = f;
    }
    models.push_back(std::move(x));
  }
  const std::size_t params = param_count(models.front().model.config);
  // The GPU's default is training's: bf16 where the prefill's attention kernel takes the head
  // size, fp32 otherwise.
  const GpuPrecision precision = parse_gpu_precision(
      precision_option.value_or(default_precision(models.front().model.config, "cuda")), "--precision");
  std::uint64_t fp32_bytes = 0;
  for (const Loaded& x : models)
    if (x.format == "f32") fp32_bytes = x.bytes;
  const auto ratio = [&](std::uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(fp32_bytes); };

  if (quality) {
    const TokenFile tokens = read_token_file(val);
    std::map<std::string, EvalResult> results;
    for (const Loaded& x : models) {
      check_tokenizer_fits(x.model, ex.out_dir / fmt::format("model-{}.mtq", x.format), tokens.vocab_size,
                           tokens.tokenizer_sha256, val.string());
      const std::size_t T = ex.train.seq_len == 0 ? x.model.config.context : std::min(ex.train.seq_len, x.model.config.context);
      const auto start = std::chrono::steady_clock::now();
      results[x.format] = quality_on_gpu ? cuda_evaluate_loss(x.model.weights, tokens.ids, T, GpuPrecision::fp32)
                                         : evaluate_loss(x.model.weights, tokens.ids, T, batch);
      if (!quiet)
        fmt::print("bench quant: {:<7} perplexity {:.4f} ({} tokens, {:.1f} s)\n", row_name(x.format),
                   results[x.format].perplexity(), results[x.format].tokens,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const double base = results["f32"].perplexity();
    // No time, host or thread count: a deterministic artifact.
    // The last column says where the losses were computed: the two devices agree to rounding,
    // not to the bit.
    const char* evaluated_on = quality_on_gpu ? "cuda-fp32" : "cpu";
    std::string csv = "format,bytes,ratio_to_fp32,bits_per_param,val_loss,perplexity,dppl,dppl_pct,evaluated_on\n";
    for (const Loaded& x : models) {
      const EvalResult& r = results[x.format];
      csv += fmt::format("{},{},{:.4f},{:.3f},{:.6f},{:.4f},{:.4f},{:.3f},{}\n", row_name(x.format), x.bytes,
                         ratio(x.bytes), 8.0 * static_cast<double>(x.bytes) / static_cast<double>(params), r.mean_loss(),
                         r.perplexity(), r.perplexity() - base, 100.0 * (r.perplexity() - base) / base, evaluated_on);
    }
    write_file_atomic(*quality, csv);
    if (!quiet) fmt::print("{}-> {}\n", csv, *quality);
  }

  if (speed) {
    const ModelConfig& m = models.front().model.config;
    if (prompt_tokens > m.context || gen_tokens + 1 > m.context)
      fail("bench quant: --prompt {} and --gen {} must fit the context of {}", prompt_tokens, gen_tokens, m.context);
    const SpeedShape cpu_shape{prompt_tokens, 1, gen_tokens, reps};
    // The GPU decodes the shape: 512 tokens after a 16-token prompt, or what the context leaves.
    const std::size_t depth = std::min<std::size_t>(16, m.context - 1);
    const SpeedShape gpu_shape{prompt_tokens, depth, std::min<std::size_t>(512, m.context - depth), reps};
    std::vector<std::uint32_t> ids(std::max(prompt_tokens, depth));
    const CounterRng rng(3, 0);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::uint32_t>(rng.below(i, m.vocab_size));
    std::string csv =
        "device,format,bytes,ratio_to_fp32,threads,prompt_tokens,prompt_tok_s,prompt_speedup,depth,gen_tokens,"
        "decode_tok_s,decode_speedup,floor_tok_s\n";
    // A block of rows per device, speedups over that device's fp32 file; the CPU's thread count, the
    // GPU's floor.
    std::size_t base = 0;
    for (std::size_t i = 0; i < models.size(); ++i)
      if (models[i].format == "f32") base = i;
    for (const std::string& device : devices) {
      const bool gpu = device == "cuda";
      const SpeedShape& shape = gpu ? gpu_shape : cpu_shape;
      std::vector<const GptWeights*> weights;
      for (const Loaded& x : models) weights.push_back(&x.model.weights);
      const std::vector<FormatSpeed> speeds =
          gpu ? time_formats_cuda(weights, precision, ids, shape) : time_formats_cpu(models, ids, shape);
      for (std::size_t i = 0; i < models.size(); ++i) {
        const FormatSpeed& x = speeds[i];
        csv += fmt::format("{},{},{},{:.4f},{},{},{:.1f},{:.2f},{},{},{:.1f},{:.2f},{}\n", device,
                           row_name(models[i].format), models[i].bytes, ratio(models[i].bytes),
                           gpu ? "" : std::to_string(thread_count()), shape.prompt, x.prompt_tok_s,
                           x.prompt_tok_s / speeds[base].prompt_tok_s, shape.depth, shape.gen, x.decode_tok_s,
                           x.decode_tok_s / speeds[base].decode_tok_s,
                           gpu ? fmt::format("{:.1f}", x.floor_tok_s) : "");
      }
    }
    write_file_atomic(*speed, csv);
    const bool on_gpu = std::find(devices.begin(), devices.end(), "cuda") != devices.end();
    if (!quiet)
      fmt::print("bench quant: {} ({} parameters: layers {}, width {}, heads {}, vocab {}, context {}), {} threads{}, "
                 "median of {}:\n{}-> {}\n",
                 random ? "random weights" : ex.out_dir.string(), params, m.n_layer, m.n_embd, m.n_head, m.vocab_size,
                 m.context, thread_count(), on_gpu ? fmt::format(", the GPU in {}", to_string(precision)) : "", reps,
                 csv, *speed);
  }
  return 0;
}

}  // namespace minitx::cli
