// The decode step against the forward: what every KV-cache test checks, written once.
#pragma once
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"
#include "test_ops_reference.h"

namespace minitx::test {

// The logits (T, V) of the forward over one sequence.
inline std::vector<float> forward_logits(const GptWeights& w, const std::vector<std::uint32_t>& ids) {
  const ModelConfig& m = w.config;
  GptActivations acts(m, 1, ids.size(), false);
  gpt_forward(w, acts, ids.data(), 1, ids.size());
  std::vector<float> all(ids.size() * m.vocab_size);
  gpt_logits(w, all.data(), acts.lnf, ids.size());
  return all;
}

// Decodes ids[from..] one token at a time into `cache` (which holds positions [0, from)), each
// step's logits within `tol` (relative) of the forward's row `all` for that position.
inline void check_steps_match_forward(const GptWeights& w, KvCache& cache, StepBuffers& buffers,
                                      const std::vector<std::uint32_t>& ids, const std::vector<float>& all,
                                      std::size_t from = 0, double tol = 1e-5) {
  const std::size_t V = w.config.vocab_size;
  std::vector<float> step(V);
  for (std::size_t t = from; t < ids.size(); ++t) {
    gpt_step(w, cache, buffers, ids[t], step.data());
    CAPTURE(t);
    const std::vector<float> row(all.begin() + static_cast<std::ptrdiff_t>(t * V),
                                 all.begin() + static_cast<std::ptrdiff_t>((t + 1) * V));
    check_close(step, to_double(row), tol, "step logits");
  }
}

}  // namespace minitx::test
