// minitx bench decode: prompt processing and decoding speed of a config's model shape with
// random weights (the llama.cpp comparison: llama-bench's pp and tg tests at fp32).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "minitx/infer/decoder.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

namespace minitx::cli {

int run_bench_decode(Args& args) {
  Experiment ex = experiment_from_args(args);
  const auto prompt_tokens = static_cast<std::size_t>(args.integer("--prompt", 1, 65536, 128));
  const auto gen_tokens = static_cast<std::size_t>(args.integer("--gen", 1, 65536, 128));
  const auto reps = static_cast<std::size_t>(args.integer("--reps", 1, 100, 3));
  const auto vocab = args.integer("--vocab", 2, 1 << 24, 0);
  const auto output = args.option("--output");
  args.done();
  ex.model.vocab_size = vocab > 0 ? static_cast<std::size_t>(vocab) : ex.tokenizer.trainer.vocab_size;
  if (prompt_tokens + gen_tokens > ex.model.context)
    fail("bench decode: --prompt {} + --gen {} exceed the context of {}", prompt_tokens, gen_tokens, ex.model.context);
  const auto model = random_model(ex.model, 1);
  std::vector<std::uint32_t> prompt(prompt_tokens);
  const CounterRng rng(3, 0);
  for (std::size_t i = 0; i < prompt_tokens; ++i) prompt[i] = static_cast<std::uint32_t>(rng.below(i, ex.model.vocab_size));

  Decoder decoder(*model);
  std::vector<double> pp, tg;
  for (std::size_t rep = 0; rep <= reps; ++rep) {  // rep 0 warms up
    auto start = std::chrono::steady_clock::now();
    decoder.prefill(prompt.data(), prompt.size());
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Decoding: gen_tokens steps after a one-token prompt, as llama-bench's tg test does.
    decoder.prefill(prompt.data(), 1);
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
    }
  }
  std::sort(pp.begin(), pp.end());
  std::sort(tg.begin(), tg.end());
  const double pp_med = pp[pp.size() / 2], tg_med = tg[tg.size() / 2];
  fmt::print("bench decode: {} parameters (layers {}, width {}, heads {}, vocab {}, context {}), {} threads\n",
             param_count(ex.model), ex.model.n_layer, ex.model.n_embd, ex.model.n_head, ex.model.vocab_size,
             ex.model.context, thread_count());
  fmt::print("  prompt {} tokens: {:.0f} tokens/s (median of {})\n", prompt_tokens, pp_med, reps);
  fmt::print("  generate {} tokens: {:.1f} tokens/s (median of {})\n", gen_tokens, tg_med, reps);
  if (output)
    write_file_atomic(*output, fmt::format("test,tokens,threads,tokens_per_s\npp,{},{},{:.1f}\ntg,{},{},{:.1f}\n",
                                           prompt_tokens, thread_count(), pp_med, gen_tokens, thread_count(), tg_med));
  return 0;
}

}  // namespace minitx::cli
