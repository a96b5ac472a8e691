// minitx attention-map: the attention probabilities of one layer, every head, over a text — what
// a trained model looks at, and what a sparse pattern leaves it (the study's heatmaps).
#include <fmt/format.h>

#include <span>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/gpt.h"
#include "minitx/sparse/pattern.h"
#include "minitx/tokenizer/tokenizer.h"

namespace minitx::cli {

int run_attention_map(Args& args) {
  const fs::path model_path = args.required("--model");
  const fs::path tokenizer_path = args.required("--tokenizer");
  const std::string text = args.required("--text");
  const auto layer = static_cast<std::size_t>(args.integer("--layer", 0, 4095, 0));
  const fs::path output = args.required("--output");
  args.done();
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  const InferenceModel model = load_inference_model(model_path);
  check_tokenizer_fits(model, model_path, tokenizer.vocab_size(), sha256_file_hex(tokenizer_path),
                       tokenizer_path.string());
  const ModelConfig& m = model.config;
  MINITX_CHECK(layer < m.n_layer, "attention-map: --layer {} does not exist: the model has layers 0..{}", layer,
               m.n_layer - 1);
  const std::vector<std::uint32_t> ids = tokenizer.encode(text);
  MINITX_CHECK(!ids.empty(), "attention-map: --text encodes to no token");
  MINITX_CHECK(ids.size() <= m.context, "attention-map: --text is {} tokens, more than the model's context of {}",
               ids.size(), m.context);
  const std::size_t T = ids.size(), NH = m.n_head;
  // The CPU forward keeps each layer's probabilities (NH, T, T) for its backward: read them there.
  GptActivations acts(m, 1, T, true);
  gpt_forward(model.weights, acts, ids.data(), 1, T);
  const float* att = acts.att + layer * acts.s_att;
  std::string csv = "head,query,key,query_token,key_token,probability\n";
  std::vector<std::string> pieces;
  for (std::uint32_t id : ids) {
    std::string piece = tokenizer.decode(std::span<const std::uint32_t>(&id, 1));
    // A token as a CSV field: no commas, quotes or line breaks, so a plot can label axes with it.
    for (char& c : piece)
      if (c == ',' || c == '"' || c == '\n' || c == '\r') c = ' ';
    pieces.push_back(piece);
  }
  for (std::size_t h = 0; h < NH; ++h)
    for (std::size_t q = 0; q < T; ++q)
      for (std::size_t k = 0; k <= q; ++k)
        csv += fmt::format("{},{},{},{},{},{:.6g}\n", h, q, k, pieces[q], pieces[k], att[(h * T + q) * T + k]);
  write_file_atomic(output, csv);
  fmt::print("attention-map: layer {} of {} ({} attention), {} heads over {} tokens -> {}\n", layer,
             model_path.string(), sparse::summarize_pattern(m.attention), NH, T, output.string());
  return 0;
}

}  // namespace minitx::cli
