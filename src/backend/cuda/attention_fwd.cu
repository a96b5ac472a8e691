// Forward: one CTA per (query tile of BM rows, batch·head), one warp per 16 query rows. Q stays
// in registers; K/V tiles of BN keys stream through two shared-memory buffers (cp.async: the
// next kept tile loads while this one is used). Scores, the online softmax and P live in
// registers; P·V reuses the score accumulators as A fragments.
#include <climits>
#include <cmath>

#include "attention_common.cuh"

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

  const std::int64_t batch = static_cast<std::int64_t>(b) * T * p.ld_qkv;
  const bf16* qg = bf(p.q) + batch + h * D;
  const bf16* kg = bf(p.k) + batch + h * D;
  const bf16* vg = bf(p.v) + batch + h * D;

  load_tile<BM, D, NT>(sq, qg, p.ld_qkv, q0, T, tid);
  int k0 = walk.start(0);  // the diagonal is always kept, so tile 0 exists and starts <= q0
  load_tile<BN, D, NT>(sk(0), kg, p.ld_qkv, k0, T, tid);
  load_tile<BN, D, NT>(sv(0), vg, p.ld_qkv, k0, T, tid);
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
      load_tile<BN, D, NT>(sk(buf ^ 1), kg, p.ld_qkv, next, T, tid);
      load_tile<BN, D, NT>(sv(buf ^ 1), vg, p.ld_qkv, next, T, tid);
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
  // Once per kernel (not per call: it is a host round trip inside every timed run otherwise).
  static const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmem);
  if (err != cudaSuccess) return err;
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

}  // namespace

cudaError_t forward(const Params& p, int D, cudaStream_t stream) {
  return D == 64 ? launch_fwd_d<64>(p, stream) : launch_fwd_d<128>(p, stream);
}

}  // namespace minitx::cuda::attn
