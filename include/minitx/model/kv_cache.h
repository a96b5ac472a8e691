// Keys and values of every layer for positions [0, context), allocated once up front so that
// decoding never allocates and can never write past the end: store() checks the bounds.
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
  // Grown as positions are stored (doubling, up to the context), so memory follows the sequence
  // actually decoded rather than the context a model file claims.
  std::vector<std::vector<float>> k_, v_;
  std::size_t capacity_ = 0;  // positions allocated per layer
};

}  // namespace minitx
