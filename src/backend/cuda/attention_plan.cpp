// The backward's plan (attention_plan.h): plain C++, so it builds and is tested without CUDA.
#include "attention_plan.h"

#include <algorithm>

#include "attention_tiles.h"
#include "minitx/backend/cuda/attention.h"
#include "minitx/core/error.h"

namespace minitx::cuda::attn {
namespace {

// The query tiles key tile kt's walk visits: [j0, j1).
struct Column {
  std::int32_t j0, j1;
};
Column column(const sparse::BlockLayout& l, std::int32_t lh, std::int32_t kt, const BwdTiles& t) {
  const std::int32_t k0 = kt * t.kv_k;
  const QueryWalk walk(l.t_row_ptr.data(), l.t_rows.data(), lh * l.nb + k0 / l.block, l.block, t.kv_q, l.T);
  const std::int32_t j0 = walk.first(k0);
  std::int32_t j1 = j0 + 1;
  while (walk.next(j1 - 1) != INT_MAX) ++j1;
  return {j0, j1};
}

std::int32_t row_tiles(const sparse::BlockLayout& l, std::int32_t lh, std::int32_t qt, const BwdTiles& t) {
  const std::int32_t q0 = qt * t.dq_q;
  const KeyWalk walk(l.row_ptr.data(), l.cols.data(), lh * l.nb + q0 / l.block, l.block, t.dq_k, q0, t.dq_q, l.T);
  std::int32_t n = 1;
  while (walk.next(n - 1) != INT_MAX) ++n;
  return n;
}

void check_head(std::int32_t D) {
  MINITX_CHECK(D == 64 || D == 128, "attention backward plan: head size D must be 64 or 128, not {}", D);
}

}  // namespace

std::int32_t head_group_log2(std::int32_t T, std::int32_t D, std::int32_t bh) {
  const std::int64_t bytes = static_cast<std::int64_t>(T) * D * 4;  // two bf16 tensors a head
  std::int32_t log2 = 0;
  while ((bytes << (log2 + 1)) <= (std::int64_t{16} << 20) && (std::int64_t{1} << log2) < bh) ++log2;
  return log2;
}

ColumnStats column_stats(const sparse::BlockLayout& l, std::int32_t D) {
  check_head(D);
  const BwdTiles t = bwd_tiles(D, l.block);
  const std::int32_t n_kt = (l.T + t.kv_k - 1) / t.kv_k;
  ColumnStats s;
  s.heads = l.heads;
  s.columns = l.heads * n_kt;
  for (std::int32_t lh = 0; lh < l.heads; ++lh)
    for (std::int32_t kt = 0; kt < n_kt; ++kt) {
      const Column c = column(l, lh, kt, t);
      s.pairs += c.j1 - c.j0;
      s.longest = std::max(s.longest, c.j1 - c.j0);
    }
  return s;
}

std::int32_t plan_chunk(const ColumnStats& s, std::int32_t T, std::int32_t D, std::int32_t bh) {
  MINITX_CHECK(bh >= 1, "attention backward plan: B·H must be at least 1, not {}", bh);
  const std::int64_t average = (s.pairs + s.columns - 1) / s.columns;
  const std::int64_t per_head = (s.pairs + s.heads - 1) / s.heads;
  const std::int64_t group = std::min<std::int64_t>(std::int64_t{1} << head_group_log2(T, D, bh), bh);
  const std::int64_t share = (per_head * group + BackwardPlan::kSlotCeiling - 1) / BackwardPlan::kSlotCeiling;
  const std::int64_t chunk = std::min<std::int64_t>(s.longest, std::max(average, share));
  return static_cast<std::int32_t>(std::max<std::int64_t>(BackwardPlan::kMinChunk, chunk));
}

BackwardPlan plan_backward_for(const sparse::BlockLayout& l, std::int32_t D, std::int32_t bh) {
  return plan_backward(l, D, plan_chunk(column_stats(l, D), l.T, D, bh));
}

BackwardPlan plan_backward(const sparse::BlockLayout& l, std::int32_t D, std::int32_t chunk) {
  check_head(D);
  MINITX_CHECK(chunk >= 1, "attention backward plan: the chunk must be at least 1 query tile, not {}", chunk);
  const BwdTiles t = bwd_tiles(D, l.block);
  BackwardPlan plan;
  plan.kv_k = t.kv_k;
  plan.kv_q = t.kv_q;
  plan.dq_q = t.dq_q;
  plan.heads = l.heads;
  plan.chunk = chunk;
  const std::int32_t n_kt = (l.T + t.kv_k - 1) / t.kv_k, n_qt = (l.T + t.dq_q - 1) / t.dq_q;
  const std::int32_t width = (chunk + 1) / 2;  // a bucket: lengths within half a chunk
  auto bucket = [width](std::int32_t len) { return (len + width - 1) / width; };

  std::vector<std::vector<KvItem>> items(static_cast<std::size_t>(l.heads));
  std::vector<std::vector<KvSplit>> splits(static_cast<std::size_t>(l.heads));
  plan.kv_direct = true;
  for (std::int32_t lh = 0; lh < l.heads; ++lh) {
    std::vector<KvItem>& list = items[static_cast<std::size_t>(lh)];
    std::int32_t slot = 0;
    for (std::int32_t kt = 0; kt < n_kt; ++kt) {
      const Column c = column(l, lh, kt, t);
      const std::int32_t len = c.j1 - c.j0;
      if (len <= chunk) {
        list.push_back({kt, c.j0, c.j1, -1});
        continue;
      }
      const std::int32_t n = (len + chunk - 1) / chunk, base = len / n, extra = len % n;
      splits[static_cast<std::size_t>(lh)].push_back({kt, slot, n, 0});
      for (std::int32_t i = 0, j = c.j0; i < n; ++i) {
        const std::int32_t size = base + (i < extra ? 1 : 0);
        list.push_back({kt, j, j + size, slot++});
        j += size;
      }
    }
    // Longest bucket first; stable, so within a bucket (key tile, chunk) order.
    std::stable_sort(list.begin(), list.end(),
                     [&](const KvItem& a, const KvItem& b) { return bucket(a.j1 - a.j0) > bucket(b.j1 - b.j0); });
    for (std::size_t i = 0; i < list.size(); ++i)
      plan.kv_direct = plan.kv_direct && list[i].kt == static_cast<std::int32_t>(i) && list[i].slot < 0;
    plan.kv_direct = plan.kv_direct && static_cast<std::int32_t>(list.size()) == n_kt;
    plan.n_kv = std::max(plan.n_kv, static_cast<std::int32_t>(list.size()));
    plan.n_split = std::max(plan.n_split, static_cast<std::int32_t>(splits[static_cast<std::size_t>(lh)].size()));
    plan.n_slots = std::max(plan.n_slots, slot);
  }
  const std::size_t heads = static_cast<std::size_t>(l.heads);
  plan.kv.assign(heads * static_cast<std::size_t>(plan.n_kv), KvItem{-1, 0, 0, -1});
  plan.splits.assign(heads * static_cast<std::size_t>(plan.n_split), KvSplit{-1, 0, 0, 0});
  for (std::size_t lh = 0; lh < heads; ++lh) {
    std::copy(items[lh].begin(), items[lh].end(), plan.kv.begin() + static_cast<std::ptrdiff_t>(lh * plan.n_kv));
    std::copy(splits[lh].begin(), splits[lh].end(),
              plan.splits.begin() + static_cast<std::ptrdiff_t>(lh * plan.n_split));
  }

  plan.n_dq = n_qt;
  plan.dq.resize(heads * static_cast<std::size_t>(n_qt));
  std::vector<std::int32_t> len(static_cast<std::size_t>(n_qt));
  bool up = true, down = true;
  for (std::int32_t lh = 0; lh < l.heads; ++lh) {
    const auto order = plan.dq.begin() + static_cast<std::ptrdiff_t>(lh) * n_qt;
    for (std::int32_t qt = 0; qt < n_qt; ++qt) {
      order[qt] = n_qt - 1 - qt;
      len[static_cast<std::size_t>(qt)] = row_tiles(l, lh, qt, t);
    }
    std::stable_sort(order, order + n_qt, [&](std::int32_t a, std::int32_t b) {
      return bucket(len[static_cast<std::size_t>(a)]) > bucket(len[static_cast<std::size_t>(b)]);
    });
    for (std::int32_t i = 0; i < n_qt; ++i) {
      up = up && order[i] == i;
      down = down && order[i] == n_qt - 1 - i;
    }
  }
  plan.dq_step = up ? 1 : down ? -1 : 0;
  return plan;
}

}  // namespace minitx::cuda::attn

namespace minitx::cuda {

std::size_t attention_backward_scratch_floats(const sparse::BlockLayout& layout, const AttentionShape& shape) {
  return attn::scratch_floats(attn::plan_backward_for(layout, shape.D, shape.B * shape.H),
                              static_cast<std::size_t>(shape.B), static_cast<std::size_t>(shape.H),
                              static_cast<std::size_t>(shape.T), shape.D);
}

}  // namespace minitx::cuda
