// minitx logits: the logits at every position of a list of ids, for checking a model against
// other implementations (transformers, llama.cpp) number for number.
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/gpt.h"

namespace minitx::cli {

int run_logits(Args& args) {
  const fs::path model_path = args.required("--model");
  const std::vector<std::uint32_t> ids = ids_from_text(args.required("--ids"), "logits: --ids");
  const fs::path output = args.required("--output");
  args.done();
  const InferenceModel model = load_inference_model(model_path);
  const ModelConfig& m = model.config;
  MINITX_CHECK(!ids.empty(), "logits: --ids is empty: give at least one token id");
  MINITX_CHECK(ids.size() <= m.context, "logits: {} ids do not fit the model's context of {}", ids.size(), m.context);
  check_token_ids(ids.data(), ids.size(), m, "logits: --ids");
  const std::size_t T = ids.size(), V = m.vocab_size;
  GptActivations acts(m, 1, T, false);
  gpt_forward(model.weights, acts, ids.data(), 1, T);
  std::vector<float> logits(T * V);
  gpt_logits(model.weights, logits.data(), acts.lnf, T);
  // {:.9g} reads back to the same float.
  std::string csv = "position,id";
  for (std::size_t v = 0; v < V; ++v) csv += fmt::format(",l{}", v);
  csv += '\n';
  for (std::size_t t = 0; t < T; ++t) {
    csv += fmt::format("{},{}", t, ids[t]);
    for (std::size_t v = 0; v < V; ++v) csv += fmt::format(",{:.9g}", logits[t * V + v]);
    csv += '\n';
  }
  write_file_atomic(output, csv);
  fmt::print("logits: {} positions x {} logits of {} -> {}\n", T, V, model_path.string(), output.string());
  return 0;
}

}  // namespace minitx::cli
