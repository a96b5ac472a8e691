// The backward's work plan, computed on the host from the layout, the head size D (which fixes
// the tile sizes) and the launch's shape (T, B·H): never from the device's SM count or from
// timings, so the same call gives the same grid, the same sums in the same order, and the same
// bits on every GPU and every run.
//
// Launch order. Heads go in groups of 2^log2_group (grid y) whose Q, K, V and dO stay in L2 while
// the group runs (head_group_log2: the forward's version 2 rule); within a group (grid x) item by
// item, the group's heads side by side. A key tile's neighbours share most of its query tiles
// (and a query tile's its key tiles), so items stay in tile order wherever their lengths allow.
//
// dK/dV. A key tile's column (the query tiles its QueryWalk visits) is one item when it is at
// most `chunk` query tiles long; a longer one is cut into n = ceil(len / chunk) consecutive
// chunks of near-equal length (the first len % n one tile longer), each an item that writes an
// fp32 partial to its own slot; a reduce kernel adds a column's slots in chunk order.
// chunk = max(kMinChunk, average column, ceil(pairs a head × heads a group / kSlotCeiling)),
// never past the longest column: with the items sorted longest first, a group's work over at
// most kSlotCeiling CTA slots gives each slot at least a chunk, so no item outlasts its share
// and the tail stays short on any device up to that size; and where B·H brings that much work
// (short T: 192 heads at 1k) nothing is split, so no partials and no reduce are paid for.
// Order: longest first in buckets of ceil(chunk / 2) tiles (lengths within half a chunk count as
// equal), ties in (key tile, chunk) order, so neighbouring columns of near-equal length stay
// together (local's columns of 4 and 3 tiles run in key order).
//
// dQ. Query tiles longest walk first in the same buckets, ties from the last tile down (causal
// rows then run from the longest, as the forward's version 2 launches them).
//
// Where a list is plain tile order (kv: nothing split, key tiles ascending; dq: query tiles
// ascending or descending) the kernels compute the tile from the block index and skip reading
// the list: one dependent global load less before a CTA's first copies.
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

// What the chunk rule reads of a layout, for one head size: the (key tile, query tile) pairs of
// all layout heads, the number of columns, the longest one.
struct ColumnStats {
  std::int64_t pairs = 0;
  std::int32_t columns = 0, longest = 0, heads = 1;
};

struct BackwardPlan {
  static constexpr std::int32_t kMinChunk = 4;
  // CTA slots the chunk rule balances for: above the dK/dV kernel's 264 on an H200 (132 SMs, 2
  // CTAs each) and 296 on a B200 (148); a constant, so the plan and its bits do not depend on the
  // device. Larger, it would cut columns that B·H already balances (sinks at 1k: 16-tile columns
  // against a slot's 22 tiles at 320, 14 at 512).
  static constexpr std::int32_t kSlotCeiling = 320;
  std::int32_t kv_k = 0, kv_q = 0, dq_q = 0;  // tile rows (bwd_tiles)
  std::int32_t heads = 1;                      // layout heads
  std::int32_t chunk = 0;                      // the most query tiles in one item
  std::int32_t n_kv = 0, n_split = 0, n_slots = 0, n_dq = 0;  // per layout head (padded)
  bool kv_direct = false;    // kv is whole columns in key-tile order, every head
  std::int32_t dq_step = 0;  // dq is query tiles ascending (1) or descending (-1), every head; else 0
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

// Heads launched together: 2^log2 of them, whose Q and dO (read again by a key tile's
// neighbours) or K and V (by a query tile's) fill at most 16 MB, a third of an H200's L2; a
// power of two, at most the next one above bh. The forward's version 2 groups its heads so too.
std::int32_t head_group_log2(std::int32_t T, std::int32_t D, std::int32_t bh);

// D 64 or 128 (the bf16 kernels' head sizes); throws minitx::Error naming the value otherwise.
ColumnStats column_stats(const sparse::BlockLayout& layout, std::int32_t D);
// The chunk for a launch of bh = B·H heads of length T (the rule above).
std::int32_t plan_chunk(const ColumnStats& stats, std::int32_t T, std::int32_t D, std::int32_t bh);
// The plan for a given chunk (at least 1).
BackwardPlan plan_backward(const sparse::BlockLayout& layout, std::int32_t D, std::int32_t chunk);
// The plan for a launch of bh heads: the three above.
BackwardPlan plan_backward_for(const sparse::BlockLayout& layout, std::int32_t D, std::int32_t bh);

}  // namespace minitx::cuda::attn
