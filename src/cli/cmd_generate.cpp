// minitx generate: text from OUT/model.ckpt and OUT/tokenizer.json, with or without the KV cache.
#include <fmt/format.h>

#include <cstdio>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/infer/generate.h"
#include "minitx/infer/quant_model.h"
#include "minitx/tokenizer/tokenizer.h"

namespace minitx::cli {

int run_generate(Args& args) {
  // With --config: the experiment's model and tokenizer. Without: --model and --tokenizer.
  const std::optional<Experiment> ex = optional_experiment_from_args(args);
  const fs::path checkpoint = ex ? model_path_from_args(args, *ex) : fs::path(args.required("--model"));
  const fs::path tokenizer_path =
      ex ? args.option("--tokenizer").value_or((ex->out_dir / "tokenizer.json").string()) : args.required("--tokenizer");
  const std::string prompt = args.required("--prompt");
  GenerateOptions options;
  options.max_new = static_cast<std::size_t>(args.integer("--max-new", 1, 1 << 24, 200));
  options.sampling.temperature = args.number("--temperature", 0.0, 100.0, 0.8);
  options.sampling.top_k = static_cast<std::size_t>(args.integer("--top-k", 0, 1 << 24, 0));
  options.sampling.top_p = args.number("--top-p", 0.0, 1.0, 1.0);
  options.sampling.seed = static_cast<std::uint64_t>(args.integer("--seed", 0, INT64_MAX, 0));
  options.use_cache = !args.flag("--no-cache");
  options.policy = parse_context_policy(args.option("--context-policy").value_or("stop"), "--context-policy");
  options.cuda = resolve_device(args.option("--device").value_or("cpu")) == "cuda";
  options.precision = parse_gpu_precision(args.option("--precision").value_or("bf16"), "--precision");
  args.done();

  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  const InferenceModel model =
      ex ? load_inference_model(checkpoint, ex->model, ex->config_path.string()) : load_inference_model(checkpoint);
  check_tokenizer_fits(model, checkpoint, tokenizer.vocab_size(), sha256_file_hex(tokenizer_path), tokenizer_path.string());
  const std::vector<std::uint32_t> ids = tokenizer.encode(prompt);
  if (ids.size() > model.config.context)
    fail("generate: the prompt is {} tokens long, more than the model's context of {} tokens", ids.size(),
         model.config.context);
  std::fputs(prompt.c_str(), stdout);
  flush_stdout();
  // Decode the growing sequence and print what is new, so multi-token characters come out whole.
  std::vector<std::uint32_t> generated;
  std::string shown;
  const GenerateResult r = generate(model.weights, ids, options, [&](std::uint32_t id) {
    generated.push_back(id);
    const std::string text = tokenizer.decode(generated);
    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
      std::fputs(text.c_str() + shown.size(), stdout);
      flush_stdout();
      shown = text;
    }
  });
  std::fputc('\n', stdout);
  flush_stdout();
  double total = 0;
  for (double s : r.step_seconds) total += s;
  const std::string context_note = r.hit_context ? "; stopped at the context length"
                                   : r.shifts > 0
                                       ? fmt::format("; the window slid {} time{}", r.shifts, r.shifts == 1 ? "" : "s")
                                       : "";
  fmt::print(stderr, "generate: {} prompt tokens, {} new tokens in {:.3f} s ({:.1f} tokens/s, {}){}\n", ids.size(),
             r.tokens.size(), total, static_cast<double>(r.tokens.size()) / total,
             options.use_cache ? (options.cuda ? "KV cache on the GPU" : "KV cache") : "no cache, recomputing the prefix",
             context_note);
  return 0;
}

}  // namespace minitx::cli
