// Keys and values of every layer for positions [0, context): store() checks the bounds, so
// decoding can never write past the end. With an attention pattern whose queries read only the
// sink blocks and a window (local, sinks) the cache is a ring of that span: its memory stays the
// same whatever the length decoded, and slots() says where each position sits.
#pragma once
#include <cstddef>
#include <vector>

#include "minitx/backend/cpu/sparse_attention.h"
#include "minitx/model/config.h"

namespace minitx {

struct KvCache {
  explicit KvCache(const ModelConfig& config);

  // Copies keys and values of positions [pos, pos + T) from rows of q|k|v (T, 3C) of `layer`.
  void store(std::size_t layer, std::size_t pos, const float* qkv, std::size_t T);
  // Rows of C floats, position p at row slots()(p); the pointers stay valid until the next store().
  const float* keys(std::size_t layer) const { return k_[layer].data(); }
  const float* values(std::size_t layer) const { return v_[layer].data(); }
  const cpu::KvSlots& slots() const { return slots_; }
  bool ring() const { return slots_.fixed != SIZE_MAX; }
  // Bytes the keys and values of every layer take now.
  std::size_t bytes() const { return 2 * layers * capacity_ * C * sizeof(float); }

  std::size_t layers, context, C;
  std::size_t length = 0;  // positions filled so far, maintained by the caller

 private:
  // The first kEagerPositions positions (or the whole context, if shorter) are allocated and
  // touched up front, as before the cache could grow, so that decoding a usual context never
  // allocates or page-faults between tokens; beyond, the cache grows by doubling, so memory follows the sequence actually decoded rather than a
  // context a model file may claim.
  std::vector<std::vector<float>> k_, v_;
  std::size_t capacity_ = 0;  // positions allocated per layer
  cpu::KvSlots slots_;
};
inline constexpr std::size_t kEagerPositions = 4096;

// The slots of a cache for `context` positions under pattern p: a ring of the sink blocks and
// the window for local and sinks (where that is shorter than the context), else row p. The GPU
// decoder's cache uses the same.
cpu::KvSlots kv_slots(const sparse::AttentionPattern& p, std::size_t context);

}  // namespace minitx
