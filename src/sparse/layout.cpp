// Layouts are built as per-row sets, flattened to CSR, transposed, then validated: every
// pattern goes through the same checks as a layout that comes from outside.
#include "minitx/sparse/layout.h"

#include <algorithm>
#include <map>
#include <utility>

#include "minitx/core/error.h"
#include "minitx/core/rng.h"

namespace minitx::sparse {
namespace {

using Row = std::map<std::int32_t, BlockKind>;  // key block -> kind, kept sorted by the map

std::int32_t block_count(std::int32_t T, std::int32_t block) { return (T + block - 1) / block; }

void check_shape(std::int32_t T, std::int32_t block, std::int32_t heads) {
  MINITX_CHECK(block == 16 || block == 32 || block == 64 || block == 128,
               "block layout: bad-shape: block size must be 16, 32, 64 or 128, not {}", block);
  MINITX_CHECK(T >= 1, "block layout: bad-shape: T must be at least 1, not {}", T);
  MINITX_CHECK(heads >= 1, "block layout: bad-shape: heads must be at least 1, not {}", heads);
}

BlockKind position_kind(std::int32_t qb, std::int32_t kb) { return qb == kb ? BlockKind::causal : BlockKind::full; }

// The transpose, in query-block order within each key block (the order the backward sums in).
void fill_transpose(BlockLayout& l) {
  const std::size_t rows = static_cast<std::size_t>(l.heads) * l.nb;
  std::vector<std::int32_t> count(rows + 1, 0);
  for (std::int32_t h = 0; h < l.heads; ++h)
    for (std::int32_t qb = 0; qb < l.nb; ++qb) {
      const std::size_t r = static_cast<std::size_t>(h) * l.nb + qb;
      for (std::int32_t e = l.row_ptr[r]; e < l.row_ptr[r + 1]; ++e)
        ++count[static_cast<std::size_t>(h) * l.nb + l.cols[e] + 1];
    }
  l.t_row_ptr.assign(rows + 1, 0);
  for (std::size_t r = 0; r < rows; ++r) l.t_row_ptr[r + 1] = l.t_row_ptr[r] + count[r + 1];
  l.t_rows.assign(l.cols.size(), 0);
  l.t_kinds.assign(l.cols.size(), BlockKind::full);
  std::vector<std::int32_t> next(l.t_row_ptr.begin(), l.t_row_ptr.end() - 1);
  // Walking query blocks in increasing order leaves each transposed row sorted.
  for (std::int32_t h = 0; h < l.heads; ++h)
    for (std::int32_t qb = 0; qb < l.nb; ++qb) {
      const std::size_t r = static_cast<std::size_t>(h) * l.nb + qb;
      for (std::int32_t e = l.row_ptr[r]; e < l.row_ptr[r + 1]; ++e) {
        const std::int32_t slot = next[static_cast<std::size_t>(h) * l.nb + l.cols[e]]++;
        l.t_rows[slot] = qb;
        l.t_kinds[slot] = l.kinds[e];
      }
    }
}

BlockLayout from_row_sets(std::int32_t T, std::int32_t block, std::int32_t heads, const std::vector<Row>& rows,
                          std::vector<std::uint8_t> global_tokens = {}) {
  BlockLayout l;
  l.T = T;
  l.block = block;
  l.nb = block_count(T, block);
  l.heads = heads;
  l.row_ptr.push_back(0);
  for (const Row& row : rows) {
    for (const auto& [kb, kind] : row) {
      l.cols.push_back(kb);
      l.kinds.push_back(kind);
    }
    l.row_ptr.push_back(static_cast<std::int32_t>(l.cols.size()));
  }
  l.global_tokens = std::move(global_tokens);
  fill_transpose(l);
  validate(l);
  return l;
}

// Local window rows: the W blocks ending at the diagonal.
std::vector<Row> local_rows(std::int32_t nb, std::int32_t heads, std::int32_t W) {
  MINITX_CHECK(W >= 1, "block layout: bad-shape: the window must be at least 1 block, not {}", W);
  std::vector<Row> rows(static_cast<std::size_t>(heads) * nb);
  for (std::int32_t h = 0; h < heads; ++h)
    for (std::int32_t qb = 0; qb < nb; ++qb)
      for (std::int32_t kb = std::max(0, qb - W + 1); kb <= qb; ++kb)
        rows[static_cast<std::size_t>(h) * nb + qb][kb] = position_kind(qb, kb);
  return rows;
}

}  // namespace

double BlockLayout::density() const {
  const double causal = static_cast<double>(heads) * nb * (nb + 1) / 2.0;
  return static_cast<double>(cols.size()) / causal;
}

bool BlockLayout::find(std::int32_t h, std::int32_t qb, std::int32_t kb, BlockKind* kind) const {
  const std::size_t r = static_cast<std::size_t>(heads == 1 ? 0 : h) * nb + qb;
  const auto begin = cols.begin() + row_ptr[r], end = cols.begin() + row_ptr[r + 1];
  const auto it = std::lower_bound(begin, end, kb);
  if (it == end || *it != kb) return false;
  if (kind) *kind = kinds[static_cast<std::size_t>(it - cols.begin())];
  return true;
}

bool BlockLayout::allowed(std::int32_t h, std::int32_t q, std::int32_t k) const {
  if (q < 0 || k < 0 || q >= T || k >= T || k > q) return false;
  BlockKind kind{};
  if (!find(h, q / block, k / block, &kind)) return false;
  if (kind != BlockKind::global) return true;
  return global_tokens[q] != 0 || global_tokens[k] != 0;
}

void validate(const BlockLayout& l) {
  check_shape(l.T, l.block, l.heads);
  MINITX_CHECK(l.nb == block_count(l.T, l.block), "block layout: bad-shape: {} blocks for T = {} and block {}, expected {}",
               l.nb, l.T, l.block, block_count(l.T, l.block));
  const std::size_t rows = static_cast<std::size_t>(l.heads) * l.nb;
  MINITX_CHECK(l.row_ptr.size() == rows + 1 && l.row_ptr.front() == 0 &&
                   l.row_ptr.back() == static_cast<std::int32_t>(l.cols.size()) && l.kinds.size() == l.cols.size(),
               "block layout: bad-offsets: row offsets must be {} values from 0 to the {} entries", rows + 1,
               l.cols.size());
  for (std::size_t r = 0; r < rows; ++r)
    MINITX_CHECK(l.row_ptr[r] <= l.row_ptr[r + 1], "block layout: bad-offsets: row {} ends before it starts", r);
  MINITX_CHECK(l.global_tokens.empty() || l.global_tokens.size() == static_cast<std::size_t>(l.T),
               "block layout: bad-globals: {} global-token flags for T = {}", l.global_tokens.size(), l.T);
  for (std::uint8_t g : l.global_tokens)
    MINITX_CHECK(g <= 1, "block layout: bad-globals: a global-token flag is {}, not 0 or 1", g);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int32_t qb = static_cast<std::int32_t>(r % static_cast<std::size_t>(l.nb));
    const std::int32_t begin = l.row_ptr[r], end = l.row_ptr[r + 1];
    for (std::int32_t e = begin; e < end; ++e) {
      const std::int32_t kb = l.cols[e];
      MINITX_CHECK(kb >= 0 && kb < l.nb, "block layout: out-of-range: query block {} keeps key block {} of {}", qb, kb,
                   l.nb);
      MINITX_CHECK(e == begin || l.cols[e - 1] < kb, "block layout: unsorted: query block {} lists {} after {}", qb, kb,
                   l.cols[e - 1]);
      MINITX_CHECK(kb <= qb, "block layout: not-causal: query block {} keeps the later key block {}", qb, kb);
      const auto kind = static_cast<std::uint8_t>(l.kinds[e]);
      MINITX_CHECK(kind <= 2, "block layout: bad-kind: block ({}, {}) has kind {}", qb, kb, kind);
      // Causal, so that every row keeps at least its own token and its softmax is defined.
      MINITX_CHECK(kb != qb || l.kinds[e] == BlockKind::causal,
                   "block layout: bad-kind: the diagonal block {} must be of kind causal", qb);
      MINITX_CHECK(l.kinds[e] != BlockKind::global || !l.global_tokens.empty(),
                   "block layout: bad-kind: block ({}, {}) is global but the layout has no global tokens", qb, kb);
    }
    MINITX_CHECK(end > begin && l.cols[end - 1] == qb, "block layout: no-diagonal: query block {} does not keep itself",
                 qb);
  }
  BlockLayout t = l;
  fill_transpose(t);
  MINITX_CHECK(t.t_row_ptr == l.t_row_ptr && t.t_rows == l.t_rows && t.t_kinds == l.t_kinds,
               "block layout: transpose-mismatch: the key-major lists are not the transpose of the query-major ones");
}

BlockLayout layout_from_rows(std::int32_t T, std::int32_t block, std::int32_t heads, std::vector<std::int32_t> row_ptr,
                             std::vector<std::int32_t> cols, std::vector<BlockKind> kinds,
                             std::vector<std::uint8_t> global_tokens) {
  check_shape(T, block, heads);
  BlockLayout l;
  l.T = T;
  l.block = block;
  l.nb = block_count(T, block);
  l.heads = heads;
  l.row_ptr = std::move(row_ptr);
  l.cols = std::move(cols);
  l.kinds = std::move(kinds);
  l.global_tokens = std::move(global_tokens);
  // The transpose is derived from valid rows only, so the row checks come first.
  MINITX_CHECK(l.row_ptr.size() == static_cast<std::size_t>(heads) * l.nb + 1 && l.row_ptr.front() == 0 &&
                   l.row_ptr.back() == static_cast<std::int32_t>(l.cols.size()) && l.kinds.size() == l.cols.size(),
               "block layout: bad-offsets: row offsets must be {} values from 0 to the {} entries",
               static_cast<std::size_t>(heads) * l.nb + 1, l.cols.size());
  for (std::size_t r = 0; r + 1 < l.row_ptr.size(); ++r)
    MINITX_CHECK(l.row_ptr[r] <= l.row_ptr[r + 1], "block layout: bad-offsets: row {} ends before it starts", r);
  for (std::int32_t kb : l.cols)
    MINITX_CHECK(kb >= 0 && kb < l.nb, "block layout: out-of-range: key block {} of {}", kb, l.nb);
  fill_transpose(l);
  validate(l);
  return l;
}

BlockLayout layout_from_predicate(std::int32_t T, std::int32_t block, std::int32_t heads, const BlockPredicate& keep) {
  check_shape(T, block, heads);
  const std::int32_t nb = block_count(T, block);
  std::vector<Row> rows(static_cast<std::size_t>(heads) * nb);
  for (std::int32_t h = 0; h < heads; ++h)
    for (std::int32_t qb = 0; qb < nb; ++qb)
      for (std::int32_t kb = 0; kb <= qb; ++kb)
        if (kb == qb || keep(h, qb, kb)) rows[static_cast<std::size_t>(h) * nb + qb][kb] = position_kind(qb, kb);
  return from_row_sets(T, block, heads, rows);
}

BlockLayout dense_causal(std::int32_t T, std::int32_t block) {
  return layout_from_predicate(T, block, 1, [](std::int32_t, std::int32_t, std::int32_t) { return true; });
}

BlockLayout local(std::int32_t T, std::int32_t block, std::int32_t W) {
  check_shape(T, block, 1);
  return from_row_sets(T, block, 1, local_rows(block_count(T, block), 1, W));
}

BlockLayout strided(std::int32_t T, std::int32_t block, std::int32_t W, std::int32_t S) {
  check_shape(T, block, 1);
  MINITX_CHECK(S >= 1, "block layout: bad-shape: the stride must be at least 1 block, not {}", S);
  const std::int32_t nb = block_count(T, block);
  auto rows = local_rows(nb, 1, W);
  for (std::int32_t qb = 0; qb < nb; ++qb)
    for (std::int32_t kb = S - 1; kb <= qb; kb += S) rows[qb][kb] = position_kind(qb, kb);
  return from_row_sets(T, block, 1, rows);
}

BlockLayout bigbird(std::int32_t T, std::int32_t block, std::int32_t W, std::int32_t G, std::int32_t R,
                    std::uint64_t seed, std::int32_t heads) {
  check_shape(T, block, heads);
  MINITX_CHECK(G >= 0 && R >= 0 && R < 65536, "block layout: bad-shape: bigbird needs G >= 0 and 0 <= R < 65536");
  const std::int32_t nb = block_count(T, block);
  auto rows = local_rows(nb, heads, W);
  for (std::int32_t h = 0; h < heads; ++h) {
    const CounterRng rng(seed, static_cast<std::uint64_t>(h));
    for (std::int32_t qb = 0; qb < nb; ++qb) {
      Row& row = rows[static_cast<std::size_t>(h) * nb + qb];
      // Global blocks: the first G columns; the first G rows attend all before them.
      for (std::int32_t kb = 0; kb <= qb; ++kb)
        if (kb < G || qb < G) row[kb] = position_kind(qb, kb);
      // Random blocks: a partial Fisher-Yates over the blocks still free, one draw per pick,
      // each draw indexed by (query block, pick) so a row's choice depends on nothing else.
      std::vector<std::int32_t> free;
      for (std::int32_t kb = 0; kb < qb; ++kb)
        if (!row.count(kb)) free.push_back(kb);
      const std::int32_t picks = std::min<std::int32_t>(R, static_cast<std::int32_t>(free.size()));
      for (std::int32_t i = 0; i < picks; ++i) {
        const std::uint64_t index = (static_cast<std::uint64_t>(qb) << 16) | static_cast<std::uint64_t>(i);
        const std::size_t j = i + rng.below(index, free.size() - static_cast<std::size_t>(i));
        std::swap(free[static_cast<std::size_t>(i)], free[j]);
        row[free[static_cast<std::size_t>(i)]] = BlockKind::full;
      }
    }
  }
  return from_row_sets(T, block, heads, rows);
}

BlockLayout longformer(std::int32_t T, std::int32_t block, std::int32_t W, const std::vector<std::int32_t>& global_tokens) {
  check_shape(T, block, 1);
  const std::int32_t nb = block_count(T, block);
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(T), 0);
  std::vector<std::uint8_t> block_has(static_cast<std::size_t>(nb), 0);
  for (std::int32_t g : global_tokens) {
    MINITX_CHECK(g >= 0 && g < T, "block layout: bad-globals: global token {} is outside [0, {})", g, T);
    flags[g] = 1;
    block_has[g / block] = 1;
  }
  auto rows = local_rows(nb, 1, W);
  for (std::int32_t qb = 0; qb < nb; ++qb)
    for (std::int32_t kb = 0; kb <= qb; ++kb)
      if ((block_has[qb] || block_has[kb]) && !rows[qb].count(kb)) rows[qb][kb] = BlockKind::global;
  return from_row_sets(T, block, 1, rows, global_tokens.empty() ? std::vector<std::uint8_t>{} : flags);
}

BlockLayout sinks(std::int32_t T, std::int32_t block, std::int32_t S, std::int32_t W) {
  check_shape(T, block, 1);
  MINITX_CHECK(S >= 0, "block layout: bad-shape: the number of sink blocks must be >= 0, not {}", S);
  const std::int32_t nb = block_count(T, block);
  auto rows = local_rows(nb, 1, W);
  for (std::int32_t qb = 0; qb < nb; ++qb)
    for (std::int32_t kb = 0; kb < std::min(S, qb + 1); ++kb) rows[qb][kb] = position_kind(qb, kb);
  return from_row_sets(T, block, 1, rows);
}

}  // namespace minitx::sparse
