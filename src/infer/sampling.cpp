// The CPU sampler: sampling.h's definition, sequentially, in sampling_math.h's integers.
#include "minitx/infer/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "minitx/core/error.h"
#include "minitx/infer/sampling_math.h"

namespace minitx {

void check_sampling(std::size_t candidates, const SamplingConfig& c) {
  MINITX_CHECK(candidates > 0, "sampling: no logits (V = 0): at least one candidate is needed");
  MINITX_CHECK(candidates <= sampling::kMaxCandidates,
               "sampling: V = {} candidates, more than the {} that the fixed-point sums allow", candidates,
               sampling::kMaxCandidates);
  MINITX_CHECK(std::isfinite(c.temperature) && c.temperature >= 0.0,
               "sampling: temperature = {} must be a finite number ≥ 0 (0 is greedy)", c.temperature);
  MINITX_CHECK(c.top_p >= 0.0 && c.top_p <= 1.0, "sampling: top_p = {} is outside [0, 1]", c.top_p);
}

bool sampling_is_greedy(const SamplingConfig& c) {
  return c.temperature == 0.0 || c.top_k == 1 || sampling::top_p_fixed(c.top_p) == 0;
}

std::uint32_t sample_token(std::span<const float> logits, const SamplingConfig& c, std::uint64_t index) {
  check_sampling(logits.size(), c);
  const std::size_t V = logits.size();
  if (sampling_is_greedy(c)) {
    std::uint32_t best = 0, best_key = sampling::order_key(logits[0]);
    for (std::size_t i = 1; i < V; ++i)
      if (const std::uint32_t key = sampling::order_key(logits[i]); key > best_key) {
        best = static_cast<std::uint32_t>(i);
        best_key = key;
      }
    return best;
  }
  std::vector<std::uint32_t> key(V), order(V);
  for (std::size_t i = 0; i < V; ++i) key[i] = sampling::order_key(logits[i]);
  std::iota(order.begin(), order.end(), 0u);
  // A total order, so the kept prefix is the same whichever sort produces it.
  const auto before = [&](std::uint32_t a, std::uint32_t b) { return key[a] > key[b] || (key[a] == key[b] && a < b); };
  std::size_t keep = c.top_k > 0 ? std::min(c.top_k, V) : V;
  const auto kept_end = order.begin() + static_cast<std::ptrdiff_t>(keep);
  if (keep < V) std::nth_element(order.begin(), kept_end - 1, order.end(), before);
  std::sort(order.begin(), kept_end, before);
  const float max = logits[order[0]];
  std::vector<std::uint64_t> cumulative(keep);
  std::uint64_t sum = 0;
  for (std::size_t j = 0; j < keep; ++j) cumulative[j] = sum += sampling::weight(j, logits[order[j]], max, c.temperature);
  if (const std::uint64_t top_p = sampling::top_p_fixed(c.top_p); top_p < sampling::kTopPOne) {
    const std::uint64_t threshold = sampling::top_p_threshold(cumulative[keep - 1], top_p);
    keep = static_cast<std::size_t>(std::lower_bound(cumulative.begin(), cumulative.end(), threshold) - cumulative.begin()) + 1;
  }
  const std::uint64_t point = sampling::draw_point(cumulative[keep - 1], sampling::draw_bits(c.seed, index));
  const auto chosen = std::upper_bound(cumulative.begin(), cumulative.begin() + static_cast<std::ptrdiff_t>(keep), point);
  return order[static_cast<std::size_t>(chosen - cumulative.begin())];
}

}  // namespace minitx
