#include "minitx/model/load.h"

#include "minitx/core/error.h"
#include "minitx/model/params.h"

namespace minitx {

namespace {

std::unique_ptr<GptModel> model_of(Checkpoint ck, Checkpoint* header_out) {
  const ModelConfig& c = ck.config;
  auto model = std::make_unique<GptModel>(c);
  model->storage = std::move(ck.params);
  model->params = bind_params(model->data(), c);
  if (header_out != nullptr) {
    *header_out = std::move(ck);
    header_out->params.clear();
  }
  return model;
}

}  // namespace

std::unique_ptr<GptModel> load_model(const std::filesystem::path& path, const ModelConfig& config,
                                     const std::string& config_name, Checkpoint* header_out) {
  Checkpoint ck = read_checkpoint(path);
  check_architecture_fits(ck.config, config, path.string() + ": the checkpoint's model", config_name);
  return model_of(std::move(ck), header_out);
}

std::unique_ptr<GptModel> load_model(const std::filesystem::path& path, Checkpoint* header_out) {
  return model_of(read_checkpoint(path), header_out);
}

void check_architecture_fits(const ModelConfig& model, const ModelConfig& config, const std::string& what,
                             const std::string& config_name) {
  ModelConfig expected = config;  // the vocabulary comes from the tokenizer, not from [model]
  expected.vocab_size = model.vocab_size;
  expected.vocab_tokens = model.vocab_tokens;
  if (!same_architecture(model, expected))
    fail("{} ({}) does not fit [model] in {} ({})", what, summarize_architecture(model), config_name,
         summarize_architecture(expected));
}

void check_tokenizer_fits(const Checkpoint& ck, const std::filesystem::path& path, std::uint32_t vocab_size,
                          const std::string& tokenizer_sha256, const std::string& source) {
  if (ck.config.vocab_size != vocab_size)
    fail("{}: the checkpoint has a vocabulary of {} tokens, but {} has {}", path.string(), ck.config.vocab_size, source,
         vocab_size);
  if (ck.tokenizer_sha256 != tokenizer_sha256)
    fail("{}: trained with the tokenizer whose SHA-256 is {}, but {} comes from {}", path.string(), ck.tokenizer_sha256,
         source, tokenizer_sha256);
}

std::unique_ptr<GptModel> random_model(const ModelConfig& config, std::uint64_t seed) {
  config.validate("[model]");
  auto model = std::make_unique<GptModel>(config);
  init_params(model->data(), config, seed);
  return model;
}

}  // namespace minitx
