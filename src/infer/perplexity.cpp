#include "minitx/infer/perplexity.h"

#include <algorithm>
#include <cmath>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"

namespace minitx {

double EvalResult::perplexity() const { return std::exp(mean_loss()); }

namespace {

// Losses of `count` windows of length T starting at ids[first·T], added to `result` in order.
void run_windows(const GptWeights& model, const std::vector<std::uint32_t>& ids, std::size_t T, std::size_t first,
                 std::size_t count, EvalResult& result) {
  const std::size_t N = count * T, V = model.config.vocab_size;
  std::vector<std::uint32_t> inputs(N), targets(N);
  for (std::size_t w = 0; w < count; ++w)
    for (std::size_t t = 0; t < T; ++t) {
      inputs[w * T + t] = ids[(first + w) * T + t];
      targets[w * T + t] = ids[(first + w) * T + t + 1];
    }
  GptActivations acts(model.config, count, T, false);
  gpt_forward(model, acts, inputs.data(), count, T);
  std::vector<float> logits(N * V), losses(N);
  gpt_logits(model, logits.data(), acts.lnf, N);
  cpu::crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V);
  for (float loss : losses) result.loss_sum += loss;
  result.tokens += N;
  result.windows += count;
}

}  // namespace

EvalResult evaluate_loss(const GptModel& model, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows) {
  return evaluate_loss(weights_of(model), ids, T, batch, max_windows);
}

EvalResult evaluate_loss(const GptWeights& weights, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows) {
  // Every window multiplies the same matrices: pack them once (the same bits as unpacked).
  const GptWeights model = with_packed_matrices(weights, PackHead::yes);
  MINITX_CHECK(T >= 1 && T <= model.config.context, "eval: window of {} tokens outside 1..{} (the model's context)", T,
               model.config.context);
  MINITX_CHECK(batch >= 1, "eval: batch size must be at least 1");
  MINITX_CHECK(ids.size() >= 2, "eval: {} tokens are too few to predict anything", ids.size());
  const std::size_t predicted = ids.size() - 1;
  std::size_t full = predicted / T;
  const std::size_t rest = predicted % T;
  const bool capped = max_windows != 0 && max_windows < full + (rest > 0 ? 1 : 0);
  if (capped) full = std::min(full, max_windows);
  EvalResult result;
  for (std::size_t w = 0; w < full; w += batch) run_windows(model, ids, T, w, std::min(batch, full - w), result);
  if (rest > 0 && !capped) {
    // The tail: one shorter window over the last `rest` predictions.
    const std::vector<std::uint32_t> tail(ids.end() - static_cast<std::ptrdiff_t>(rest + 1), ids.end());
    run_windows(model, tail, rest, 0, 1, result);
  }
  if (capped && full == 0) fail("eval: the stream of {} tokens has no full window of {}", ids.size(), T + 1);
  return result;
}

}  // namespace minitx
