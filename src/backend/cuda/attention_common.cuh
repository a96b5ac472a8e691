// Pieces shared by the block-sparse attention kernels: warp-level bf16 tensor-core products
// (mma.sync m16n8k16, fragments via ldmatrix), cp.async tile loads, and the element mask.
//
// Fragment conventions (PTX ISA, "Matrix fragments for mma.m16n8k16"): with g = lane / 4 and
// t = lane % 4, an accumulator c[4] of a 16x8 tile holds (g, 2t), (g, 2t+1), (g+8, 2t),
// (g+8, 2t+1); an A fragment a[4] holds rows g / g+8 and k columns 2t.. / 8+2t..; a B fragment
// b[2] holds k rows 2t.. and 8+2t.. of column g. Two adjacent accumulator tiles of a row block
// are therefore exactly one A fragment once packed to bf16: P never leaves registers.
//
// Shared-memory tiles are row-major with rows of D + 8 bf16 (a 16-byte pad): the eight row
// addresses of one ldmatrix then fall in eight different bank groups, without a swizzle.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "attention_launch.h"
#include "attention_tiles.h"

namespace minitx::cuda::attn {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ const bf16* bf(const std::uint16_t* x) { return reinterpret_cast<const bf16*>(x); }
__device__ __forceinline__ bf16* bf(std::uint16_t* x) { return reinterpret_cast<bf16*>(x); }

constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, bypassing L1; src_bytes = 0 writes zeros (rows past T).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c += a · b on a 16x8x16 tile, bf16 operands, fp32 accumulation.
__device__ __forceinline__ void mma_16816(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (low half) = lo
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

// A fragment of rows [row0, row0 + 16), k columns [k0, k0 + 16) of a row-major smem tile.
template <int LD>
__device__ __forceinline__ void load_a(std::uint32_t (&a)[4], const bf16* tile, int row0, int k0, int lane) {
  ldmatrix_x4(a, tile + (row0 + (lane & 15)) * LD + k0 + (lane >> 4) * 8);
}
// B fragments of two adjacent n8 tiles [n0, n0 + 16) x k [k0, k0 + 16) from a tile stored n-major
// ([n][k], e.g. K rows for Q·Kᵀ): b[0..1] for n0, b[2..3] for n0 + 8.
template <int LD>
__device__ __forceinline__ void load_b_nk(std::uint32_t (&b)[4], const bf16* tile, int n0, int k0, int lane) {
  const int m = lane >> 3;
  ldmatrix_x4(b, tile + (n0 + (m >> 1) * 8 + (lane & 7)) * LD + k0 + (m & 1) * 8);
}
// The same from a tile stored k-major ([k][n], e.g. V rows for P·V), through the transposing load.
template <int LD>
__device__ __forceinline__ void load_b_kn(std::uint32_t (&b)[4], const bf16* tile, int k0, int n0, int lane) {
  const int m = lane >> 3;
  ldmatrix_x4_trans(b, tile + (k0 + (m & 1) * 8 + (lane & 7)) * LD + n0 + (m >> 1) * 8);
}

// Rows [r0, r0 + ROWS) of a (tokens, D) operand into a padded smem tile; rows >= T become 0.
template <int ROWS, int D, int NT>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* base, std::int64_t ld, int r0, int T, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  for (int c = tid; c < ROWS * kChunks; c += NT) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = r0 + r < T;
    const bf16* src = valid ? base + static_cast<std::int64_t>(r0 + r) * ld + col : base;
    cp_async16(tile + r * (D + 8) + col, src, valid);
  }
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// The shared-memory bytes of a padded tile.
constexpr int tile_bytes(int rows, int D) { return rows * (D + 8) * static_cast<int>(sizeof(std::uint16_t)); }

}  // namespace minitx::cuda::attn
