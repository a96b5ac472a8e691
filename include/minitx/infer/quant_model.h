// Quantized GPT models: a trained model's parameters converted by a recipe (quant/recipe.h)
// into a quantized model file (quant/file.h, `OUT/model-<recipe>.mtq`), and read back as
// GptWeights (linear.h) for evaluation, generation and benchmarks.
//
// Tensor names come from the tensor table (model/params.h), one tensor per layer so that a
// recipe can give layers different formats: "wte", "wpe", "lnfw", "head", "h.<l>.qkvw", ….
// Vectors are always f32. The metadata is text, one "key value" per line: the first line
// "minitx-gpt 2", then the architecture (describe_architecture), tokenizer_sha256,
// checkpoint_step, recipe, and q8_0_tensors (the matrices a q4_mix recipe kept at 8 bits,
// informative). Format 1 files (GPT-2 only) are refused by name.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "minitx/model/weights.h"
#include "minitx/model/gpt.h"
#include "minitx/quant/file.h"
#include "minitx/quant/recipe.h"

namespace minitx {

struct QuantModelInfo {
  std::string tokenizer_sha256;  // 64 lowercase hex
  std::uint64_t checkpoint_step = 0;
  std::string recipe;  // f32, q8_0, q4_0, q4_mix
};

// The model's parameters under the names above, each in the format the recipe chooses.
quant::QuantFile quantize_model(const GptModel& model, const quant::Recipe& recipe, const QuantModelInfo& info);

// A model read from a quantized file: the file's tensors and the views into them.
struct QuantModel {
  ModelConfig config;
  QuantModelInfo info;
  quant::QuantFile file;
  GptWeights weights;  // points into file.tensors: QuantModel is neither copied nor moved
  QuantModel() = default;
  QuantModel(const QuantModel&) = delete;
  QuantModel& operator=(const QuantModel&) = delete;
};

// Checks the metadata and that every tensor is present with its shape (vectors f32, matrices
// any format) and nothing else is; `name` (the path) is used in messages.
std::unique_ptr<QuantModel> make_quant_model(quant::QuantFile file, const std::string& name);

// True when the file starts with the quantized file's magic, or is cut short inside it (or empty and
// named .mtq): then the quantized reader, not the checkpoint's, says what is wrong.
bool is_quant_file(const std::filesystem::path& path);

// A model for inference from either file kind: a checkpoint (model.ckpt) or a quantized file.
struct InferenceModel {
  std::unique_ptr<GptModel> fp32;     // a checkpoint's parameters
  std::unique_ptr<QuantModel> quant;  // or a quantized file's tensors
  GptWeights weights;
  ModelConfig config;
  std::string tokenizer_sha256;
  std::uint64_t step = 0;
  std::string format;  // "fp32 checkpoint" or the quantized file's recipe
};

// Reads `path` (either kind) and checks its shape against the config's [model] (vocab aside),
// as load_model does for checkpoints.
InferenceModel load_inference_model(const std::filesystem::path& path, const ModelConfig& config,
                                    const std::string& config_name);
// The same without a config: the file's own architecture (an imported model, `--model` alone).
InferenceModel load_inference_model(const std::filesystem::path& path);

// The tokenizer hash of a model made without one (imported with no tokenizer.json): such a
// model works on token ids of any tokenizer whose ids it has rows for.
inline const std::string kNoTokenizer(64, '0');

// Errors unless the model was made with this vocabulary and tokenizer (`source` names the
// token file or tokenizer.json in the message); a model with kNoTokenizer takes any vocabulary
// up to its own.
void check_tokenizer_fits(const InferenceModel& model, const std::filesystem::path& path, std::uint32_t vocab_size,
                          const std::string& tokenizer_sha256, const std::string& source);

// ---- choosing q4_mix's 8-bit exceptions by measurement ------------------------------------

// How much quantizing one layer matrix alone (the rest fp32) changes the model's predictions:
// the mean KL divergence KL(p_fp32 ‖ p_quantized) of the next-token distributions over
// `windows` consecutive windows of T tokens from the start of `ids`, in nats per token.
struct Sensitivity {
  std::string tensor;  // h.<l>.<name>
  std::size_t params;
  double kl;
};
std::vector<Sensitivity> measure_sensitivity(const GptModel& model, const std::vector<std::uint32_t>& ids,
                                             std::size_t T, std::size_t windows, quant::Format format);

// The matrices to keep at q8_0: the most sensitive per parameter first (KL / params, ties by
// name), until they hold `share` of the layer matrices' parameters.
std::vector<std::string> choose_q8_tensors(std::vector<Sensitivity> sensitivity, double share);

// Mean KL(p_ref ‖ p) per token between two sets of logits (N, V), in nats: the measure above,
// exposed for tests and benchmarks.
double mean_kl(const float* ref_logits, const float* logits, std::size_t N, std::size_t V);

}  // namespace minitx
