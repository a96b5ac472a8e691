// Loading a trained model for evaluation, generation and benchmarks, with the checks that tie
// a checkpoint to the config and to the token files / tokenizer it is used with.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"

namespace minitx {

// Reads the checkpoint and checks that its shape is the config's [model] (vocab aside, which
// comes from the tokenizer). `config_name` names the config in messages.
std::unique_ptr<GptModel> load_model(const std::filesystem::path& checkpoint, const ModelConfig& config,
                                     const std::string& config_name, Checkpoint* header_out = nullptr);

// The same without a config: the checkpoint's own architecture.
std::unique_ptr<GptModel> load_model(const std::filesystem::path& checkpoint, Checkpoint* header_out = nullptr);

// Errors unless `model` has the architecture of the config's [model] (vocab aside); `what`
// starts the message ("out/model.ckpt: the checkpoint's model").
void check_architecture_fits(const ModelConfig& model, const ModelConfig& config, const std::string& what,
                             const std::string& config_name);

// Errors unless the checkpoint was trained with this vocabulary and tokenizer.
void check_tokenizer_fits(const Checkpoint& checkpoint, const std::filesystem::path& checkpoint_path,
                          std::uint32_t vocab_size, const std::string& tokenizer_sha256, const std::string& source);

// A model with random weights (N(0, init_std)), for speed measurements of a shape.
std::unique_ptr<GptModel> random_model(const ModelConfig& config, std::uint64_t seed);

}  // namespace minitx
