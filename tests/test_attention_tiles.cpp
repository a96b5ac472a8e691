// The tile walks and the partial-block mask of the attention kernels, run on the CPU (the same
// header the kernels use): for every pattern, block size and tile shape the kernels launch,
// the forward/dQ walk and the dK/dV walk must together cover every allowed (query, key) pair
// exactly once and nothing else, and a block the layout calls full must need no mask.
#include <doctest/doctest.h>

#include <climits>
#include <string>
#include <vector>

#include "../src/backend/cuda/attention_tiles.h"
#include "minitx/sparse/layout.h"

namespace sp = minitx::sparse;
namespace attn = minitx::cuda::attn;

namespace {

// Is (q, k) computed by a tile of this kind, as the kernels decide it?
bool kernel_keeps(const sp::BlockLayout& l, std::uint8_t kind, int q, int k) {
  if (q >= l.T || k >= l.T) return false;  // rows/keys past T are never stored
  if (kind == attn::kFull) return true;
  return attn::allowed(kind, q, k, l.T, l.global_tokens.empty() ? nullptr : l.global_tokens.data());
}

void check_walks(const sp::BlockLayout& l, int rows, int tile) {
  const int T = l.T;
  std::vector<std::uint8_t> kinds(l.kinds.size()), t_kinds(l.t_kinds.size());
  for (std::size_t i = 0; i < kinds.size(); ++i) kinds[i] = static_cast<std::uint8_t>(l.kinds[i]);
  for (std::size_t i = 0; i < t_kinds.size(); ++i) t_kinds[i] = static_cast<std::uint8_t>(l.t_kinds[i]);
  for (int h = 0; h < l.heads; ++h) {
    std::vector<int> by_query(static_cast<std::size_t>(T) * T, 0), by_key(static_cast<std::size_t>(T) * T, 0);
    std::size_t full_masked = 0;
    // Forward / dQ: query tiles of `rows` over key tiles of `tile`.
    for (int q0 = 0; q0 < T; q0 += rows) {
      const attn::KeyWalk walk(l.row_ptr.data(), l.cols.data(), h * l.nb + q0 / l.block, l.block, tile, q0, rows, T);
      for (int j = 0, k0 = walk.start(0);; ++j) {
        const std::uint8_t kind = kinds[walk.entry(j)];
        for (int q = q0; q < q0 + rows; ++q)
          for (int k = k0; k < k0 + tile; ++k) {
            if (kind == attn::kFull && q < T && !l.allowed(h, q, k)) ++full_masked;
            if (kernel_keeps(l, kind, q, k)) ++by_query[static_cast<std::size_t>(q) * T + k];
          }
        const int next = walk.next(j);
        if (next == INT_MAX) break;
        CHECK(next > k0);
        k0 = next;
      }
    }
    // dK/dV: key tiles of `rows` over query tiles of `tile` (the same shapes, transposed).
    for (int k0 = 0; k0 < T; k0 += rows) {
      const attn::QueryWalk walk(l.t_row_ptr.data(), l.t_rows.data(), h * l.nb + k0 / l.block, l.block, tile, T);
      int j = walk.first(k0);
      for (int q0 = walk.start(j);; ++j) {
        const std::uint8_t kind = t_kinds[walk.entry(j)];
        for (int q = q0; q < q0 + tile; ++q)
          for (int k = k0; k < k0 + rows; ++k)
            if (kernel_keeps(l, kind, q, k)) ++by_key[static_cast<std::size_t>(q) * T + k];
        const int next = walk.next(j);
        if (next == INT_MAX) break;
        CHECK(next > q0);
        q0 = next;
      }
    }
    std::size_t wrong_q = 0, wrong_k = 0;
    for (int q = 0; q < T; ++q)
      for (int k = 0; k < T; ++k) {
        const int want = l.allowed(h, q, k) ? 1 : 0;
        wrong_q += by_query[static_cast<std::size_t>(q) * T + k] != want;
        wrong_k += by_key[static_cast<std::size_t>(q) * T + k] != want;
      }
    CHECK(full_masked == 0);
    CHECK(wrong_q == 0);
    CHECK(wrong_k == 0);
  }
}

}  // namespace

TEST_CASE("attention tiles: the kernels' walks cover exactly the allowed pairs") {
  for (int block : {16, 32, 64, 128})
    for (int T : {1, 100, 301, 515}) {
      const std::vector<std::pair<std::string, sp::BlockLayout>> layouts = {
          {"dense", sp::dense_causal(T, block)},
          {"local", sp::local(T, block, 2)},
          {"strided", sp::strided(T, block, 2, 3)},
          {"bigbird", sp::bigbird(T, block, 1, 1, 2, 5, 3)},
          {"longformer", sp::longformer(T, block, 1, {0, T / 3, T - 1})},
          {"sinks", sp::sinks(T, block, 1, 2)},
      };
      for (const auto& [name, layout] : layouts)
        // Every (rows, tile) shape the kernels launch (the fp32 path uses the whole block): both
        // at most the block, both dividing it.
        for (int rows : {16, 32, 64, 128})
          for (int tile : {16, 32, 64, 128}) {
            if (rows > block || tile > block) continue;
            CAPTURE(block);
            CAPTURE(T);
            CAPTURE(name);
            CAPTURE(rows);
            CAPTURE(tile);
            check_walks(layout, rows, tile);
          }
    }
}
