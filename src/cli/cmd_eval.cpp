// minitx eval: OUT/model.ckpt + OUT/val.bin -> OUT/eval.json (validation loss and perplexity), on
// the CPU (perplexity.h) or the GPU (cuda_eval.h).
#include <fmt/format.h>

#include <cmath>
#include <string>
#include <string_view>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/data/token_file.h"
#include "minitx/infer/cuda_eval.h"
#include "minitx/infer/perplexity.h"
#include "minitx/infer/quant_model.h"

namespace minitx::cli {
namespace {

// JSON has no NaN or infinity: a number that is not finite stops the command rather than
// reaching the file as `nan`, which no JSON reader accepts.
std::string json_fixed(double value, int decimals, std::string_view field, const fs::path& output) {
  if (!std::isfinite(value)) fail("{}: {} is {}, which JSON cannot hold; the file was not written", output.string(), field, value);
  return fmt::format("{:.{}f}", value, decimals);
}

}  // namespace

int run_eval(Args& args) {
  // With --config: the experiment's files. Without: a model file alone (e.g. imported), on
  // the token file --input, in windows of its whole context.
  const std::optional<Experiment> ex = optional_experiment_from_args(args);
  const fs::path checkpoint = ex ? model_path_from_args(args, *ex) : fs::path(args.required("--model"));
  const fs::path input = ex ? args.option("--input").value_or((ex->out_dir / "val.bin").string()) : args.required("--input");
  const auto output = ex ? std::optional<std::string>(args.option("--output").value_or((ex->out_dir / "eval.json").string()))
                         : args.option("--output");
  const std::int64_t default_batch = ex ? static_cast<std::int64_t>(ex->train.batch_size) : 8;
  const auto batch = static_cast<std::size_t>(args.integer("--batch-size", 1, 4096, default_batch));
  const bool cuda = resolve_device(args.option("--device").value_or("cpu")) == "cuda";
  // fp32 by default: the loss is the CPU's to rounding, and every head size has a kernel.
  const GpuPrecision precision = parse_gpu_precision(args.option("--precision").value_or("fp32"), "--precision");
  args.done();

  const TokenFile tokens = read_token_file(input);
  const InferenceModel model =
      ex ? load_inference_model(checkpoint, ex->model, ex->config_path.string()) : load_inference_model(checkpoint);
  check_tokenizer_fits(model, checkpoint, tokens.vocab_size, tokens.tokenizer_sha256, input.string());
  const std::size_t seq_len = ex ? ex->train.seq_len : 0;
  const std::size_t T = seq_len == 0 ? model.config.context : std::min(seq_len, model.config.context);
  // The GPU groups windows its own way (cuda_eval.h), so --batch-size is the CPU's alone.
  const EvalResult r =
      cuda ? cuda_evaluate_loss(model.weights, tokens.ids, T, precision) : evaluate_loss(model.weights, tokens.ids, T, batch);
  const std::string where = cuda ? fmt::format("on the GPU in {}", to_string(precision)) : "on the CPU";
  if (!std::isfinite(r.mean_loss()))
    fail("{}: the validation loss over {} tokens of {} is {}: the model's weights hold NaN or infinite values",
         checkpoint.string(), r.tokens, input.string(), r.mean_loss());
  // No time, path or thread count: the file is a deterministic artifact. The GPU's loss is another
  // computation, so its file says where it came from; the CPU's keeps the fields (and the bytes)
  // of earlier releases.
  const std::string device =
      cuda ? fmt::format(",\n  \"device\": \"cuda\",\n  \"precision\": \"{}\"", to_string(precision)) : "";
  if (output)
    write_file_atomic(*output, fmt::format("{{\n  \"checkpoint_step\": {},\n  \"window\": {},\n  \"windows\": {},\n"
                                           "  \"tokens\": {},\n  \"val_loss\": {},\n  \"perplexity\": {}{}\n}}\n",
                                           model.step, T, r.windows, r.tokens,
                                           json_fixed(r.mean_loss(), 6, "val_loss", *output),
                                           json_fixed(r.perplexity(), 4, "perplexity", *output), device));
  fmt::print("eval: {} tokens of {} {}: loss {:.4f} nats/token, perplexity {:.2f} -> {}\n", r.tokens, input.string(),
             where, r.mean_loss(), r.perplexity(), output.value_or("(no file)"));
  return 0;
}

}  // namespace minitx::cli
