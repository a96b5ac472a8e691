// Block-sparse attention layouts as data (FlexAttention's BlockMask, Sparse Transformers'
// patterns). T tokens are cut into nb = ceil(T / block) blocks; for each query block the layout
// lists, sorted, the key blocks it attends (CSR), and the transpose lists for each key block the
// query blocks that attend it (what the backward's dK/dV pass walks). A layout is causal: a
// query block never keeps a key block after it, and always keeps its diagonal.
//
// Each kept block has a kind, so a kernel applies a mask only where one can bite:
//   full    every (q, k) inside is allowed (a block strictly below the diagonal);
//   causal  allowed iff k <= q (every diagonal block is causal, so each row keeps its own
//           token; off the diagonal k <= q is vacuous);
//   global  allowed iff k <= q and (q or k is a global token): blocks kept only because
//           Longformer's global tokens sit in their row or column.
// Tokens at or past T (the tail of the last block) are never allowed.
//
// A layout holds `heads` layouts (1 = shared by all heads), stacked: row h·nb + qb.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace minitx::sparse {

enum class BlockKind : std::uint8_t { full = 0, causal = 1, global = 2 };

struct BlockLayout {
  std::int32_t T = 0, block = 0, nb = 0, heads = 1;
  // Query-major: row h·nb + qb holds cols[row_ptr[row] .. row_ptr[row + 1]) (key blocks, sorted).
  std::vector<std::int32_t> row_ptr, cols;
  std::vector<BlockKind> kinds;  // one per entry of cols
  // Key-major transpose: row h·nb + kb holds the query blocks attending it, sorted.
  std::vector<std::int32_t> t_row_ptr, t_rows;
  std::vector<BlockKind> t_kinds;
  // One flag per token (size T) when any block is `global`, else empty.
  std::vector<std::uint8_t> global_tokens;

  std::int64_t kept_blocks() const { return static_cast<std::int64_t>(cols.size()); }
  // Kept blocks / causal blocks (nb(nb+1)/2 per head), over all heads.
  double density() const;
  // The element mask: may query q attend key k in head h? (h is ignored when heads == 1.)
  bool allowed(std::int32_t h, std::int32_t q, std::int32_t k) const;
  // Is block (qb, kb) kept in head h? If so and kind is not null, *kind gets its kind.
  bool find(std::int32_t h, std::int32_t qb, std::int32_t kb, BlockKind* kind) const;
};

// Checks everything a kernel relies on; throws minitx::Error "block layout: <name>: ..." where
// <name> is one of bad-shape, bad-offsets, out-of-range, unsorted, not-causal, no-diagonal,
// bad-kind, bad-globals, transpose-mismatch.
void validate(const BlockLayout& layout);

// Builds a layout from the query-major lists alone (derives the transpose) and validates it:
// the one way in for layouts made elsewhere (loaded, or written by hand in a test).
BlockLayout layout_from_rows(std::int32_t T, std::int32_t block, std::int32_t heads,
                             std::vector<std::int32_t> row_ptr, std::vector<std::int32_t> cols,
                             std::vector<BlockKind> kinds, std::vector<std::uint8_t> global_tokens = {});

// Per (head, query block, key block <= query block): keep it? The kind follows from position
// (diagonal = causal, else full). For masks written as formulas, like the peer script's.
using BlockPredicate = std::function<bool(std::int32_t h, std::int32_t qb, std::int32_t kb)>;
BlockLayout layout_from_predicate(std::int32_t T, std::int32_t block, std::int32_t heads, const BlockPredicate& keep);

// The patterns. W counts blocks and includes the diagonal (W = 1: the diagonal only).
BlockLayout dense_causal(std::int32_t T, std::int32_t block);
BlockLayout local(std::int32_t T, std::int32_t block, std::int32_t W);
// Local plus every S-th block column (kb % S == S - 1), Sparse Transformers' "fixed" pattern
// as the peer script writes it.
BlockLayout strided(std::int32_t T, std::int32_t block, std::int32_t W, std::int32_t S);
// Local + G global blocks (the first G block columns, and those blocks' rows attend everything
// before them) + R random earlier blocks per query block, drawn from CounterRng(seed, head)
// among the blocks not already kept. heads > 1 draws a different random set per head.
BlockLayout bigbird(std::int32_t T, std::int32_t block, std::int32_t W, std::int32_t G, std::int32_t R,
                    std::uint64_t seed, std::int32_t heads = 1);
// Local + global tokens (sorted or not, each < T): a global token attends every earlier token
// and every later token attends it; the blocks this adds are of kind global.
BlockLayout longformer(std::int32_t T, std::int32_t block, std::int32_t W, const std::vector<std::int32_t>& global_tokens);
// StreamingLLM: the first S blocks (attention sinks) + a window of W blocks.
BlockLayout sinks(std::int32_t T, std::int32_t block, std::int32_t S, std::int32_t W);

}  // namespace minitx::sparse
