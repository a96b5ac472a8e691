// Backward in four kernels, none with atomics, so every gradient element is summed by one
// thread in an order fixed by the layout:
//   1. delta_i = rowsum(dO_i ∘ O_i)                      (one warp per row and head)
//   2. dK, dV per work item of the plan (attention_plan.h): a key tile over a range of the query
//      tiles of the layout's transpose, in increasing order (one warp per 16 key rows; P and dS
//      are recomputed from Q, K, V, lse, so nothing T x T is stored). A whole column writes bf16;
//      a chunk of a long column writes an fp32 partial;
//   3. the split columns' partials added in chunk order, then scaled and rounded to bf16;
//   4. dQ per query tile, over its kept key blocks in increasing order (one warp per 16 query
//      rows), the tiles with the longest walks first; on a side stream, beside 2 and 3.
// dK/dV and dQ launch heads in groups (grid y) whose tensors the group's CTAs share in L2, and
// within a group (grid x) item by item with the group's heads side by side: CTAs start in linear
// order, so each group's longest items go first and neighbouring tiles run together.
// Each computes P = exp2(S·scale·log2e − lse·log2e) exactly as the forward's softmax normalised it.
#include <climits>
#include <cmath>

#include "attention_common.cuh"
#include "common.cuh"

namespace minitx::cuda::attn {
namespace {

template <int D>
__global__ void __launch_bounds__(256) attention_delta_kernel(const Params p) {
  const int lane = threadIdx.x & 31;
  const std::int64_t rows = static_cast<std::int64_t>(p.B) * p.H * p.T;
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (r >= rows) return;
  const int q = static_cast<int>(r % p.T), bh = static_cast<int>(r / p.T), b = bh / p.H, h = bh % p.H;
  const std::int64_t tok = static_cast<std::int64_t>(b) * p.T + q;
  const bf16* o = bf(p.out) + tok * p.ld_out + h * D;
  const bf16* d = bf(p.dout) + tok * p.ld_dout + h * D;
  float sum = 0.f;
#pragma unroll
  for (int c = lane * 2; c < D; c += 64) {
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(o + c));
    const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(d + c));
    sum += a.x * x.x + a.y * x.y;
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) p.delta[static_cast<std::int64_t>(bh) * p.T + q] = sum;
}

// This CTA's (batch·head, item) in the grouped grid; bh >= B·H in the last group's spare heads.
struct GroupSlot {
  int bh, item;
};
__device__ __forceinline__ GroupSlot group_slot(const Params& p) {
  const int lg = p.plan.log2_group;
  return {static_cast<int>((blockIdx.y << lg) + (blockIdx.x & ((1u << lg) - 1))), static_cast<int>(blockIdx.x >> lg)};
}

// ---- dK, dV ------------------------------------------------------------------------------

template <int D, int KT, int QT>
struct KvConfig {
  static constexpr int kWarps = KT / 16, kThreads = 32 * kWarps, LD = D + 8;
  // K, V; two buffers of (Q, dO); two of (lse·log2e, delta).
  static constexpr int kSmem = 2 * tile_bytes(KT, D) + 4 * tile_bytes(QT, D) + 4 * QT * 4;
};

// Per-row lse (log2 domain; +inf past T, which makes P exactly 0 there) and delta into smem.
__device__ __forceinline__ void load_row_stats(float* slse, float* sdelta, const Params& p, int bh, int q0, int n,
                                               int tid) {
  for (int i = tid; i < n; i += blockDim.x) {
    const int q = q0 + i;
    const std::int64_t at = static_cast<std::int64_t>(bh) * p.T + q;
    slse[i] = q < p.T ? p.lse[at] * kLog2e : INFINITY;
    sdelta[i] = q < p.T ? p.delta[at] : 0.f;
  }
}

template <int D, int KT, int QT>
__global__ void __launch_bounds__(KvConfig<D, KT, QT>::kThreads) attention_dkdv_kernel(const Params p) {
  using Cfg = KvConfig<D, KT, QT>;
  constexpr int LD = Cfg::LD, NT = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sk = reinterpret_cast<bf16*>(smem_raw);
  bf16* sv = sk + KT * LD;
  // Q0, Q1, dO0, dO1, then the row statistics; buffers picked by arithmetic (an array of
  // pointers indexed at run time would live in local memory).
  bf16* const sqd = sv + KT * LD;
  auto sq = [&](int i) { return sqd + i * QT * LD; };
  auto sdo = [&](int i) { return sqd + (2 + i) * QT * LD; };
  float* const stat = reinterpret_cast<float*>(sqd + 4 * QT * LD);
  auto slse = [&](int i) { return stat + i * QT; };
  auto sdelta = [&](int i) { return stat + (2 + i) * QT; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int T = p.T, block = p.L.block;
  const GroupSlot at = group_slot(p);
  if (at.bh >= p.B * p.H) return;
  const int bh = at.bh, b = bh / p.H, h = bh % p.H;
  const int lh = p.L.heads == 1 ? 0 : h;
  // kt, j0, j1, slot; a direct plan's item is the whole column of key tile `item`.
  int4 item = make_int4(at.item, 0, INT_MAX, -1);
  if (!p.plan.kv_direct) {
    item = reinterpret_cast<const int4*>(p.plan.kv)[lh * p.plan.n_kv + at.item];
    if (item.x < 0) return;  // padding: this layout head has fewer items
  }
  const int k0 = item.x * KT;
  const QueryWalk walk(p.L.t_row_ptr, p.L.t_rows, lh * p.L.nb + k0 / block, block, QT, T);
  int j = p.plan.kv_direct ? walk.first(k0) : item.y;

  const std::int64_t batch = static_cast<std::int64_t>(b) * T;
  const bf16* qg = bf(p.q) + batch * p.ld_qkv + h * D;
  const bf16* dog = bf(p.dout) + batch * p.ld_dout + h * D;
  load_tile<KT, D, NT>(sk, bf(p.k) + batch * p.ld_qkv + h * D, p.ld_qkv, k0, T, tid);
  load_tile<KT, D, NT>(sv, bf(p.v) + batch * p.ld_qkv + h * D, p.ld_qkv, k0, T, tid);
  int q0 = walk.start(j);
  load_tile<QT, D, NT>(sq(0), qg, p.ld_qkv, q0, T, tid);
  load_tile<QT, D, NT>(sdo(0), dog, p.ld_dout, q0, T, tid);
  load_row_stats(slse(0), sdelta(0), p, bh, q0, QT, tid);
  cp_async_commit();

  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  const int krow[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
  int buf = 0;
  for (;;) {
    const int next = j + 1 < item.z ? walk.next(j) : INT_MAX;  // a chunk ends at j1, a column at its walk's end
    if (next != INT_MAX) {
      load_tile<QT, D, NT>(sq(buf ^ 1), qg, p.ld_qkv, next, T, tid);
      load_tile<QT, D, NT>(sdo(buf ^ 1), dog, p.ld_dout, next, T, tid);
      load_row_stats(slse(buf ^ 1), sdelta(buf ^ 1), p, bh, next, QT, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: 16 key rows x QT queries per warp.
    float st[QT / 8][4] = {}, dpt[QT / 8][4] = {};
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      std::uint32_t ka[4], va[4];
      load_a<LD>(ka, sk, warp * 16, ks * 16, lane);
      load_a<LD>(va, sv, warp * 16, ks * 16, lane);
#pragma unroll
      for (int np = 0; np < QT / 16; ++np) {
        std::uint32_t qf[4], df[4];
        load_b_nk<LD>(qf, sq(buf), np * 16, ks * 16, lane);
        mma_16816(st[2 * np], ka, qf[0], qf[1]);
        mma_16816(st[2 * np + 1], ka, qf[2], qf[3]);
        load_b_nk<LD>(df, sdo(buf), np * 16, ks * 16, lane);
        mma_16816(dpt[2 * np], va, df[0], df[1]);
        mma_16816(dpt[2 * np + 1], va, df[2], df[3]);
      }
    }

    // Pᵀ, then dSᵀ = Pᵀ ∘ (dPᵀ − delta) in place of dPᵀ.
    const std::uint8_t kind = p.L.t_kinds[walk.entry(j)];
#pragma unroll
    for (int nt = 0; nt < QT / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int c = nt * 8 + 2 * t + (i & 1);
        float pr = exp2_approx(st[nt][i] * p.scale_log2 - slse(buf)[c]);
        if (kind != kFull && !allowed(kind, q0 + c, krow[i >> 1], T, p.L.global)) pr = 0.f;
        st[nt][i] = pr;
        dpt[nt][i] = pr * (dpt[nt][i] - sdelta(buf)[c]);
      }

    // dV += Pᵀ·dO and dK += dSᵀ·Q, the query dimension now the reduction.
#pragma unroll
    for (int kk = 0; kk < QT / 16; ++kk) {
      const std::uint32_t pa[4] = {pack_bf16(st[2 * kk][0], st[2 * kk][1]), pack_bf16(st[2 * kk][2], st[2 * kk][3]),
                                   pack_bf16(st[2 * kk + 1][0], st[2 * kk + 1][1]),
                                   pack_bf16(st[2 * kk + 1][2], st[2 * kk + 1][3])};
      const std::uint32_t sa[4] = {pack_bf16(dpt[2 * kk][0], dpt[2 * kk][1]), pack_bf16(dpt[2 * kk][2], dpt[2 * kk][3]),
                                   pack_bf16(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]),
                                   pack_bf16(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        std::uint32_t df[4], qf[4];
        load_b_kn<LD>(df, sdo(buf), kk * 16, dp * 16, lane);
        mma_16816(dv[2 * dp], pa, df[0], df[1]);
        mma_16816(dv[2 * dp + 1], pa, df[2], df[3]);
        load_b_kn<LD>(qf, sq(buf), kk * 16, dp * 16, lane);
        mma_16816(dk[2 * dp], sa, qf[0], qf[1]);
        mma_16816(dk[2 * dp + 1], sa, qf[2], qf[3]);
      }
    }
    __syncthreads();  // buf is refilled by the next iteration's prefetch
    if (next == INT_MAX) break;
    buf ^= 1;
    ++j;
    q0 = next;
  }
  cp_async_wait<0>();

  if (item.w >= 0) {  // a chunk: unscaled fp32, every row (the reduce skips those past T)
    float* part = p.plan.partials + (static_cast<std::int64_t>(bh) * p.plan.n_slots + item.w) * 2 * KT * D;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int at = (krow[r] - k0) * D + 2 * t;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        *reinterpret_cast<float2*>(part + at + dt * 8) = make_float2(dk[dt][2 * r], dk[dt][2 * r + 1]);
        *reinterpret_cast<float2*>(part + KT * D + at + dt * 8) = make_float2(dv[dt][2 * r], dv[dt][2 * r + 1]);
      }
    }
    return;
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int k = krow[r];
    if (k >= T) continue;
    const std::int64_t at = (batch + k) * p.ld_dqkv + h * D + 2 * t;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      *reinterpret_cast<std::uint32_t*>(bf(p.dk) + at + dt * 8) =
          pack_bf16(dk[dt][2 * r] * p.scale, dk[dt][2 * r + 1] * p.scale);
      *reinterpret_cast<std::uint32_t*>(bf(p.dv) + at + dt * 8) = pack_bf16(dv[dt][2 * r], dv[dt][2 * r + 1]);
    }
  }
}

// A split column's chunks, added in chunk order by one thread per pair of elements; dK takes
// the scale here, as a whole column's does at its store.
template <int D, int KT>
__global__ void __launch_bounds__(256) attention_dkdv_reduce_kernel(const Params p) {
  constexpr int kPairs = KT * D / 2;  // per matrix
  const int BH = p.B * p.H, bh = blockIdx.x % BH, y = blockIdx.x / BH, b = bh / p.H, h = bh % p.H;
  const int lh = p.L.heads == 1 ? 0 : h;
  const int4 split = reinterpret_cast<const int4*>(p.plan.splits)[lh * p.plan.n_split + y];  // kt, slot0, n
  if (split.x < 0) return;
  const int k0 = split.x * KT;
  const float* part = p.plan.partials + (static_cast<std::int64_t>(bh) * p.plan.n_slots + split.y) * 2 * KT * D;
  const std::int64_t batch = static_cast<std::int64_t>(b) * p.T;
  for (int e = threadIdx.x; e < 2 * kPairs; e += blockDim.x) {
    const int m = e / kPairs, i = e % kPairs, r = 2 * i / D, c = 2 * i % D;  // m: 0 dK, 1 dV
    if (k0 + r >= p.T) continue;
    const float* src = part + m * KT * D + 2 * i;
    float2 acc = *reinterpret_cast<const float2*>(src);
    for (int n = 1; n < split.z; ++n) {
      const float2 x = *reinterpret_cast<const float2*>(src + n * 2 * KT * D);
      acc.x += x.x;
      acc.y += x.y;
    }
    const float scale = m == 0 ? p.scale : 1.f;
    bf16* dst = bf(m == 0 ? p.dk : p.dv) + (batch + k0 + r) * p.ld_dqkv + h * D + c;
    *reinterpret_cast<std::uint32_t*>(dst) = pack_bf16(acc.x * scale, acc.y * scale);
  }
}

// ---- dQ ----------------------------------------------------------------------------------

template <int D, int QT, int KT>
struct QConfig {
  static constexpr int kWarps = QT / 16, kThreads = 32 * kWarps, LD = D + 8;
  static constexpr int kSmem = 2 * tile_bytes(QT, D) + 4 * tile_bytes(KT, D);  // Q, dO + 2 x (K, V)
};

template <int D, int QT, int KT>
__global__ void __launch_bounds__(QConfig<D, QT, KT>::kThreads) attention_dq_kernel(const Params p) {
  using Cfg = QConfig<D, QT, KT>;
  constexpr int LD = Cfg::LD, NT = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sq = reinterpret_cast<bf16*>(smem_raw);
  bf16* sdo = sq + QT * LD;
  bf16* const skv = sdo + QT * LD;  // K0, K1, V0, V1
  auto sk = [&](int i) { return skv + i * KT * LD; };
  auto sv = [&](int i) { return skv + (2 + i) * KT * LD; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int T = p.T, block = p.L.block;
  const GroupSlot at = group_slot(p);
  if (at.bh >= p.B * p.H) return;
  const int bh = at.bh, b = bh / p.H, h = bh % p.H;
  const int lh = p.L.heads == 1 ? 0 : h;
  const int qt = p.plan.dq_step > 0   ? at.item
                 : p.plan.dq_step < 0 ? p.plan.n_dq - 1 - at.item
                                      : p.plan.dq[lh * p.plan.n_dq + at.item];
  const int q0 = qt * QT;
  const int row = lh * p.L.nb + q0 / block;
  const KeyWalk walk(p.L.row_ptr, p.L.cols, row, block, KT, q0, QT, T);

  const std::int64_t batch = static_cast<std::int64_t>(b) * T;
  const bf16* kg = bf(p.k) + batch * p.ld_qkv + h * D;
  const bf16* vg = bf(p.v) + batch * p.ld_qkv + h * D;
  load_tile<QT, D, NT>(sq, bf(p.q) + batch * p.ld_qkv + h * D, p.ld_qkv, q0, T, tid);
  load_tile<QT, D, NT>(sdo, bf(p.dout) + batch * p.ld_dout + h * D, p.ld_dout, q0, T, tid);
  int k0 = walk.start(0);
  load_tile<KT, D, NT>(sk(0), kg, p.ld_qkv, k0, T, tid);
  load_tile<KT, D, NT>(sv(0), vg, p.ld_qkv, k0, T, tid);
  cp_async_commit();

  const int qrow[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  float lse2[2], delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const std::int64_t at = static_cast<std::int64_t>(bh) * T + qrow[r];
    lse2[r] = qrow[r] < T ? p.lse[at] * kLog2e : INFINITY;
    delta[r] = qrow[r] < T ? p.delta[at] : 0.f;
  }

  float dq[D / 8][4] = {};
  int buf = 0;
  for (int j = 0;; ++j) {
    const int next = walk.next(j);
    if (next != INT_MAX) {
      load_tile<KT, D, NT>(sk(buf ^ 1), kg, p.ld_qkv, next, T, tid);
      load_tile<KT, D, NT>(sv(buf ^ 1), vg, p.ld_qkv, next, T, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // S = Q·Kᵀ and dP = dO·Vᵀ: 16 query rows x KT keys per warp.
    float s[KT / 8][4] = {}, dp[KT / 8][4] = {};
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      std::uint32_t qa[4], da[4];
      load_a<LD>(qa, sq, warp * 16, ks * 16, lane);
      load_a<LD>(da, sdo, warp * 16, ks * 16, lane);
#pragma unroll
      for (int np = 0; np < KT / 16; ++np) {
        std::uint32_t kf[4], vf[4];
        load_b_nk<LD>(kf, sk(buf), np * 16, ks * 16, lane);
        mma_16816(s[2 * np], qa, kf[0], kf[1]);
        mma_16816(s[2 * np + 1], qa, kf[2], kf[3]);
        load_b_nk<LD>(vf, sv(buf), np * 16, ks * 16, lane);
        mma_16816(dp[2 * np], da, vf[0], vf[1]);
        mma_16816(dp[2 * np + 1], da, vf[2], vf[3]);
      }
    }

    const std::uint8_t kind = p.L.kinds[walk.entry(j)];
#pragma unroll
    for (int nt = 0; nt < KT / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float pr = exp2_approx(s[nt][i] * p.scale_log2 - lse2[i >> 1]);
        if (kind != kFull && !allowed(kind, qrow[i >> 1], k0 + nt * 8 + 2 * t + (i & 1), T, p.L.global)) pr = 0.f;
        dp[nt][i] = pr * (dp[nt][i] - delta[i >> 1]);
      }

    // dQ += dS·K.
#pragma unroll
    for (int kk = 0; kk < KT / 16; ++kk) {
      const std::uint32_t sa[4] = {pack_bf16(dp[2 * kk][0], dp[2 * kk][1]), pack_bf16(dp[2 * kk][2], dp[2 * kk][3]),
                                   pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                                   pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        std::uint32_t kf[4];
        load_b_kn<LD>(kf, sk(buf), kk * 16, dd * 16, lane);
        mma_16816(dq[2 * dd], sa, kf[0], kf[1]);
        mma_16816(dq[2 * dd + 1], sa, kf[2], kf[3]);
      }
    }
    __syncthreads();
    if (next == INT_MAX) break;
    buf ^= 1;
    k0 = next;
  }
  cp_async_wait<0>();

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int q = qrow[r];
    if (q >= T) continue;
    bf16* dst = bf(p.dq) + (batch + q) * p.ld_dqkv + h * D + 2 * t;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<std::uint32_t*>(dst + dt * 8) = pack_bf16(dq[dt][2 * r] * p.scale, dq[dt][2 * r + 1] * p.scale);
  }
}

// ---- launch ------------------------------------------------------------------------------

// The grouped grid: x = items × the group's heads, y = groups (attention_plan.h).
template <class Cfg, void (*kernel)(Params)>
cudaError_t launch(int items, const Params& p, cudaStream_t stream) {
  if (const cudaError_t err = detail::allow_dynamic_smem<kernel>(Cfg::kSmem); err != cudaSuccess) return err;
  const int lg = p.plan.log2_group, bh = p.B * p.H;
  const dim3 grid(static_cast<unsigned>(items) << lg, static_cast<unsigned>((bh + (1 << lg) - 1) >> lg));
  kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
  return cudaGetLastError();
}

// dK/dV (and its reduce) on the caller's stream, dQ on the side stream: the two read the same
// inputs and write different outputs, so dQ's CTAs fill the slots dK/dV's tail leaves (and the
// gap between two launches) instead of waiting for it. Both wait for delta; the caller's stream
// waits for dQ before anything after the backward.
template <int D, int Block>
cudaError_t launch_bwd(const Params& p, cudaStream_t stream, const SideStream& side) {
  constexpr BwdTiles t = bwd_tiles(D, Block);
  const std::int64_t rows = static_cast<std::int64_t>(p.B) * p.H * p.T;
  attention_delta_kernel<D><<<static_cast<unsigned>((rows + 7) / 8), 256, 0, stream>>>(p);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaEventRecord(side.fork, stream);
  if (err == cudaSuccess) err = cudaStreamWaitEvent(side.stream, side.fork, 0);
  if (err != cudaSuccess) return err;
  err = launch<KvConfig<D, t.kv_k, t.kv_q>, attention_dkdv_kernel<D, t.kv_k, t.kv_q>>(p.plan.n_kv, p, stream);
  if (err == cudaSuccess && p.plan.n_split > 0) {
    const auto grid = static_cast<unsigned>(static_cast<std::int64_t>(p.B) * p.H * p.plan.n_split);
    attention_dkdv_reduce_kernel<D, t.kv_k><<<grid, 256, 0, stream>>>(p);
    err = cudaGetLastError();
  }
  const cudaError_t dq_err =
      launch<QConfig<D, t.dq_q, t.dq_k>, attention_dq_kernel<D, t.dq_q, t.dq_k>>(p.plan.n_dq, p, side.stream);
  // The join, whatever failed: the caller's stream never runs ahead of work on the side stream.
  const cudaError_t join = cudaEventRecord(side.join, side.stream);
  const cudaError_t wait = join == cudaSuccess ? cudaStreamWaitEvent(stream, side.join, 0) : join;
  if (err == cudaSuccess) err = dq_err;
  return err == cudaSuccess ? wait : err;
}

template <int D>
cudaError_t launch_bwd_d(const Params& p, cudaStream_t stream, const SideStream& side) {
  switch (p.L.block) {
    case 16: return launch_bwd<D, 16>(p, stream, side);
    case 32: return launch_bwd<D, 32>(p, stream, side);
    default: return launch_bwd<D, 64>(p, stream, side);  // 64, and multiples of 64 as tiles of 64
  }
}

}  // namespace

cudaError_t backward(const Params& p, int D, cudaStream_t stream, const SideStream& side) {
  return D == 64 ? launch_bwd_d<64>(p, stream, side) : launch_bwd_d<128>(p, stream, side);
}

}  // namespace minitx::cuda::attn
