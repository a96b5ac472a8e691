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


}  // namespace

BackwardPlan plan_backward(const sparse::BlockLayout& l, std::int32_t D) {
  MINITX_CHECK(D == 64 || D == 128, "attention backward plan: head size D must be 64 or 128, not {}", D);
  const BwdTiles t = bwd_tiles(D, l.block);
  BackwardPlan plan;
  plan.kv_k = t.kv_k;
  plan.kv_q = t.kv_q;
  plan.dq_q = t.dq_q;
  plan.heads = l.heads;
  const std::int32_t n_kt = (l.T + t.kv_k - 1) / t.kv_k, n_qt = (l.T + t.dq_q - 1) / t.dq_q;

  std::vector<Column> cols(static_cast<std::size_t>(l.heads) * n_kt);
  std::int64_t total = 0;
  for (std::int32_t lh = 0; lh < l.heads; ++lh)
    for (std::int32_t kt = 0; kt < n_kt; ++kt) {
      const Column c = column(l, lh, kt, t);
      cols[static_cast<std::size_t>(lh) * n_kt + kt] = c;
      total += c.j1 - c.j0;
    }
  const std::int64_t n_cols = static_cast<std::int64_t>(cols.size());
  const auto average = static_cast<std::int32_t>((total + n_cols - 1) / n_cols);
  plan.chunk = std::max(BackwardPlan::kMinChunk, average);

  std::vector<std::vector<KvItem>> items(static_cast<std::size_t>(l.heads));
  std::vector<std::vector<KvSplit>> splits(static_cast<std::size_t>(l.heads));
  for (std::int32_t lh = 0; lh < l.heads; ++lh) {
    std::vector<KvItem>& list = items[static_cast<std::size_t>(lh)];
    std::int32_t slot = 0;
    for (std::int32_t kt = 0; kt < n_kt; ++kt) {
      const Column c = cols[static_cast<std::size_t>(lh) * n_kt + kt];
      const std::int32_t len = c.j1 - c.j0;
      if (len <= plan.chunk) {
        list.push_back({kt, c.j0, c.j1, -1});
        continue;
      }
      const std::int32_t n = (len + plan.chunk - 1) / plan.chunk, base = len / n, extra = len % n;
      splits[static_cast<std::size_t>(lh)].push_back({kt, slot, n, 0});
      for (std::int32_t i = 0, j = c.j0; i < n; ++i) {
        const std::int32_t size = base + (i < extra ? 1 : 0);
        list.push_back({kt, j, j + size, slot++});
        j += size;
      }
    }
    // LPT; stable, so equal lengths stay in (key tile, chunk) order.
    std::stable_sort(list.begin(), list.end(),
                     [](const KvItem& a, const KvItem& b) { return a.j1 - a.j0 > b.j1 - b.j0; });
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
  for (std::int32_t lh = 0; lh < l.heads; ++lh) {
    const auto order = plan.dq.begin() + static_cast<std::ptrdiff_t>(lh) * n_qt;
    for (std::int32_t qt = 0; qt < n_qt; ++qt) {
      order[qt] = qt;
      len[static_cast<std::size_t>(qt)] = row_tiles(l, lh, qt, t);
    }
    std::stable_sort(order, order + n_qt, [&](std::int32_t a, std::int32_t b) {
      return len[static_cast<std::size_t>(a)] > len[static_cast<std::size_t>(b)];
    });
  }
  return plan;
}

}  // namespace minitx::cuda::attn

namespace minitx::cuda {

std::size_t attention_backward_scratch_floats(const sparse::BlockLayout& layout, const AttentionShape& shape) {
  return attn::scratch_floats(attn::plan_backward(layout, shape.D), static_cast<std::size_t>(shape.B),
                              static_cast<std::size_t>(shape.H), static_cast<std::size_t>(shape.T), shape.D);
}

}  // namespace minitx::cuda
