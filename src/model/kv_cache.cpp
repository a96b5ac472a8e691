#include "minitx/model/kv_cache.h"

#include <algorithm>

#include "minitx/core/error.h"

namespace minitx {

KvCache::KvCache(const ModelConfig& config)
    : layers(config.n_layer), context(config.context), C(config.n_embd),
      k_(layers * context * C, 0.0f), v_(layers * context * C, 0.0f) {}

void KvCache::store(std::size_t layer, std::size_t pos, const float* qkv, std::size_t T) {
  MINITX_CHECK(layer < layers && pos + T <= context,
               "kv cache: positions {}..{} of layer {} do not fit a cache of {} positions and {} layers", pos,
               pos + T, layer, context, layers);
  for (std::size_t t = 0; t < T; ++t) {
    const float* row = qkv + t * 3 * C;
    std::copy(row + C, row + 2 * C, k_.data() + (layer * context + pos + t) * C);
    std::copy(row + 2 * C, row + 3 * C, v_.data() + (layer * context + pos + t) * C);
  }
}

}  // namespace minitx
