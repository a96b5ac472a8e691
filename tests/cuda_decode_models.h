// The models every GPU decode test runs, written once.
#pragma once
#include <utility>
#include <vector>

#include "minitx/model/config.h"
#include "architectures.h"

namespace minitx::test {

// Head size 64 (the bf16 prefill's attention kernel takes 64 and 128), a vocabulary that is not a
// multiple of anything, and larger weights than training's init so that logits are far apart.
inline ModelConfig decode_base_config() { return small_config(96, 0.08); }

// The three architectures; NeoX with an embedding padded past its tokens (rows past 290 are never
// sampled).
inline std::vector<std::pair<const char*, ModelConfig>> decode_variants() {
  auto out = architectures(decode_base_config());
  out[2].second.vocab_tokens = 290;
  return out;
}

}  // namespace minitx::test
