// Hugging Face checkpoints in and out: a directory with config.json, model.safetensors (or
// model.safetensors.index.json and its shards) and, optionally, tokenizer.json, read into the
// tensor table of minitx/model/params.h — and written back so that transformers loads it.
//
// The name mapping is derived from the tensor table: every table entry of the architecture has
// its Hugging Face source(s), and every tensor of the file must be used (buffers transformers
// recomputes, such as attention masks and rotary frequencies, aside). Layout changes:
//   GPT-2     Conv1D weights are stored (in, out): transposed
//   OPT       q_proj, k_proj, v_proj are stacked into qkvw (and their biases into qkvb); the
//             position table has 2 rows before position 0
//   GPT-NeoX  query_key_value interleaves heads: rows (h, [q|k|v], d) become ([q|k|v], h, d)
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "minitx/model/config.h"
#include "minitx/model/hf_config.h"

namespace minitx {

struct HfModel {
  ModelConfig config;
  std::vector<float> params;   // param_count(config) floats in the tensor table's order
  std::string tokenizer_json;  // the directory's tokenizer.json, or empty
};

// The architecture a Hugging Face config describes; `tokens` is the tokenizer's size (0 when
// there is none: every row of the embedding is a token).
ModelConfig model_config_from_hf(const HfConfig& hf, std::size_t tokens, const std::string& where);
// The Hugging Face config of an architecture; an architecture no family here expresses is an
// error naming what does not fit.
HfConfig hf_config_from_model(const ModelConfig& config);

HfModel import_hf(const std::filesystem::path& dir);
// Writes config.json, model.safetensors and (when given) tokenizer.json into `dir`, each file
// atomically; `params` in the tensor table's order.
void export_hf(const ModelConfig& config, const std::vector<float>& params, const std::string& tokenizer_json,
               const std::filesystem::path& dir);

}  // namespace minitx
