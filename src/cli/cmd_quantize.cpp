// minitx quantize: OUT/model.ckpt -> OUT/model-<recipe>.mtq (f32, q8_0, q4_0 or q4_mix).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/data/token_file.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"

namespace minitx::cli {

int run_quantize(Args& args) {
  // With --config: the experiment's files. Without: a checkpoint alone (e.g. imported), with
  // --output (and --calib for q4_mix) given.
  const std::optional<Experiment> ex = optional_experiment_from_args(args);
  const std::string to = args.required("--to");
  const auto model_option = args.option("--model");
  const auto checkpoint_option = args.option("--checkpoint");
  MINITX_CHECK(!(model_option && checkpoint_option), "quantize: give --model or --checkpoint, not both");
  const fs::path checkpoint = model_option ? *model_option
                              : checkpoint_option ? *checkpoint_option
                              : ex ? (ex->out_dir / "model.ckpt").string()
                                   : fail_missing("quantize", "--checkpoint (or --config)");
  const fs::path output = ex ? args.option("--output").value_or((ex->out_dir / fmt::format("model-{}.mtq", to)).string())
                             : args.required("--output");
  const fs::path calib = ex ? args.option("--calib").value_or((ex->out_dir / "train.bin").string())
                            : args.option("--calib").value_or("");
  const auto calib_tokens = static_cast<std::size_t>(args.integer("--calib-tokens", 1, 1 << 24, 4096));
  const double share = args.number("--q8-share", 0.0, 1.0, 0.25);
  const auto sensitivity_csv = args.option("--sensitivity");
  args.done();

  quant::Recipe recipe = quant::recipe_by_name(to);  // rejects unknown names before any work
  Checkpoint header;
  const auto model = ex ? load_model(checkpoint, ex->model, ex->config_path.string(), &header)
                        : load_model(checkpoint, &header);
  if (to == "q4_mix") {
    MINITX_CHECK(!calib.empty(), "quantize: q4_mix measures sensitivity on tokens: give --calib FILE.bin (or --config)");
    // The 8-bit exceptions, by measurement on the start of the training stream (never the
    // validation stream that bench quant reports on).
    const TokenFile tokens = read_token_file(calib);
    // A model imported without a tokenizer takes any ids it has rows for; any other, its own
    // tokenizer's. Either way no id may be past the model's rows, whatever the file's header
    // claims (the model's entry checks every id again).
    if (header.tokenizer_sha256 != kNoTokenizer && tokens.tokenizer_sha256 != header.tokenizer_sha256)
      fail("{}: made with the tokenizer whose SHA-256 is {}, but {} was trained with {}", calib.string(),
           tokens.tokenizer_sha256, checkpoint.string(), header.tokenizer_sha256);
    if (tokens.vocab_size > model->config.tokens())
      fail("{}: holds ids up to {}, but {} has {} token rows", calib.string(), tokens.vocab_size, checkpoint.string(),
           model->config.tokens());
    const std::size_t T = std::min<std::size_t>(model->config.context, 256);
    const std::size_t windows = std::max<std::size_t>(1, std::min(calib_tokens, tokens.ids.size()) / T);
    const auto sens = measure_sensitivity(*model, tokens.ids, T, windows, quant::Format::q4_0);
    const auto chosen = choose_q8_tensors(sens, share);
    std::vector<std::string> patterns = quant::kEmbeddingPatterns;
    patterns.insert(patterns.end(), chosen.begin(), chosen.end());
    recipe = quant::recipe_by_name(to, patterns);
    std::string csv = "tensor,params,kl_q4_0,kl_per_mparam,q8_0\n";
    fmt::print("quantize: sensitivity of each layer matrix alone at q4_0 ({} windows of {} tokens of {}):\n", windows, T,
               calib.string());
    for (const Sensitivity& s : sens) {
      const bool q8 = std::find(chosen.begin(), chosen.end(), s.tensor) != chosen.end();
      const double per = s.kl / static_cast<double>(s.params) * 1e6;
      csv += fmt::format("{},{},{:.6e},{:.6e},{}\n", s.tensor, s.params, s.kl, per, q8 ? 1 : 0);
      fmt::print("  {:<14} {:>9} params  KL {:.3e} nats/token  {:.3e} per M params{}\n", s.tensor, s.params, s.kl, per,
                 q8 ? "  -> q8_0" : "");
    }
    if (sensitivity_csv) write_file_atomic(*sensitivity_csv, csv);
  }
  const quant::QuantFile file = quantize_model(*model, recipe, {header.tokenizer_sha256, header.step, to});
  quant::write_quant_file(output, file);
  const auto bytes = fs::file_size(output);
  const double fp32 = 4.0 * static_cast<double>(param_count(model->config));
  fmt::print("quantize: {} -> {} ({}): {} bytes, {:.3f}x the fp32 parameters, {:.2f} bits per parameter\n",
             checkpoint.string(), output.string(), to, bytes, static_cast<double>(bytes) / fp32,
             8.0 * static_cast<double>(bytes) / static_cast<double>(param_count(model->config)));
  return 0;
}

}  // namespace minitx::cli
