#include "minitx/model/load.h"

#include "minitx/core/error.h"
#include "minitx/model/params.h"

namespace minitx {

std::unique_ptr<GptModel> load_model(const std::filesystem::path& path, const ModelConfig& config,
                                     const std::string& config_name, Checkpoint* header_out) {
  Checkpoint ck = read_checkpoint(path);
  const ModelConfig& c = ck.config;
  if (c.n_layer != config.n_layer || c.n_embd != config.n_embd || c.n_head != config.n_head ||
      c.context != config.context)
    fail("{}: the checkpoint's model (n_layer {}, n_embd {}, n_head {}, context {}) does not fit [model] in {} "
         "(n_layer {}, n_embd {}, n_head {}, context {})",
         path.string(), c.n_layer, c.n_embd, c.n_head, c.context, config_name, config.n_layer, config.n_embd,
         config.n_head, config.context);
  auto model = std::make_unique<GptModel>(c);
  model->storage = std::move(ck.params);
  model->params = bind_params(model->data(), c);
  if (header_out != nullptr) {
    *header_out = std::move(ck);
    header_out->params.clear();
  }
  return model;
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
