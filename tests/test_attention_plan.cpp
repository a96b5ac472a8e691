// The attention backward's work plan (src/backend/cuda/attention_plan.h), on the CPU: for every
// pattern, block size, head size and chunk, the dK/dV items cover each (key tile, query tile)
// pair of the transposed layout exactly once, a split column's chunks are consecutive and in slot
// order, no item is longer than the chunk, items run longest bucket first in tile order within a
// bucket, dQ's order is a permutation of the query tiles in the same buckets, and the direct
// flags say exactly when a list is plain tile order. The pairs are enumerated here from the
// layout directly, not through the kernels' walks. Then the chunk rule and the head groups.
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

// The bucket of a length under a chunk: lengths within half a chunk rank equal.
int bucket(int len, int chunk) {
  const int width = (chunk + 1) / 2;
  return (len + width - 1) / width;
}

void check_plan(const sp::BlockLayout& l, int D, int chunk) {
  const attn::BackwardPlan plan = attn::plan_backward(l, D, chunk);
  const attn::BwdTiles t = attn::bwd_tiles(D, l.block);
  REQUIRE(plan.kv_k == t.kv_k);
  REQUIRE(plan.kv_q == t.kv_q);
  REQUIRE(plan.heads == l.heads);
  REQUIRE(plan.chunk == chunk);
  const int n_kt = (l.T + t.kv_k - 1) / t.kv_k;
  bool kv_plain = plan.n_kv == n_kt, dq_up = true, dq_down = true;

  REQUIRE(plan.kv.size() == static_cast<std::size_t>(l.heads) * plan.n_kv);
  REQUIRE(plan.splits.size() == static_cast<std::size_t>(l.heads) * plan.n_split);
  bool padded = false;
  for (int lh = 0; lh < l.heads; ++lh) {
    CAPTURE(lh);
    const attn::KvItem* items = plan.kv.data() + static_cast<std::size_t>(lh) * plan.n_kv;
    // Per key tile: its items in walk order, and the splits' records.
    std::vector<std::vector<attn::KvItem>> by_kt(static_cast<std::size_t>(n_kt));
    const attn::KvItem* prev = nullptr;
    bool tail = false;
    for (int i = 0; i < plan.n_kv; ++i) {
      const attn::KvItem& it = items[i];
      kv_plain = kv_plain && it.kt == i && it.slot < 0;
      if (it.kt < 0) {  // padding only after the real items
        tail = padded = true;
        continue;
      }
      REQUIRE_FALSE(tail);
      REQUIRE(it.kt < n_kt);
      const int len = it.j1 - it.j0;
      CHECK(len >= 1);
      CHECK(len <= plan.chunk);
      if (prev != nullptr) {  // longest bucket first; within one, key tile then chunk order
        const int a = bucket(prev->j1 - prev->j0, chunk), b = bucket(len, chunk);
        CHECK((a > b || (a == b && (prev->kt < it.kt || (prev->kt == it.kt && prev->j1 == it.j0)))));
      }
      prev = &it;
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

    // dQ: every query tile once, longest bucket first, ties from the last tile down.
    const int n_qt = (l.T + t.dq_q - 1) / t.dq_q;
    REQUIRE(plan.n_dq == n_qt);
    const std::int32_t* order = plan.dq.data() + static_cast<std::size_t>(lh) * n_qt;
    std::vector<int> seen(static_cast<std::size_t>(n_qt), 0);
    for (int i = 0; i < n_qt; ++i) {
      REQUIRE(order[i] >= 0);
      REQUIRE(order[i] < n_qt);
      ++seen[static_cast<std::size_t>(order[i])];
      dq_up = dq_up && order[i] == i;
      dq_down = dq_down && order[i] == n_qt - 1 - i;
      if (i > 0) {
        const int a = bucket(row_tiles(l, lh, order[i - 1] * t.dq_q, t.dq_q, t.dq_k), chunk),
                  b = bucket(row_tiles(l, lh, order[i] * t.dq_q, t.dq_q, t.dq_k), chunk);
        CHECK((a > b || (a == b && order[i - 1] > order[i])));
      }
    }
    CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  }
  (void)padded;
  // The kernels skip reading a list exactly when it is plain tile order.
  CHECK(plan.kv_direct == kv_plain);
  CHECK(plan.dq_step == (dq_up ? 1 : dq_down ? -1 : 0));
  // From the layout and the chunk alone: a second plan is the same.
  const attn::BackwardPlan again = attn::plan_backward(l, D, chunk);
  CHECK(std::equal(plan.kv.begin(), plan.kv.end(), again.kv.begin(), again.kv.end(),
                   [](const attn::KvItem& a, const attn::KvItem& b) {
                     return a.kt == b.kt && a.j0 == b.j0 && a.j1 == b.j1 && a.slot == b.slot;
                   }));
  CHECK(plan.dq == again.dq);
}

}  // namespace

TEST_CASE("attention backward plan: every pair once, chunks in order, none over the chunk, longest bucket first") {
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
          // The chunks of one head, of 8 and of 192 heads (the benchmark's at 1k), and a chunk of 1.
          const attn::ColumnStats stats = attn::column_stats(layout, D);
          for (int bh : {1, 8, 192}) {
            CAPTURE(bh);
            check_plan(layout, D, attn::plan_chunk(stats, T, D, bh));
          }
          check_plan(layout, D, 1);
        }
      }
}

TEST_CASE("attention backward plan: long columns are cut, short ones are not") {
  // Sinks at 16k, block 128, D 64, 12 heads (the benchmark's): the first block's two key tiles
  // see 256 query tiles each, the rest 7 to 9; 4 heads a group, so the chunk is a group's 4 × 2,392
  // pairs over 320 slots, 30 tiles (the average column is 10).
  const sp::BlockLayout l = sp::sinks(16384, 128, 1, 4);
  const attn::ColumnStats stats = attn::column_stats(l, 64);
  CHECK(stats.pairs == 2392);
  CHECK(stats.longest == 256);
  CHECK(attn::head_group_log2(16384, 64, 12) == 2);
  const attn::BackwardPlan plan = attn::plan_backward_for(l, 64, 12);
  CHECK(plan.chunk == 30);
  CHECK(plan.n_split == 2);
  CHECK(plan.splits[0].kt == 0);
  CHECK(plan.splits[1].kt == 1);
  CHECK(plan.splits[0].n == 9);  // 256 tiles in chunks of 29 and 28
  CHECK(plan.n_slots == plan.splits[0].n + plan.splits[1].n);
  CHECK(plan.kv[0].j1 - plan.kv[0].j0 == 29);  // the longest items first
  CHECK_FALSE(plan.kv_direct);
  // A local window has no long column: no partials, the scratch is rowsum(dO ∘ O) alone, and the
  // items are the key tiles in order (columns of 4 and 3 tiles share a bucket).
  const sp::BlockLayout w = sp::local(16384, 128, 2);
  const attn::BackwardPlan local = attn::plan_backward_for(w, 64, 24);
  CHECK(local.n_slots == 0);
  CHECK(local.kv_direct);
  CHECK(local.dq_step == -1);
  CHECK(minitx::cuda::attention_backward_scratch_floats(w, {2, 16384, 12, 64}) == 2u * 12 * 16384);
  CHECK(minitx::cuda::attention_backward_scratch_floats(l, {1, 16384, 12, 64}) ==
        12u * 16384 + 12u * plan.n_slots * 2 * 64 * 64);
}

TEST_CASE("attention backward plan: B·H enough to fill the device leaves every column whole") {
  // At 1k the benchmark has 192 heads, 64 a group: sinks' 16-tile columns are no longer than a
  // slot's share, so nothing is split (no partials, no reduce) and the lists are plain tile order;
  // with one head the same layout splits them.
  const sp::BlockLayout l = sp::sinks(1024, 128, 1, 4);
  CHECK(attn::head_group_log2(1024, 64, 192) == 6);
  const attn::BackwardPlan many = attn::plan_backward_for(l, 64, 192);
  CHECK(many.chunk == 16);
  CHECK(many.n_slots == 0);
  CHECK(many.kv_direct);
  CHECK(attn::plan_backward_for(l, 64, 1).n_slots > 0);
  // Dense causal at 1k: unsplit; dQ from the last query tile (the longest) down.
  const attn::BackwardPlan causal = attn::plan_backward_for(sp::dense_causal(1024, 128), 64, 192);
  CHECK(causal.n_slots == 0);
  CHECK(causal.kv_direct);
  CHECK(causal.dq_step == -1);
  // The chunk is never past the longest column nor under kMinChunk, whatever B·H.
  for (int bh : {1, 3, 12, 192, 65535}) {
    const attn::ColumnStats s = attn::column_stats(sp::strided(4096, 128, 2, 8), 128);
    const int chunk = attn::plan_chunk(s, 4096, 128, bh);
    CHECK(chunk >= attn::BackwardPlan::kMinChunk);
    CHECK(chunk <= std::max(s.longest, attn::BackwardPlan::kMinChunk));
  }
}

TEST_CASE("attention backward plan: head groups fill 16 MB of L2, a power of two up to B·H") {
  CHECK(attn::head_group_log2(1024, 64, 192) == 6);   // 256 KB a head: 64
  CHECK(attn::head_group_log2(16384, 64, 12) == 2);   // 4 MB: 4
  CHECK(attn::head_group_log2(16384, 128, 12) == 1);  // 8 MB: 2
  CHECK(attn::head_group_log2(32768, 128, 12) == 0);  // 16 MB: 1
  CHECK(attn::head_group_log2(100, 64, 5) == 3);      // all 5 in one group of 8
  CHECK(attn::head_group_log2(100, 64, 1) == 0);
}

TEST_CASE("attention backward plan: head sizes other than 64 and 128 are refused") {
  CHECK_THROWS_WITH_AS(attn::plan_backward(sp::local(100, 16, 2), 96, 4),
                       doctest::Contains("head size D must be 64 or 128, not 96"), minitx::Error);
  CHECK_THROWS_WITH_AS(attn::column_stats(sp::local(100, 16, 2), 96),
                       doctest::Contains("head size D must be 64 or 128, not 96"), minitx::Error);
  CHECK_THROWS_WITH_AS(attn::plan_backward(sp::local(100, 16, 2), 64, 0),
                       doctest::Contains("the chunk must be at least 1 query tile, not 0"), minitx::Error);
}
