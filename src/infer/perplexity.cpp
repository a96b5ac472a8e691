#include "minitx/infer/perplexity.h"

#include <algorithm>
#include <cmath>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/memory.h"

namespace minitx {

double EvalResult::perplexity() const { return std::exp(mean_loss()); }

EvalResult evaluate_windows(const std::vector<std::uint32_t>& ids, std::size_t T, std::size_t batch,
                            std::size_t max_windows, std::size_t context, const WindowLosses& losses) {
  MINITX_CHECK(T >= 1 && T <= context, "eval: window of {} tokens outside 1..{} (the model's context)", T, context);
  MINITX_CHECK(batch >= 1, "eval: batch size must be at least 1");
  MINITX_CHECK(ids.size() >= 2, "eval: {} tokens are too few to predict anything", ids.size());
  const std::size_t predicted = ids.size() - 1;
  std::size_t full = predicted / T;
  const std::size_t rest = predicted % T;
  const bool capped = max_windows != 0 && max_windows < full + (rest > 0 ? 1 : 0);
  if (capped) full = std::min(full, max_windows);
  MINITX_CHECK(!capped || full > 0, "eval: the stream of {} tokens has no full window of {}", ids.size(), T + 1);
  EvalResult result;
  std::vector<std::uint32_t> inputs, targets;
  std::vector<float> window_losses;
  // Losses of `count` windows of length T starting at stream[first·T], added in stream order.
  const auto run = [&](const std::uint32_t* stream, std::size_t len, std::size_t first, std::size_t count) {
    const std::size_t N = count * len;
    inputs.resize(N);
    targets.resize(N);
    window_losses.resize(N);
    for (std::size_t w = 0; w < count; ++w)
      for (std::size_t t = 0; t < len; ++t) {
        inputs[w * len + t] = stream[(first + w) * len + t];
        targets[w * len + t] = stream[(first + w) * len + t + 1];
      }
    losses(window_losses.data(), inputs.data(), targets.data(), count, len);
    for (float loss : window_losses) result.loss_sum += loss;
    result.tokens += N;
    result.windows += count;
  };
  for (std::size_t w = 0; w < full; w += batch) run(ids.data(), T, w, std::min(batch, full - w));
  // The tail: one shorter window over the last `rest` predictions.
  if (rest > 0 && !capped) run(ids.data() + (ids.size() - rest - 1), rest, 0, 1);
  return result;
}

EvalResult evaluate_loss(const GptModel& model, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows) {
  return evaluate_loss(weights_of(model), ids, T, batch, max_windows);
}

EvalResult evaluate_loss(const GptWeights& weights, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows) {
  // Every window multiplies the same matrices: pack them once (the same bits as unpacked).
  const GptWeights model = with_packed_matrices(weights, PackHead::yes);
  std::vector<float> logits;
  return evaluate_windows(ids, T, batch, max_windows, model.config.context,
                          [&](float* losses, const std::uint32_t* inputs, const std::uint32_t* targets,
                              std::size_t count, std::size_t len) {
                            const std::size_t N = count * len;
                            GptActivations acts(model.config, count, len, false);
                            gpt_forward(model, acts, inputs, count, len);
                            allocating(fmt::format("the logits of {} windows of {} tokens over {} tokens", count, len,
                                                   model.config.vocab_size),
                                       static_cast<double>(N * model.config.vocab_size) * sizeof(float),
                                       [&] { logits.resize(N * model.config.vocab_size); });
                            gpt_logits(model, logits.data(), acts.lnf, N);
                            cpu::crossentropy_forward(losses, logits.data(), targets, N, model.config.vocab_size);
                          });
}

}  // namespace minitx
