// Which tiles a CTA visits and the mask inside a partial block, shared by the kernels and by a host test (tests/test_attention_tiles.cpp)
// that checks, on the CPU, that the walks cover every allowed (query, key) pair exactly once.
//
// Key walk (forward, dQ): a query tile [q0, q0 + rows) of query block qb visits, in increasing
// key order, the tiles of `tile` keys of each kept key block; tile j is sub-tile j % subs of
// entry j / subs. It ends at the first tile that starts after the tile's last valid row: only
// the diagonal block's tail can, and everything after it would be masked.
// Query walk (dK/dV): a key tile [k0, k0 + rows) of key block kb visits the query tiles of the
// query blocks in the transpose, in increasing order, from the first one that ends at or after
// k0 (earlier sub-tiles of the diagonal block see none of these keys) to the last one before T.
#pragma once
#include <climits>
#include <cstdint>

#ifdef __CUDACC__
#define MINITX_HD __host__ __device__ __forceinline__
#else
#define MINITX_HD inline
#endif

namespace minitx::cuda::attn {

constexpr std::uint8_t kFull = 0, kCausal = 1, kGlobal = 2;

// The backward's tiles (rows of keys and queries) for a head size and block: dK/dV walks key
// tiles of kv_k rows over query tiles of kv_q, dQ query tiles of dq_q over key tiles of dq_k.
// D = 128 halves the tile the reduction runs over, to keep the two score tiles and both D-wide
// accumulators in registers. The host plan (attention_plan.h) and the kernels' dispatch both
// read it here.
struct BwdTiles {
  int kv_k, kv_q, dq_q, dq_k;
};
constexpr BwdTiles bwd_tiles(int D, int block) {
  const int t = block < 64 ? block : 64, half = D == 128 && block >= 64 ? 32 : t;
  return {t, half, t, half};
}

// The element mask inside a kept block that is not full (k <= q < T also bounds k).
MINITX_HD bool allowed(std::uint8_t kind, int q, int k, int T, const std::uint8_t* global) {
  if (k > q || q >= T) return false;
#ifdef __CUDA_ARCH__
  return kind != kGlobal || __ldg(global + q) != 0 || __ldg(global + k) != 0;
#else
  return kind != kGlobal || global[q] != 0 || global[k] != 0;
#endif
}

struct KeyWalk {
  const std::int32_t* cols;
  int e0, subs, n_tiles, block, tile, q_last;

  MINITX_HD KeyWalk(const std::int32_t* row_ptr, const std::int32_t* cols_, int row, int block_, int tile_, int q0,
                    int rows, int T)
      : cols(cols_), e0(row_ptr[row]), subs(block_ / tile_), n_tiles((row_ptr[row + 1] - row_ptr[row]) * (block_ / tile_)),
        block(block_), tile(tile_), q_last((q0 + rows < T ? q0 + rows : T) - 1) {}
  MINITX_HD int start(int j) const { return cols[e0 + j / subs] * block + (j % subs) * tile; }
  MINITX_HD int entry(int j) const { return e0 + j / subs; }
  // The start of tile j + 1, or INT_MAX when the walk ends after tile j.
  MINITX_HD int next(int j) const {
    if (j + 1 >= n_tiles) return INT_MAX;
    const int k = start(j + 1);
    return k <= q_last ? k : INT_MAX;
  }
};

struct QueryWalk {
  const std::int32_t* rows_;
  int e0, subs, n_tiles, block, tile, T;

  MINITX_HD QueryWalk(const std::int32_t* t_row_ptr, const std::int32_t* t_rows, int row, int block_, int tile_, int T_)
      : rows_(t_rows), e0(t_row_ptr[row]), subs(block_ / tile_),
        n_tiles((t_row_ptr[row + 1] - t_row_ptr[row]) * (block_ / tile_)), block(block_), tile(tile_), T(T_) {}
  MINITX_HD int start(int j) const { return rows_[e0 + j / subs] * block + (j % subs) * tile; }
  MINITX_HD int entry(int j) const { return e0 + j / subs; }
  // The first tile reaching key k0 (the diagonal block comes first in the transpose).
  MINITX_HD int first(int k0) const {
    int j = 0;
    while (start(j) + tile - 1 < k0) ++j;
    return j;
  }
  // The start of tile j + 1, or INT_MAX when the walk ends after tile j.
  MINITX_HD int next(int j) const {
    if (j + 1 >= n_tiles) return INT_MAX;
    const int q = start(j + 1);
    return q < T ? q : INT_MAX;
  }
};

}  // namespace minitx::cuda::attn
