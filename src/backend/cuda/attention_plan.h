// The backward's work plan, computed on the host from the layout alone (and D, which fixes the
// tile sizes): never from the device's SM count or from timings, so the same layout gives the
// same grid, the same sums in the same order, and the same bits on every GPU and every run.
//
// dK/dV. A key tile's column (the query tiles its QueryWalk visits) is one item when it is at
// most `chunk` query tiles long; a longer one is cut into n = ceil(len / chunk) consecutive
// chunks of near-equal length (the first len % n one tile longer), each an item that writes an
// fp32 partial to its own slot; a reduce kernel adds a column's slots in chunk order. chunk is
// the average column length over the layout (at least kMinChunk): with LPT order and at least as
// many columns (times B·H) as CTA slots, the total work per slot is at least the average column,
// so no item is longer than the share of the machine it runs on, and the grid's tail is no longer
// than one average item, whatever the device's size. Items are sorted longest first (LPT), ties
// in (key tile, chunk) order.
//
// dQ. Query tiles in order of their key walk's length, longest first (ties by tile), as the
// forward's version 2 launches its rows.
//
// Per layout head (1 when the layout is shared by all heads) the lists have the same padded
// length; padding items have kt = -1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "minitx/sparse/layout.h"

namespace minitx::cuda::attn {

// One dK/dV work item: key tile kt (rows kt·kv_k ..), walk tiles [j0, j1); slot < 0 writes the
// column's bf16 dK, dV directly, else the fp32 partial goes to that slot.
struct KvItem {
  std::int32_t kt, j0, j1, slot;
};
// A split column: its key tile and its chunks' slots [slot0, slot0 + n), in chunk order.
struct KvSplit {
  std::int32_t kt, slot0, n, pad;
};

struct BackwardPlan {
  static constexpr std::int32_t kMinChunk = 4;
  std::int32_t kv_k = 0, kv_q = 0, dq_q = 0;  // tile rows (bwd_tiles)
  std::int32_t heads = 1;                      // layout heads
  std::int32_t chunk = 0;                      // the most query tiles in one item
  std::int32_t n_kv = 0, n_split = 0, n_slots = 0, n_dq = 0;  // per layout head (padded)
  std::vector<KvItem> kv;         // heads × n_kv
  std::vector<KvSplit> splits;    // heads × n_split
  std::vector<std::int32_t> dq;   // heads × n_dq: query tile indices

  // The fp32 partials one (batch, head) needs: n_slots tiles of dK and of dV.
  std::size_t partial_floats(std::int32_t D) const {
    return static_cast<std::size_t>(n_slots) * 2 * static_cast<std::size_t>(kv_k) * static_cast<std::size_t>(D);
  }
};

// The backward's scratch: rows = B·H·T floats of rowsum(dO ∘ O), then, from a 16-byte boundary
// (the partials are stored as float2), each (batch, head)'s partials.
inline std::size_t partials_offset(std::size_t rows) { return (rows + 3) / 4 * 4; }
inline std::size_t scratch_floats(const BackwardPlan& plan, std::size_t B, std::size_t H, std::size_t T,
                                  std::int32_t D) {
  return partials_offset(B * H * T) + B * H * plan.partial_floats(D);
}

// D 64 or 128 (the bf16 kernels' head sizes); throws minitx::Error naming the value otherwise.
BackwardPlan plan_backward(const sparse::BlockLayout& layout, std::int32_t D);

}  // namespace minitx::cuda::attn
