#include "minitx/infer/generate.h"

#include <algorithm>
#include <chrono>

#include "minitx/core/error.h"
#include "minitx/infer/decoder.h"

namespace minitx {

GenerateResult generate(const GptModel& model, const std::vector<std::uint32_t>& prompt, const GenerateOptions& options,
                        const std::function<void(std::uint32_t)>& on_token) {
  return generate(weights_of(model), prompt, options, on_token);
}

GenerateResult generate(const GptWeights& model, const std::vector<std::uint32_t>& prompt,
                        const GenerateOptions& options, const std::function<void(std::uint32_t)>& on_token) {
  const std::size_t context = model.config.context;
  MINITX_CHECK(!prompt.empty(), "generate: the prompt is empty: at least one token is needed");
  MINITX_CHECK(prompt.size() <= context, "generate: the prompt has {} tokens, more than the model's context of {}",
               prompt.size(), context);
  for (std::uint32_t id : prompt)
    MINITX_CHECK(id < model.config.tokens(), "generate: prompt token {} is outside the vocabulary of {}", id,
                 model.config.tokens());
  Decoder decoder(model);
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
    const std::uint32_t* seen = sequence.data() + window;
    const std::size_t seen_n = sequence.size() - window;
    const std::vector<float>* logits;
    if (!options.use_cache)
      logits = &decoder.logits_recompute(seen, seen_n);
    else if (i == 0 || jumped)
      logits = &decoder.prefill(seen, seen_n);
    else
      logits = &decoder.step(sequence.back());
    const std::uint32_t next = sample_token(std::span(*logits).first(model.config.tokens()), options.sampling, i);
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
