// minitx import / export: Hugging Face checkpoints (GPT-2, OPT, GPT-NeoX) to and from minitx
// checkpoints, through the tensor table's one name mapping (model/hf_import.h).
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/hf_import.h"
#include "minitx/model/params.h"

namespace minitx::cli {

int run_import(Args& args) {
  const fs::path from = args.required("--from");
  const fs::path output = args.required("--output");
  const auto tokenizer_output = args.option("--tokenizer-output");
  args.done();
  HfModel hf = import_hf(from);
  Checkpoint ck;
  ck.config = hf.config;
  ck.tokenizer_sha256 = hf.tokenizer_json.empty() ? kNoTokenizer : sha256_hex(hf.tokenizer_json);
  ck.params = std::move(hf.params);
  std::string tokenizer_note = "no tokenizer.json: the model works on token ids";
  if (!hf.tokenizer_json.empty()) {
    // Beside the checkpoint, so that generate and eval find the tokenizer it was made with.
    const fs::path tok = tokenizer_output.value_or(
        (output.parent_path() / (output.stem().string() + ".tokenizer.json")).string());
    write_file_atomic(tok, hf.tokenizer_json);
    tokenizer_note = fmt::format("tokenizer {} ({} tokens)", tok.string(), ck.config.tokens());
  } else if (tokenizer_output) {
    fail("import: --tokenizer-output given, but {} has no tokenizer.json", from.string());
  }
  write_checkpoint(output, ck);
  const ModelConfig& m = ck.config;
  fmt::print("import: {} -> {}: {} parameters (layers {}, width {}, heads {}, context {}, vocab {}, {} positions{}, {}{}{}); {}\n",
             from.string(), output.string(), ck.params.size(), m.n_layer, m.n_embd, m.n_head, m.context, m.vocab_size,
             to_string(m.position), m.position == ModelConfig::Position::rotary ? fmt::format(" on {} dims", m.rotary_dims()) : "",
             to_string(m.activation), m.parallel_residual ? ", parallel residual" : "", m.tied_head ? "" : ", untied head",
             tokenizer_note);
  return 0;
}

int run_export(Args& args) {
  const fs::path model_path = args.required("--model");
  const fs::path to = args.required("--to");
  const auto tokenizer = args.option("--tokenizer");
  args.done();
  const Checkpoint ck = read_checkpoint(model_path);
  std::string tokenizer_json;
  if (tokenizer) {
    tokenizer_json = read_file(*tokenizer);
    if (ck.tokenizer_sha256 != kNoTokenizer && sha256_hex(tokenizer_json) != ck.tokenizer_sha256)
      fail("export: {} was made with the tokenizer whose SHA-256 is {}, not {} ({})", model_path.string(),
           ck.tokenizer_sha256, *tokenizer, sha256_hex(tokenizer_json));
  }
  export_hf(ck.config, ck.params, tokenizer_json, to);
  fmt::print("export: {} -> {}/ (config.json, model.safetensors{})\n", model_path.string(), to.string(),
             tokenizer ? ", tokenizer.json" : "");
  return 0;
}

}  // namespace minitx::cli
