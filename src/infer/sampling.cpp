#include "minitx/infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "minitx/core/error.h"
#include "minitx/core/rng.h"

namespace minitx {
namespace {
constexpr std::uint64_t kSampleStream = 0x73616d706c65ULL;  // "sample"
}

std::uint32_t sample_token(std::span<const float> logits, const SamplingConfig& c, std::uint64_t index) {
  MINITX_CHECK(!logits.empty(), "sampling: no logits");
  if (c.temperature <= 0.0)
    return static_cast<std::uint32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // Candidates by decreasing logit, ties by id, so the order is fully determined.
  std::vector<std::uint32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return logits[a] > logits[b]; });
  std::size_t keep = order.size();
  if (c.top_k > 0) keep = std::min(keep, c.top_k);
  const double max = logits[order[0]];
  std::vector<double> p(keep);
  double total = 0.0;
  for (std::size_t i = 0; i < keep; ++i) total += p[i] = std::exp((logits[order[i]] - max) / c.temperature);
  if (c.top_p < 1.0) {
    double mass = 0.0;
    std::size_t i = 0;
    while (i < keep && mass < c.top_p * total) mass += p[i++];
    keep = std::max<std::size_t>(i, 1);
    total = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  const double u = static_cast<double>(CounterRng(c.seed, kSampleStream).uniform(index)) * total;
  double cumulative = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
    cumulative += p[i];
    if (u < cumulative) return order[i];
  }
  return order[keep - 1];
}

}  // namespace minitx
