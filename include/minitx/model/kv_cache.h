// Keys and values of every layer for positions [0, context): store() checks the bounds, so
// decoding can never write past the end.
#pragma once
#include <cstddef>
#include <vector>

#include "minitx/model/config.h"

namespace minitx {

struct KvCache {
  explicit KvCache(const ModelConfig& config);

  // Copies keys and values of positions [pos, pos + T) from rows of q|k|v (T, 3C) of `layer`.
  void store(std::size_t layer, std::size_t pos, const float* qkv, std::size_t T);
  // (positions stored so far, C); the pointers stay valid until the next store().
  const float* keys(std::size_t layer) const { return k_[layer].data(); }
  const float* values(std::size_t layer) const { return v_[layer].data(); }

  std::size_t layers, context, C;
  std::size_t length = 0;  // positions filled so far, maintained by the caller

 private:
  // The first kEagerPositions positions (or the whole context, if shorter) are allocated and
  // touched up front, as before the cache could grow, so that decoding a usual context never
  // allocates or page-faults between tokens; beyond, the cache grows by doubling, so memory follows the sequence actually decoded rather than a
  // context a model file may claim.
  std::vector<std::vector<float>> k_, v_;
  std::size_t capacity_ = 0;  // positions allocated per layer
};
inline constexpr std::size_t kEagerPositions = 4096;

}  // namespace minitx
