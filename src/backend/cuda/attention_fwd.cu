// Forward, two kernels with the same outputs (O in bf16, lse per row):
//
// Version 1 (attention_fwd_kernel): one CTA per (query tile of BM rows, batch·head), one warp per
// 16 query rows. Q stays in registers; K/V tiles of BN keys stream through two shared-memory
// buffers (cp.async: the next kept tile loads while this one is used). Scores, the online softmax
// and P live in registers; P·V reuses the score accumulators as A fragments. Used for blocks
// smaller than 128 (a query tile must not span two query blocks: they keep different keys).
//
// Version 2 (attention_fwd_v2_kernel, docs/KERNELS.md "Version 2"): query tiles of 128 rows for
// blocks that are multiples of 128, so each K/V tile brought to shared memory serves 128 rows
// instead of 64; MT m16 row tiles per warp (MT = 2 at D = 64: each K/V fragment read from shared
// memory feeds two MMAs, halving ldmatrix traffic per FLOP, which bounds version 1); K and V in
// separate cp.async groups (S = Q·Kᵀ starts while V lands); the row's key-block list copied to
// shared memory once (no dependent global load before each tile's copies); masks only where a
// warp's rows meet keys after them; warps skip sub-tiles that lie wholly after their rows; the
// heaviest causal tiles are launched first.
#include <climits>
#include <cmath>

#include "attention_common.cuh"
#include "common.cuh"

namespace minitx::cuda::attn {
namespace {

template <int D, int BM, int BN>
struct FwdConfig {
  static constexpr int kWarps = BM / 16, kThreads = 32 * kWarps, LD = D + 8;
  static constexpr int kSmem = tile_bytes(BM, D) + 4 * tile_bytes(BN, D);  // Q + 2 x (K, V)
};

template <int D, int BM, int BN>
__global__ void __launch_bounds__(FwdConfig<D, BM, BN>::kThreads)
    attention_fwd_kernel(const Params p) {
  using Cfg = FwdConfig<D, BM, BN>;
  constexpr int LD = Cfg::LD, NT = Cfg::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* sq = reinterpret_cast<bf16*>(smem_raw);
  // K0, K1, V0, V1 after Q; buffers picked by arithmetic, not by indexing an array of pointers
  // (which would live in local memory).
  bf16* const skv = sq + BM * LD;
  auto sk = [&](int i) { return skv + i * BN * LD; };
  auto sv = [&](int i) { return skv + (2 + i) * BN * LD; };

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int T = p.T, block = p.L.block;
  const int q0 = blockIdx.x * BM;
  if (q0 >= T) return;  // the tail of the last block
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int qb = q0 / block;
  const int row = (p.L.heads == 1 ? 0 : h) * p.L.nb + qb;
  const KeyWalk walk(p.L.row_ptr, p.L.cols, row, block, BN, q0, BM, T);

  // One offset for q, k and v (their bases stay in the parameter bank): fewer live registers.
  const std::int64_t qkv_off = static_cast<std::int64_t>(b) * T * p.ld_qkv + h * D;
  const bf16* qg = bf(p.q) + qkv_off;
  auto kg = [&] { return bf(p.k) + qkv_off; };
  auto vg = [&] { return bf(p.v) + qkv_off; };

  load_tile<BM, D, NT>(sq, qg, p.ld_qkv, q0, T, tid);
  int k0 = walk.start(0);  // the diagonal is always kept, so tile 0 exists and starts <= q0
  load_tile<BN, D, NT>(sk(0), kg(), p.ld_qkv, k0, T, tid);
  load_tile<BN, D, NT>(sv(0), vg(), p.ld_qkv, k0, T, tid);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();

  std::uint32_t qf[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) load_a<LD>(qf[ks], sq, warp * 16, ks * 16, lane);

  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int qrow[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};

  int buf = 0;
  for (int j = 0;; ++j) {
    const int next = walk.next(j);
    if (next != INT_MAX) {
      load_tile<BN, D, NT>(sk(buf ^ 1), kg(), p.ld_qkv, next, T, tid);
      load_tile<BN, D, NT>(sv(buf ^ 1), vg(), p.ld_qkv, next, T, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // S = Q·Kᵀ for this warp's 16 rows x BN keys.
    float s[BN / 8][4] = {};
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        std::uint32_t kf[4];
        load_b_nk<LD>(kf, sk(buf), np * 16, ks * 16, lane);
        mma_16816(s[2 * np], qf[ks], kf[0], kf[1]);
        mma_16816(s[2 * np + 1], qf[ks], kf[2], kf[3]);
      }

    const std::uint8_t kind = p.L.kinds[walk.entry(j)];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float x = s[nt][i] * p.scale_log2;
        if (kind != kFull && !allowed(kind, qrow[i >> 1], k0 + nt * 8 + 2 * t + (i & 1), T, p.L.global)) x = -INFINITY;
        s[nt][i] = x;
      }

    // Online softmax. A row with nothing allowed so far keeps m = -inf; exponentiating against
    // 0 instead keeps every exp2 argument -inf (giving 0) rather than NaN.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
      const float m_new = fmaxf(m[r], quad_max(mx));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2_approx(m[r] - m_use);
      m[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) {
        s[nt][2 * r] = exp2_approx(s[nt][2 * r] - m_use);
        s[nt][2 * r + 1] = exp2_approx(s[nt][2 * r + 1] - m_use);
        sum += s[nt][2 * r] + s[nt][2 * r + 1];
      }
      l[r] = l[r] * alpha + sum;  // this thread's columns only; the quad is summed at the end
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }

    // O += P·V, P packed to bf16 straight from the score accumulators.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const std::uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                   pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        std::uint32_t vf[4];
        load_b_kn<LD>(vf, sv(buf), kk * 16, dp * 16, lane);
        mma_16816(o[2 * dp], pa, vf[0], vf[1]);
        mma_16816(o[2 * dp + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // every warp is done with buf before the next iteration refills it
    if (next == INT_MAX) break;
    buf ^= 1;
    k0 = next;
  }
  cp_async_wait<0>();

  const std::int64_t out_batch = static_cast<std::int64_t>(b) * T * p.ld_out;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float total = quad_sum(l[r]);
    const int q = qrow[r];
    if (q >= T) continue;
    const float inv = 1.f / total;  // total > 0: the diagonal key q itself is always allowed
    bf16* dst = bf(p.out_w) + out_batch + static_cast<std::int64_t>(q) * p.ld_out + h * D + 2 * t;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<std::uint32_t*>(dst + dt * 8) = pack_bf16(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
    if (t == 0) p.lse[static_cast<std::int64_t>(bh) * T + q] = (m[r] + __log2f(total)) * kLn2;
  }
}

template <int D, int BM, int BN>
cudaError_t launch_fwd(const Params& p, cudaStream_t stream) {
  using Cfg = FwdConfig<D, BM, BN>;
  auto kernel = attention_fwd_kernel<D, BM, BN>;
  if (const cudaError_t err = detail::allow_dynamic_smem<attention_fwd_kernel<D, BM, BN>>(Cfg::kSmem); err != cudaSuccess)
    return err;
  const dim3 grid((p.T + BM - 1) / BM, p.B * p.H);
  kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_fwd_d(const Params& p, cudaStream_t stream) {
  switch (p.L.block) {
    case 16: return launch_fwd<D, 16, 16>(p, stream);
    case 32: return launch_fwd<D, 32, 32>(p, stream);
    default: return launch_fwd<D, 64, 64>(p, stream);  // 64, and 128 as 2 x 2 tiles of 64
  }
}


// ---------------------------------------------------------------------------------------------
// Version 2.

// c += a · b as mma.sync without `volatile`: the product has no side effects, so the compiler may
// interleave it with the fragment loads of the next step.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Key blocks a query row may keep that fit the shared-memory copy of its list (T / block; 256
// covers T = 32k at block 128). Longer lists go to version 1.
constexpr int kV2MaxEntries = 256;

// Q's A fragments stay in registers for the whole walk (MT·D/4 registers).
template <int D, int MT, int WARPS, int BN>
struct FwdV2Config {
  static constexpr int kThreads = 32 * WARPS, BM = 16 * MT * WARPS, LD = D + 8;
  static constexpr int kTile = tile_bytes(BN, D);
  // Q, K0, K1, V0, V1, then the row's entries (key block << 2 | kind).
  static constexpr int kSmem = tile_bytes(BM, D) + 4 * kTile + kV2MaxEntries * 4;
  // Two CTAs per SM where a thread may then keep <= 255 registers (128 threads); 256 threads
  // (D = 128's 8 warps) need more than 128 registers, so one.
  static constexpr int kMinBlocks = kThreads <= 128 ? 2 : 1;
};

template <int D, int MT, int WARPS, int BN>
__global__ void __launch_bounds__(FwdV2Config<D, MT, WARPS, BN>::kThreads, FwdV2Config<D, MT, WARPS, BN>::kMinBlocks)
    attention_fwd_v2_kernel(const Params p, int log2_group) {
  using Cfg = FwdV2Config<D, MT, WARPS, BN>;
  constexpr int LD = Cfg::LD, NT = Cfg::kThreads, BM = Cfg::BM, WR = 16 * MT;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* const sq = reinterpret_cast<bf16*>(smem_raw);
  bf16* const skv = sq + BM * LD;
  auto sk = [&](int i) { return skv + i * BN * LD; };
  auto sv = [&](int i) { return skv + (2 + i) * BN * LD; };
  std::int32_t* const sent = reinterpret_cast<std::int32_t*>(skv + 4 * BN * LD);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int T = p.T, block = p.L.block;
  // Launch order: heads in groups of 2^log2_group whose K and V fit in L2 together (y); within a
  // group (x), longest rows first: query tiles from the last, the group's heads side by side, so
  // the grid ends on the shortest causal rows instead of a ragged wave of long ones. A power of
  // two keeps the index arithmetic to shifts; the last group's heads past B·H exit at once.
  const int n_qt = (T + BM - 1) / BM;
  const int bh = (blockIdx.y << log2_group) + (blockIdx.x & ((1 << log2_group) - 1));
  if (bh >= p.B * p.H) return;
  const int b = bh / p.H, h = bh % p.H;  // (recomputed in the epilogue rather than kept)
  const int q0 = (n_qt - 1 - static_cast<int>(blockIdx.x >> log2_group)) * BM;
  const int qb = q0 / block;
  const int row = (p.L.heads == 1 ? 0 : h) * p.L.nb + qb;
  const int e0 = p.L.row_ptr[row], n_entries = p.L.row_ptr[row + 1] - e0;
  const int subs = block / BN, n_tiles = n_entries * subs;
  const int q_last = (q0 + BM < T ? q0 + BM : T) - 1;
  const int wr0 = q0 + warp * WR;                                 // this warp's first row
  const int w_last = (wr0 + WR - 1 < q_last ? wr0 + WR - 1 : q_last);  // its last valid row (< wr0: none)

  // One offset for q, k and v (their bases stay in the parameter bank): fewer live registers.
  const std::int64_t qkv_off = static_cast<std::int64_t>(b) * T * p.ld_qkv + h * D;
  const bf16* qg = bf(p.q) + qkv_off;
  auto kg = [&] { return bf(p.k) + qkv_off; };
  auto vg = [&] { return bf(p.v) + qkv_off; };

  // Groups: [Q, K(0)] [V(0)], then [K(j+1)] [V(j+1)] in iteration j. The first tile's S = Q·Kᵀ
  // starts while V(0) lands (most sparse rows have only 2–5 tiles, so this start matters); later
  // tiles were copied during the whole previous tile, and one barrier per tile suffices.
  load_tile<BM, D, NT>(sq, qg, p.ld_qkv, q0, T, tid);
  int k0 = p.L.cols[e0] * block;  // the diagonal is always kept, so tile 0 exists and starts <= q0
  load_tile<BN, D, NT>(sk(0), kg(), p.ld_qkv, k0, T, tid);
  cp_async_commit();
  load_tile<BN, D, NT>(sv(0), vg(), p.ld_qkv, k0, T, tid);
  cp_async_commit();
  for (int e = tid; e < n_entries; e += NT) sent[e] = p.L.cols[e0 + e] << 2 | p.L.kinds[e0 + e];
  // Tile j: sub-tile j % subs of entry j / subs; the walk ends at the first tile after q_last.
  auto tile_start = [&](int j) { return (sent[j / subs] >> 2) * block + (j % subs) * BN; };

  std::uint32_t qf[MT][D / 16][4];
  float o[MT][D / 8][4] = {};
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.f;
  const float sl2 = p.scale_log2;

  for (int j = 0;; ++j) {
    // Tile 0: all but V(0) (Q and K(0)) have landed; later: K(j) and V(j). The barrier makes
    // everyone's copies (and the entries) visible, and every warp is done with tile j − 1, whose
    // buffers the copies below refill.
    if (j == 0)
      cp_async_wait<1>();
    else
      cp_async_wait<0>();
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) load_a<LD>(qf[mt][ks], sq, warp * WR + mt * 16, ks * 16, lane);
    }
    int next = INT_MAX;
    if (j + 1 < n_tiles) {
      const int k = tile_start(j + 1);
      if (k <= q_last) next = k;
    }
    const int nb = (j + 1) & 1;
    if (next != INT_MAX) load_tile<BN, D, NT>(sk(nb), kg(), p.ld_qkv, next, T, tid);
    cp_async_commit();
    if (next != INT_MAX) load_tile<BN, D, NT>(sv(nb), vg(), p.ld_qkv, next, T, tid);
    cp_async_commit();

    const int cb = j & 1;
    const int kind = sent[j / subs] & 3;
    // Keys after every row of this warp, or no row below T: nothing to add.
    const bool active = k0 <= w_last && wr0 <= q_last;
    float s[MT][BN / 8][4];
    if (active) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
        for (int np = 0; np < BN / 16; ++np) {
          std::uint32_t kf[4];
          load_b_nk<LD>(kf, sk(cb), np * 16, ks * 16, lane);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_bf16(s[mt][2 * np], qf[mt][ks], kf[0], kf[1]);
            mma_bf16(s[mt][2 * np + 1], qf[mt][ks], kf[2], kf[3]);
          }
        }
      }
      // The mask only where some key of the tile lies after some row of the warp (causal), or
      // for global blocks (whose mask also depends on the tokens).
      // The element test is allowed(): k <= q < T, and for a global block also a global query
      // or key; the token flags are loaded once per row and once per key column (MT·2 + BN/4
      // byte loads a thread) rather than twice per element.
      if (kind != kFull && (kind == kGlobal || k0 + BN - 1 > wr0)) {
        const bool glob = kind == kGlobal;
        bool gq[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int q = wr0 + mt * 16 + g + 8 * r;
            gq[mt][r] = glob && q < T && __ldg(p.L.global + q) != 0;
          }
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt) {
          bool gk[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int k = k0 + nt * 8 + 2 * t + e;
            gk[e] = glob && k < T && __ldg(p.L.global + k) != 0;
          }
#pragma unroll
          for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const int q = wr0 + mt * 16 + g + 8 * (i >> 1), k = k0 + nt * 8 + 2 * t + (i & 1);
              const bool ok = k <= q && q < T && (!glob || gq[mt][i >> 1] || gk[i & 1]);
              if (!ok) s[mt][nt][i] = -INFINITY;
            }
        }
      }
      // Online softmax on raw scores; the scale is folded into one FMA per exponential:
      // exp2(s·c − m·c). A row with nothing allowed so far keeps m = −inf and uses 0 instead, so
      // every exponent stays −inf (→ 0) rather than NaN.
      float alpha[MT][2];
      bool rescale = false;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = m[mt][r];
#pragma unroll
          for (int nt = 0; nt < BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
          const float m_new = quad_max(mx);
          const float ms = m_new == -INFINITY ? 0.f : m_new * sl2;
          // Exactly 1 when the maximum did not move (the FMA would leave m·c's rounding error).
          alpha[mt][r] = m_new == m[mt][r] ? 1.f : exp2_approx(fmaf(m[mt][r], sl2, -ms));
          rescale |= m_new != m[mt][r];
          m[mt][r] = m_new;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < BN / 8; ++nt) {
            s[mt][nt][2 * r] = exp2_approx(fmaf(s[mt][nt][2 * r], sl2, -ms));
            s[mt][nt][2 * r + 1] = exp2_approx(fmaf(s[mt][nt][2 * r + 1], sl2, -ms));
            sum += s[mt][nt][2 * r] + s[mt][nt][2 * r + 1];
          }
          l[mt][r] = fmaf(l[mt][r], alpha[mt][r], sum);  // this thread's columns; the quad is summed at the end
        }
      // Rescale O only when some row's maximum moved (a warp-uniform branch; after the first
      // tiles of a long row it rarely does). Skipping a multiply by exactly 1 changes no bit.
      if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int dt = 0; dt < D / 8; ++dt) {
            o[mt][dt][0] *= alpha[mt][0];
            o[mt][dt][1] *= alpha[mt][0];
            o[mt][dt][2] *= alpha[mt][1];
            o[mt][dt][3] *= alpha[mt][1];
          }
      }
    }

    if (j == 0) {
      cp_async_wait<2>();  // all but K(1), V(1): V(0) has landed
      __syncthreads();
    }
    if (active) {
      // O += P·V, P packed to bf16 straight from the score accumulators.
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        std::uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          std::uint32_t vf[4];
          load_b_kn<LD>(vf, sv(cb), kk * 16, dp * 16, lane);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_bf16(o[mt][2 * dp], pa[mt], vf[0], vf[1]);
            mma_bf16(o[mt][2 * dp + 1], pa[mt], vf[2], vf[3]);
          }
        }
      }
    }
    if (next == INT_MAX) break;
    k0 = next;
  }
  cp_async_wait<0>();

  // O through this warp's own rows of the Q tile (no other warp reads them, so __syncwarp is
  // enough), then out in 16-byte row pieces (whole 128-byte lines) instead of 4-byte stores that
  // cover half a sector each; 4-byte stores from registers when out is not 16-byte aligned.
  bf16* const out_head = bf(p.out_w) + static_cast<std::int64_t>(bh / p.H) * T * p.ld_out + (bh % p.H) * D;
  const bool wide = (reinterpret_cast<std::uintptr_t>(out_head) & 15) == 0 && (p.ld_out & 7) == 0;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float total = quad_sum(l[mt][r]);
      const int lr = warp * WR + mt * 16 + g + 8 * r, q = q0 + lr;
      // total > 0 for q < T: the diagonal key q itself is always allowed (rows past T: unused).
      const float inv = q < T ? 1.f / total : 0.f;
      if (wide) {
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
          *reinterpret_cast<std::uint32_t*>(sq + lr * LD + dt * 8 + 2 * t) =
              pack_bf16(o[mt][dt][2 * r] * inv, o[mt][dt][2 * r + 1] * inv);
      } else if (q < T) {
        bf16* dst = out_head + static_cast<std::int64_t>(q) * p.ld_out + 2 * t;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
          *reinterpret_cast<std::uint32_t*>(dst + dt * 8) = pack_bf16(o[mt][dt][2 * r] * inv, o[mt][dt][2 * r + 1] * inv);
      }
      if (t == 0 && q < T) p.lse[static_cast<std::int64_t>(bh) * T + q] = (m[mt][r] * sl2 + __log2f(total)) * kLn2;
    }
  if (wide) {
    __syncwarp();
    constexpr int kChunks = D / 8;
#pragma unroll
    for (int c = lane; c < WR * kChunks; c += 32) {
      const int lr = warp * WR + c / kChunks, col = (c % kChunks) * 8, q = q0 + lr;
      if (q < T)
        *reinterpret_cast<uint4*>(out_head + static_cast<std::int64_t>(q) * p.ld_out + col) =
            *reinterpret_cast<const uint4*>(sq + lr * LD + col);
    }
  }
}

using FwdV2D64 = FwdV2Config<64, 2, 4, 64>;    // 4 warps of 32 rows: each K/V fragment feeds two products
using FwdV2D128 = FwdV2Config<128, 1, 8, 64>;  // 8 warps of 16 rows

template <int D, int MT, int WARPS, int BN>
cudaError_t launch_fwd_v2(FwdV2Config<D, MT, WARPS, BN> cfg, const Params& p, cudaStream_t stream) {
  using Cfg = decltype(cfg);
  auto kernel = attention_fwd_v2_kernel<D, MT, WARPS, BN>;
  if (const cudaError_t err = detail::allow_dynamic_smem<attention_fwd_v2_kernel<D, MT, WARPS, BN>>(Cfg::kSmem);
      err != cudaSuccess)
    return err;
  const int n_qt = (p.T + Cfg::BM - 1) / Cfg::BM, bh = p.B * p.H;
  // Groups of heads whose K and V (T·D·4 bytes a head) fill at most 16 MB, a third of the
  // H200's L2; a power of two, at most the next one above B·H.
  const std::int64_t kv_bytes = static_cast<std::int64_t>(p.T) * D * 4;
  int log2_group = 0;
  while ((kv_bytes << (log2_group + 1)) <= (16 << 20) && (1 << log2_group) < bh) ++log2_group;
  const dim3 grid(static_cast<unsigned>(n_qt) << log2_group, (bh + (1 << log2_group) - 1) >> log2_group);
  kernel<<<grid, Cfg::kThreads, Cfg::kSmem, stream>>>(p, log2_group);
  return cudaGetLastError();
}

// Version 2 takes blocks of 128 whose key lists fit its shared-memory copy, on a device whose
// per-block shared memory holds its tiles (D = 128 needs 103 KB: sm_90 has 227 KB, several
// other architectures 99 KB); version 1 takes the rest.
bool v2_applies(const Params& p, int D) {
  if (p.L.block % 128 != 0 || p.L.nb > kV2MaxEntries) return false;
  int device = 0, optin = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
    return false;
  return optin >= (D == 64 ? FwdV2D64::kSmem : FwdV2D128::kSmem);
}
}  // namespace

cudaError_t forward(const Params& p, int D, cudaStream_t stream) {
  if (v2_applies(p, D))
    return D == 64 ? launch_fwd_v2(FwdV2D64{}, p, stream) : launch_fwd_v2(FwdV2D128{}, p, stream);
  return D == 64 ? launch_fwd_d<64>(p, stream) : launch_fwd_d<128>(p, stream);
}

}  // namespace minitx::cuda::attn
