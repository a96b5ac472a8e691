// The attention backward's work plan (src/backend/cuda/attention_plan.h), on the CPU: for every
// pattern, block size and head size, the dK/dV items cover each (key tile, query tile) pair of
// the transposed layout exactly once, a split column's chunks are consecutive and in slot order,
// no item is longer than the chunk, items run longest first, and dQ's order is a permutation of
// the query tiles, longest walk first. The pairs are enumerated here from the layout directly,
// not through the kernels' walks.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../src/backend/cuda/attention_plan.h"
#include "../src/backend/cuda/attention_tiles.h"
#include "minitx/backend/cuda/attention.h"
#include "minitx/core/error.h"
#include "minitx/sparse/layout.h"

namespace sp = minitx::sparse;
namespace attn = minitx::cuda::attn;

namespace {

// The query tiles (by start) that key tile [k0, k0 + kv_k) must visit: those of the query
// blocks attending its block that reach k0 and start before T, in increasing order.
std::vector<int> column_tiles(const sp::BlockLayout& l, int lh, int k0, int kv_q) {
  std::vector<int> out;
  const int row = lh * l.nb + k0 / l.block;
  for (int e = l.t_row_ptr[row]; e < l.t_row_ptr[row + 1]; ++e)
    for (int q0 = l.t_rows[e] * l.block; q0 < (l.t_rows[e] + 1) * l.block; q0 += kv_q)
      if (q0 + kv_q - 1 >= k0 && q0 < l.T) out.push_back(q0);
  return out;
}

// The key tiles query tile [q0, q0 + dq_q) visits: those of its kept blocks starting at or
// before its last row.
int row_tiles(const sp::BlockLayout& l, int lh, int q0, int dq_q, int dq_k) {
  const int row = lh * l.nb + q0 / l.block, last = std::min(q0 + dq_q, l.T) - 1;
  int n = 0;
  for (int e = l.row_ptr[row]; e < l.row_ptr[row + 1]; ++e)
    for (int k0 = l.cols[e] * l.block; k0 < (l.cols[e] + 1) * l.block; k0 += dq_k) n += k0 <= last;
  return n;
}

void check_plan(const sp::BlockLayout& l, int D) {
  const attn::BackwardPlan plan = attn::plan_backward(l, D);
  const attn::BwdTiles t = attn::bwd_tiles(D, l.block);
  REQUIRE(plan.kv_k == t.kv_k);
  REQUIRE(plan.kv_q == t.kv_q);
  REQUIRE(plan.heads == l.heads);
  const int n_kt = (l.T + t.kv_k - 1) / t.kv_k;

  // The chunk is the average column, at least kMinChunk.
  long total = 0;
  for (int lh = 0; lh < l.heads; ++lh)
    for (int kt = 0; kt < n_kt; ++kt) total += static_cast<long>(column_tiles(l, lh, kt * t.kv_k, t.kv_q).size());
  const long cols = static_cast<long>(l.heads) * n_kt;
  CHECK(plan.chunk == std::max<long>(attn::BackwardPlan::kMinChunk, (total + cols - 1) / cols));

  REQUIRE(plan.kv.size() == static_cast<std::size_t>(l.heads) * plan.n_kv);
  REQUIRE(plan.splits.size() == static_cast<std::size_t>(l.heads) * plan.n_split);
  bool padded = false;
  for (int lh = 0; lh < l.heads; ++lh) {
    CAPTURE(lh);
    const attn::KvItem* items = plan.kv.data() + static_cast<std::size_t>(lh) * plan.n_kv;
    // Per key tile: its items in walk order, and the splits' records.
    std::vector<std::vector<attn::KvItem>> by_kt(static_cast<std::size_t>(n_kt));
    int prev_len = INT32_MAX;
    bool tail = false;
    for (int i = 0; i < plan.n_kv; ++i) {
      const attn::KvItem& it = items[i];
      if (it.kt < 0) {  // padding only after the real items
        tail = padded = true;
        continue;
      }
      REQUIRE_FALSE(tail);
      REQUIRE(it.kt < n_kt);
      const int len = it.j1 - it.j0;
      CHECK(len >= 1);
      CHECK(len <= plan.chunk);
      CHECK(len <= prev_len);  // LPT
      prev_len = len;
      by_kt[static_cast<std::size_t>(it.kt)].push_back(it);
    }
    const attn::KvSplit* splits = plan.splits.data() + static_cast<std::size_t>(lh) * plan.n_split;
    int n_splits = 0, slots = 0;
    for (int kt = 0; kt < n_kt; ++kt) {
      CAPTURE(kt);
      std::vector<attn::KvItem>& its = by_kt[static_cast<std::size_t>(kt)];
      std::sort(its.begin(), its.end(), [](const attn::KvItem& a, const attn::KvItem& b) { return a.j0 < b.j0; });
      REQUIRE_FALSE(its.empty());
      // Exactly the column's tiles, each once: the walk's indices from j0 of the first item to
      // j1 of the last, without gaps or overlaps, map onto the expected query tiles.
      const std::vector<int> want = column_tiles(l, lh, kt * t.kv_k, t.kv_q);
      const attn::QueryWalk walk(l.t_row_ptr.data(), l.t_rows.data(), lh * l.nb + kt * t.kv_k / l.block, l.block,
                                 t.kv_q, l.T);
      std::vector<int> got;
      for (std::size_t c = 0; c < its.size(); ++c) {
        if (c > 0) CHECK(its[c].j0 == its[c - 1].j1);
        for (int j = its[c].j0; j < its[c].j1; ++j) got.push_back(walk.start(j));
      }
      CHECK(got == want);
      if (its.size() == 1) {
        CHECK(its[0].slot == -1);  // a whole column writes bf16 itself
        continue;
      }
      // A split column: listed among the splits in key-tile order, its chunks in slots slot0 ..
      // slot0 + n - 1 in walk order, of near-equal lengths.
      REQUIRE(n_splits < plan.n_split);
      const attn::KvSplit& s = splits[n_splits++];
      CHECK(s.kt == kt);
      CHECK(s.n == static_cast<int>(its.size()));
      CHECK(s.slot0 == slots);
      int lo = INT32_MAX, hi = 0;
      for (std::size_t c = 0; c < its.size(); ++c) {
        CHECK(its[c].slot == s.slot0 + static_cast<int>(c));
        lo = std::min(lo, its[c].j1 - its[c].j0);
        hi = std::max(hi, its[c].j1 - its[c].j0);
      }
      CHECK(hi - lo <= 1);
      CHECK(static_cast<int>(want.size()) > plan.chunk);  // only long columns are cut
      slots += s.n;
    }
    CHECK(slots <= plan.n_slots);
    for (int i = n_splits; i < plan.n_split; ++i) CHECK(splits[i].kt == -1);

    // dQ: every query tile once, longest walk first, ties in tile order.
    const int n_qt = (l.T + t.dq_q - 1) / t.dq_q;
    REQUIRE(plan.n_dq == n_qt);
    const std::int32_t* order = plan.dq.data() + static_cast<std::size_t>(lh) * n_qt;
    std::vector<int> seen(static_cast<std::size_t>(n_qt), 0);
    for (int i = 0; i < n_qt; ++i) {
      REQUIRE(order[i] >= 0);
      REQUIRE(order[i] < n_qt);
      ++seen[static_cast<std::size_t>(order[i])];
      if (i > 0) {
        const int a = row_tiles(l, lh, order[i - 1] * t.dq_q, t.dq_q, t.dq_k),
                  b = row_tiles(l, lh, order[i] * t.dq_q, t.dq_q, t.dq_k);
        CHECK((a > b || (a == b && order[i - 1] < order[i])));
      }
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  }
  (void)padded;
  // From the layout alone: a second plan is the same.
  const attn::BackwardPlan again = attn::plan_backward(l, D);
  CHECK(std::equal(plan.kv.begin(), plan.kv.end(), again.kv.begin(), again.kv.end(),
                   [](const attn::KvItem& a, const attn::KvItem& b) {
                     return a.kt == b.kt && a.j0 == b.j0 && a.j1 == b.j1 && a.slot == b.slot;
                   }));
  CHECK(plan.dq == again.dq);
}

}  // namespace

TEST_CASE("attention backward plan: every pair once, chunks in order, none over the chunk, longest first") {
  for (int D : {64, 128})
    for (int block : {16, 32, 64, 128})
      for (int T : {203, 2051, 4096}) {
        if (T == 4096 && block < 64) continue;  // the enumeration's time
        const std::vector<std::pair<std::string, sp::BlockLayout>> layouts = {
            {"dense", sp::dense_causal(T, block)},
            {"local", sp::local(T, block, 2)},
            {"strided", sp::strided(T, block, 2, 8)},
            {"bigbird", sp::bigbird(T, block, 2, 1, 2, 5, 3)},  // a layout per head
            {"longformer", sp::longformer(T, block, 2, {0, 1, T / 3, T - 1})},
            {"sinks", sp::sinks(T, block, 1, 4)},
        };
        for (const auto& [name, layout] : layouts) {
          CAPTURE(D);
          CAPTURE(block);
          CAPTURE(T);
          CAPTURE(name);
          check_plan(layout, D);
        }
      }
}

TEST_CASE("attention backward plan: long columns are cut, short ones are not") {
  // Sinks at 16k, block 128, D 64: the first block's two key tiles see 256 query tiles each, the
  // rest 7 to 9; the chunk is the average column.
  const sp::BlockLayout l = sp::sinks(16384, 128, 1, 4);
  const attn::BackwardPlan plan = attn::plan_backward(l, 64);
  CHECK(plan.chunk == 10);
  CHECK(plan.n_split == 2);
  CHECK(plan.splits[0].kt == 0);
  CHECK(plan.splits[1].kt == 1);
  CHECK(plan.n_slots == plan.splits[0].n + plan.splits[1].n);
  CHECK(plan.kv[0].j1 - plan.kv[0].j0 == plan.chunk);  // the longest items first
  // A local window has no long column: no partials, the scratch is rowsum(dO ∘ O) alone.
  const sp::BlockLayout w = sp::local(16384, 128, 2);
  CHECK(attn::plan_backward(w, 64).n_slots == 0);
  CHECK(minitx::cuda::attention_backward_scratch_floats(w, {2, 16384, 12, 64}) == 2u * 12 * 16384);
  CHECK(minitx::cuda::attention_backward_scratch_floats(l, {1, 16384, 12, 64}) ==
        12u * 16384 + 12u * plan.n_slots * 2 * 64 * 64);
}

TEST_CASE("attention backward plan: head sizes other than 64 and 128 are refused") {
  CHECK_THROWS_WITH_AS(attn::plan_backward(sp::local(100, 16, 2), 96),
                       doctest::Contains("head size D must be 64 or 128, not 96"), minitx::Error);
}
