// minitx bench decode: prompt processing and decoding speed of a config's model shape with
// random weights (the llama.cpp comparison: llama-bench's pp and tg tests at fp32). Each
// repetition also times a plain read of the model's parameters (what a decode step streams),
// so the decode figure stands beside the ceiling the memory allowed at that moment. --depth N
// decodes after an N-token prompt instead of one token (llama-bench's -d): what attention over a
// long context costs, and what the KV cache holds there.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "bench_decode_cuda.h"
#include "commands.h"
#include "common.h"
#include "minitx/backend/cpu/gemm.h"
#include "minitx/backend/cpu/membw.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/decoder.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"
#include "minitx/sparse/pattern.h"

namespace minitx::cli {

int run_bench_decode(Args& args) {
  Experiment ex = experiment_from_args(args);
  const auto prompt_tokens = static_cast<std::size_t>(args.integer("--prompt", 1, 65536, 128));
  const auto gen_tokens = static_cast<std::size_t>(args.integer("--gen", 1, 65536, 128));
  const auto reps = static_cast<std::size_t>(args.integer("--reps", 1, 100, 3));
  const auto depth = static_cast<std::size_t>(args.integer("--depth", 1, 1 << 20, 1));
  const auto vocab = args.integer("--vocab", 2, 1 << 24, 0);
  const auto output = args.option("--output");
  const std::string device = resolve_device(args.option("--device").value_or("cpu"));
  const GpuPrecision precision = parse_gpu_precision(args.option("--precision").value_or("bf16"), "--precision");
  const std::string recipe = args.option("--quant").value_or("f32");
  const bool profile = args.flag("--profile");
  const auto batch = static_cast<std::size_t>(args.integer("--batch", 1, static_cast<std::int64_t>(kMaxDecodeSequences), 1));
  args.done();
  ex.model.vocab_size = vocab > 0 ? static_cast<std::size_t>(vocab) : ex.tokenizer.trainer.vocab_size;
  if (prompt_tokens > ex.model.context)
    fail("bench decode: --prompt {} exceeds the context of {}", prompt_tokens, ex.model.context);
  if (depth + gen_tokens > ex.model.context)
    fail("bench decode: --depth {} + --gen {} exceed the context of {}", depth, gen_tokens, ex.model.context);
  const auto model = random_model(ex.model, 1);
  std::vector<std::uint32_t> prompt(std::max(prompt_tokens, depth));
  const CounterRng rng(3, 0);
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::uint32_t>(rng.below(i, ex.model.vocab_size));
  if (device == "cuda") {
    // The batch's other sequences get prompts of their own, of the same length.
    std::vector<std::vector<std::uint32_t>> prompts{prompt};
    for (std::size_t s = 1; s < batch; ++s) {
      const CounterRng other(3, s);
      std::vector<std::uint32_t>& p = prompts.emplace_back(prompt.size());
      for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint32_t>(other.below(i, ex.model.vocab_size));
    }
    bench_decode_cuda(*model, recipe, precision, prompts, {prompt_tokens, gen_tokens, depth, reps, profile, batch},
                      output);
    return 0;
  }
  MINITX_CHECK(!profile, "bench decode: --profile is for --device cuda");
  MINITX_CHECK(batch == 1, "bench decode: --batch {} is for --device cuda (the CPU decodes one sequence)", batch);
  MINITX_CHECK(recipe == "f32", "bench decode: --quant {} is for --device cuda (on the CPU, `bench quant` times the formats)",
               recipe);

  Decoder decoder(*model);
  const std::size_t step_bytes = model->storage.size() * sizeof(float);
  std::vector<double> pp, tg, ceiling;
  for (std::size_t rep = 0; rep <= reps; ++rep) {  // rep 0 warms up
    auto start = std::chrono::steady_clock::now();
    decoder.prefill(prompt.data(), prompt_tokens);
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Decoding: gen_tokens steps after a one-token prompt, as llama-bench's tg test does (or
    // after `depth` tokens).
    decoder.prefill(prompt.data(), depth);
    start = std::chrono::steady_clock::now();
    std::uint32_t next = prompt[0];
    for (std::size_t i = 0; i < gen_tokens; ++i) {
      const auto& logits = decoder.step(next);
      next = static_cast<std::uint32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) {
      pp.push_back(static_cast<double>(prompt_tokens) / prefill_s);
      tg.push_back(static_cast<double>(gen_tokens) / decode_s);
      ceiling.push_back(cpu::read_bandwidth(model->storage.data(), model->storage.size()) * 1e9 /
                        static_cast<double>(step_bytes));
    }
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double pp_med = median(pp), tg_med = median(tg), ceiling_med = median(ceiling);
  const double gbs = ceiling_med * static_cast<double>(step_bytes) / 1e9;
  fmt::print("bench decode: {} parameters (layers {}, width {}, heads {}, vocab {}, context {}), {} threads\n",
             param_count(ex.model), ex.model.n_layer, ex.model.n_embd, ex.model.n_head, ex.model.vocab_size,
             ex.model.context, thread_count());
  const char* kernel = cpu::gemm_isa_name(cpu::gemm_isa());
  fmt::print("  prompt {} tokens: {:.0f} tokens/s (median of {}; {} matrix kernel)\n", prompt_tokens, pp_med, reps,
             kernel);
  fmt::print("  generate {} tokens after {}: {:.1f} tokens/s (median of {}); KV cache {:.1f} MB ({})\n", gen_tokens,
             depth, tg_med, reps, static_cast<double>(decoder.kv_cache_bytes()) / 1e6,
             sparse::summarize_pattern(ex.model.attention));
  fmt::print("  memory read: {:.1f} GB/s, so at most {:.0f} tokens/s streaming {:.1f} MB per token; decode reached {:.0f}%\n",
             gbs, ceiling_med, static_cast<double>(step_bytes) / 1e6, 100.0 * tg_med / ceiling_med);
  if (output)
    write_file_atomic(*output,
                      fmt::format("test,tokens,threads,gemm_kernel,tokens_per_s,read_gb_per_s,ceiling_tokens_per_s,"
                                  "depth,attention,kv_cache_bytes\n"
                                  "pp,{},{},{},{:.1f},,,0,{},\ntg,{},{},{},{:.1f},{:.1f},{:.1f},{},{},{}\n",
                                  prompt_tokens, thread_count(), kernel, pp_med, sparse::to_string(ex.model.attention.kind),
                                  gen_tokens, thread_count(), kernel, tg_med, gbs, ceiling_med, depth,
                                  sparse::to_string(ex.model.attention.kind), decoder.kv_cache_bytes()));
  return 0;
}

}  // namespace minitx::cli
