#include "minitx/infer/generate.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "minitx/core/error.h"
#include "minitx/infer/cuda_decoder.h"
#include "minitx/infer/decoder.h"

namespace minitx {

GenerateResult generate(const GptModel& model, const std::vector<std::uint32_t>& prompt, const GenerateOptions& options,
                        const std::function<void(std::uint32_t)>& on_token) {
  return generate(weights_of(model), prompt, options, on_token);
}

namespace {

// The next token from a decoder on either device: what generate's loop asks for. `draw` is the
// sampler's index (the number of tokens generated before this one).
class NextToken {
 public:
  virtual ~NextToken() = default;
  // Token after `ids` (n of them) from a fresh start: a prefill, or a recomputation without the cache.
  virtual std::uint32_t after(const std::uint32_t* ids, std::size_t n, std::uint64_t draw) = 0;
  // Token after one more: `last`, the token the previous call returned.
  virtual std::uint32_t after_step(std::uint32_t last, std::uint64_t draw) = 0;
};

class CpuNextToken final : public NextToken {
 public:
  CpuNextToken(const GptWeights& w, const GenerateOptions& o) : decoder_(w), options_(o), tokens_(w.config.tokens()) {}
  std::uint32_t after(const std::uint32_t* ids, std::size_t n, std::uint64_t draw) override {
    return pick(options_.use_cache ? decoder_.prefill(ids, n) : decoder_.logits_recompute(ids, n), draw);
  }
  std::uint32_t after_step(std::uint32_t last, std::uint64_t draw) override { return pick(decoder_.step(last), draw); }

 private:
  std::uint32_t pick(const std::vector<float>& logits, std::uint64_t draw) const {
    return sample_token(std::span(logits).first(tokens_), options_.sampling, draw);
  }
  Decoder decoder_;
  const GenerateOptions& options_;
  std::size_t tokens_;
};

// The GPU's decoder samples on the device: only the token comes back.
class CudaNextToken final : public NextToken {
 public:
  CudaNextToken(const GptWeights& w, const GenerateOptions& o)
      : owned_(o.decoder != nullptr ? nullptr : std::make_unique<CudaDecoder>(w, o.precision)),
        decoder_(o.decoder != nullptr ? *o.decoder : *owned_),
        options_(o) {
    const ModelConfig &a = decoder_.config(), &b = w.config;
    MINITX_CHECK(a.n_layer == b.n_layer && a.n_embd == b.n_embd && a.vocab_size == b.vocab_size && a.context == b.context,
                 "generate: the decoder given was built for another model ({} layers, width {}, vocab {}, context {})",
                 a.n_layer, a.n_embd, a.vocab_size, a.context);
    decoder_.use_graphs(o.graphs);
  }
  std::uint32_t after(const std::uint32_t* ids, std::size_t n, std::uint64_t draw) override {
    return decoder_.prefill_sample(ids, n, options_.sampling, draw);
  }
  std::uint32_t after_step(std::uint32_t, std::uint64_t) override { return decoder_.step_sample(1)[0]; }

 private:
  std::unique_ptr<CudaDecoder> owned_;
  CudaDecoder& decoder_;
  const GenerateOptions& options_;
};

}  // namespace

GenerateResult generate(const GptWeights& model, const std::vector<std::uint32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(std::uint32_t)>& on_token) {
  const std::size_t context = model.config.context;
  MINITX_CHECK(!prompt.empty(), "generate: the prompt is empty: at least one token is needed");
  MINITX_CHECK(prompt.size() <= context, "generate: the prompt has {} tokens, more than the model's context of {}",
               prompt.size(), context);
  for (std::uint32_t id : prompt)
    MINITX_CHECK(id < model.config.tokens(), "generate: prompt token {} is outside the vocabulary of {}", id,
                 model.config.tokens());
  std::unique_ptr<NextToken> next_token;
  if (options.cuda) next_token = std::make_unique<CudaNextToken>(model, options);
  else next_token = std::make_unique<CpuNextToken>(model, options);
  std::vector<std::uint32_t> sequence = prompt;
  GenerateResult result;
  const bool slide = options.policy == ContextPolicy::slide;
  const std::size_t room = context - prompt.size() + 1;
  const std::size_t count = slide ? options.max_new : std::min(options.max_new, room);
  result.hit_context = !slide && options.max_new > room;
  const std::size_t keep = std::max<std::size_t>(1, context / 2);
  std::size_t window = 0;  // the model sees sequence[window, end) at positions 0, 1, …
  for (std::size_t i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    bool jumped = false;
    if (sequence.size() - window > context) {  // only under slide: stop never gets here
      window = sequence.size() - keep;
      ++result.shifts;
      jumped = true;
    }
    const std::uint32_t next = !options.use_cache || i == 0 || jumped
                                   ? next_token->after(sequence.data() + window, sequence.size() - window, i)
                                   : next_token->after_step(sequence.back(), i);
    result.step_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    sequence.push_back(next);
    result.tokens.push_back(next);
    if (on_token) on_token(next);
  }
  return result;
}

ContextPolicy parse_context_policy(const std::string& text, const std::string& what) {
  if (text == "stop") return ContextPolicy::stop;
  if (text == "slide") return ContextPolicy::slide;
  fail("{}: expected stop or slide, got '{}'", what, text);
}

}  // namespace minitx
