// Validation loss and perplexity over a token stream. The stream is cut into consecutive
// windows of T + 1 tokens overlapping by one (each window predicts T tokens; the last window
// may be shorter), so every token after the first is predicted exactly once. Per-token losses
// do not depend on which windows share a batch, and they are summed in stream order in double:
// the result is the same for every batch size and thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "minitx/model/weights.h"
#include "minitx/model/gpt.h"

namespace minitx {

struct EvalResult {
  double loss_sum = 0.0;       // Σ per-token cross-entropy, nats
  std::uint64_t tokens = 0;    // predicted tokens
  std::uint64_t windows = 0;
  double mean_loss() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }
  double perplexity() const;
};

// The windows' losses on any device: `losses` gets the per-token losses (count·len) of `count`
// windows of `len` tokens (inputs and targets, row-major).
using WindowLosses = std::function<void(float* losses, const std::uint32_t* inputs, const std::uint32_t* targets,
                                        std::size_t count, std::size_t len)>;
// Cuts the stream into windows, batches them and sums their losses as described above.
EvalResult evaluate_windows(const std::vector<std::uint32_t>& ids, std::size_t T, std::size_t batch,
                            std::size_t max_windows, std::size_t context, const WindowLosses& losses);

// Uses at most `max_windows` full windows when nonzero (evaluation during training); otherwise
// the whole stream, including a final partial window. T ≤ the model's context.
EvalResult evaluate_loss(const GptModel& model, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows = 0);
// The same on any weights, fp32 or quantized (linear.h).
EvalResult evaluate_loss(const GptWeights& weights, const std::vector<std::uint32_t>& ids, std::size_t T,
                         std::size_t batch, std::size_t max_windows = 0);

}  // namespace minitx
