#include "minitx/model/kv_cache.h"

#include <algorithm>

#include "minitx/core/error.h"

namespace minitx {

cpu::KvSlots kv_slots(const sparse::AttentionPattern& p, std::size_t context) {
  if (!p.bounded()) return {};
  const std::size_t block = static_cast<std::size_t>(p.block);
  const std::size_t fixed = p.kind == sparse::AttentionPattern::Kind::sinks ? static_cast<std::size_t>(p.sinks) * block : 0;
  const std::size_t ring = static_cast<std::size_t>(p.window) * block;
  // A ring only where it is smaller than the context; then it never grows.
  if (fixed + ring >= context) return {};
  return {fixed, ring};
}

KvCache::KvCache(const ModelConfig& config)
    : layers(config.n_layer), context(config.context), C(config.n_embd), k_(layers), v_(layers),
      capacity_(std::min(context, kEagerPositions)) {
  slots_ = kv_slots(config.attention, context);
  if (ring()) capacity_ = slots_.rows(context);
  for (std::size_t l = 0; l < layers; ++l) {
    k_[l].resize(capacity_ * C);
    v_[l].resize(capacity_ * C);
  }
}

void KvCache::store(std::size_t layer, std::size_t pos, const float* qkv, std::size_t T) {
  MINITX_CHECK(layer < layers && pos + T <= context,
               "kv cache: positions {}..{} of layer {} do not fit a cache of {} positions and {} layers", pos,
               pos + T, layer, context, layers);
  if (!ring() && pos + T > capacity_) {
    capacity_ = std::min(context, std::max({pos + T, 2 * capacity_, std::size_t{64}}));
    for (std::size_t l = 0; l < layers; ++l) {
      k_[l].resize(capacity_ * C);
      v_[l].resize(capacity_ * C);
    }
  }
  // In order, so that in a ring a later position overwrites the one `ring` before it.
  for (std::size_t t = 0; t < T; ++t) {
    const float* row = qkv + t * 3 * C;
    const std::size_t slot = slots_(pos + t);
    std::copy(row + C, row + 2 * C, k_[layer].data() + slot * C);
    std::copy(row + 2 * C, row + 3 * C, v_[layer].data() + slot * C);
  }
}

}  // namespace minitx
