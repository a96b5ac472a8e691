#include "minitx/backend/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "gemm_kernel.h"
#include "gemm_pack.h"
#include "minitx/core/error.h"
#include "minitx/core/threads.h"

// Loop nest (BLIS): op(B) is packed into 16-wide panels for every k-block (by sgemm on each call,
// or once by PackedB); then threads take output tiles of up to kMcMax rows × kNt columns, and for
// each tile and each k-block in order pack op(A)[rows, kblock] into 6-tall panels and run the
// micro-kernel over the tile. A packed A block (kMcMax×kc) lives in L2, a packed B panel (kc×16)
// in L1. One driver, multiply_tiles, serves both entry points, so they give the same bits.

namespace minitx::cpu {
namespace {

using detail::Operand;
using detail::pack_a;
using detail::pack_b_panel;

constexpr std::size_t kMr = kGemmMr, kNr = kGemmNr, kKc = kGemmKc;
constexpr std::size_t kMcMax = 72;   // rows per tile at most: 72×256 floats of A = 72 KiB of L2
constexpr std::size_t kNt = 256;    // columns per tile
constexpr std::size_t kMinTiles = 4;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// A growable 64-byte-aligned scratch buffer, one per thread so nested calls never share.
class Scratch {
 public:
  float* get(std::size_t floats) {
    if (floats > size_) {
      const std::size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
      data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!data_) throw std::bad_alloc();
      size_ = floats;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float, FreeDeleter> data_;
  std::size_t size_ = 0;
};

thread_local Scratch t_pack_a, t_pack_b;

// -1 until the first product chooses: MINITX_GEMM_ISA, else the best the CPU has.
std::atomic<int> g_isa{-1};

// Columns [0, cols) of a tile's rows × kc block: `b` is the first packed panel, the next ones
// `panel_stride` floats apart. Each panel stays in L1 while every row strip of A passes over it.
void tile_columns(bool wide, std::size_t kc, const float* packed_a, std::size_t rows, const float* b,
                  std::size_t panel_stride, float* c, std::size_t ldc, std::size_t cols, detail::TileStore store) {
  for (std::size_t j = 0; j < cols;) {
    const std::size_t left = cols - j;
    const float* panel = b + (j / kNr) * panel_stride;
    if (wide && left > kNr) {
      const std::size_t w = std::min(2 * kNr, left);
      for (std::size_t i = 0; i < rows; i += kMr)
        detail::micro_kernel_6x32_avx512(kc, packed_a + i * kc, 1, kMr, panel, panel + panel_stride, c + i * ldc + j,
                                         ldc, std::min(kMr, rows - i), w, store);
      j += w;
    } else {
      const std::size_t w = std::min(kNr, left);
      for (std::size_t i = 0; i < rows; i += kMr)
        detail::micro_kernel_6x16(kc, packed_a + i * kc, 1, kMr, panel, c + i * ldc + j, ldc, std::min(kMr, rows - i),
                                  w, store);
      j += w;
    }
  }
}

// Tile rows: as many as fit in L2, but at least kMinTiles tiles so that two threads get an
// even split. (The thread count is not asked for: sgemm also runs inside parallel regions.)
std::size_t tile_rows(std::size_t m, std::size_t n_tiles) {
  const std::size_t want_m_tiles = (kMinTiles + n_tiles - 1) / n_tiles;
  return std::clamp((m + want_m_tiles - 1) / want_m_tiles + kMr - 1, kMr, kMcMax) / kMr * kMr;
}

// Small products are not worth waking the pool; the result is the same either way.
bool is_small(std::size_t m, std::size_t n, std::size_t k) {
  return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < 262144.0;
}

// op(B) packed for all k-blocks: block k0 starts at k0 · panels · kNr floats, and panel q of it
// (kc × kNr, k-major) at q · kNr · kc within the block.
std::size_t panel_floats(std::size_t k, std::size_t n) { return (n + kNr - 1) / kNr * kNr * k; }

struct Panels {
  float* data;
  std::size_t k, n;
  std::size_t count() const { return (n + kNr - 1) / kNr; }
  float* panel(std::size_t k0, std::size_t q) const {
    return data + k0 * count() * kNr + q * kNr * std::min(kKc, k - k0);
  }
};

void pack_panels(const Operand& op_b, const Panels& out, bool serial) {
  const std::size_t blocks = (out.k + kKc - 1) / kKc, panels = out.count();
  const auto pack = [&](std::size_t begin, std::size_t end) {
    for (std::size_t item = begin; item < end; ++item) {
      const std::size_t k0 = item / panels * kKc, q = item % panels;
      pack_b_panel(op_b, k0, std::min(kKc, out.k - k0), q * kNr, std::min(kNr, out.n - q * kNr), out.panel(k0, q));
    }
  };
  if (serial)
    pack(0, blocks * panels);
  else
    parallel_for(blocks * panels, pack);
}

// No products (k = 0): C = bias, or beta·C, where beta == 0 must not read C.
void scale_only(std::size_t m, std::size_t n, float beta, const float* bias, float* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      c[i * ldc + j] = bias != nullptr ? bias[j] : beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

// C = alpha · op(A) · B + beta · C (or + bias, written by each tile first, when bias is given).
// A thread's tiles are consecutive in row-major order; the ones sharing a row of tiles share
// each packed block of A, and every tile sees its k-blocks in order, so each element of C is
// the same sequence of operations whatever the thread count or the tile it falls in.
void multiply_tiles(const Operand& op_a, std::size_t m, float alpha, const Panels& b, float beta, const float* bias,
                    float* c, std::size_t ldc, bool serial) {
  const std::size_t n = b.n, k = b.k;
  const bool wide = gemm_isa() == GemmIsa::avx512;  // asked here: the choice may throw, workers must not
  const std::size_t n_tiles = (n + kNt - 1) / kNt;
  const std::size_t mc = tile_rows(m, n_tiles);
  const std::size_t tiles = (m + mc - 1) / mc * n_tiles;
  const float beta_c = bias != nullptr ? 1.0f : beta;
  const auto work = [&](std::size_t begin, std::size_t end) {
    float* packed_a = t_pack_a.get(kMcMax * kKc + 8);
    for (std::size_t t = begin; t < end;) {
      const std::size_t tm = t / n_tiles;
      const std::size_t t_end = std::min(end, (tm + 1) * n_tiles);
      const std::size_t i0 = tm * mc, rows = std::min(mc, m - i0);
      const std::size_t j_begin = (t % n_tiles) * kNt, j_end = std::min(n, ((t_end - 1) % n_tiles + 1) * kNt);
      if (bias != nullptr)
        for (std::size_t i = i0; i < i0 + rows; ++i) std::copy(bias + j_begin, bias + j_end, c + i * ldc + j_begin);
      for (std::size_t k0 = 0; k0 < k; k0 += kKc) {
        const std::size_t kc = std::min(kKc, k - k0);
        pack_a(op_a, i0, rows, k0, kc, packed_a);
        tile_columns(wide, kc, packed_a, rows, b.panel(k0, j_begin / kNr), kNr * kc, c + i0 * ldc + j_begin, ldc,
                     j_end - j_begin, {alpha, beta_c, k0 == 0});
      }
      t = t_end;
    }
  };
  if (serial)
    work(0, tiles);
  else
    parallel_for(tiles, work);
}

}  // namespace

bool cpu_has_avx512() {
  static const bool has = [] {
    __builtin_cpu_init();  // may run before the constructors that would otherwise do this
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

GemmIsa gemm_isa() {
  if (const int chosen = g_isa.load(); chosen >= 0) return static_cast<GemmIsa>(chosen);
  GemmIsa isa = cpu_has_avx512() ? GemmIsa::avx512 : GemmIsa::avx2;
  if (const char* env = std::getenv("MINITX_GEMM_ISA"); env != nullptr && *env != '\0') {
    const std::string_view want(env);
    if (want == "avx2")
      isa = GemmIsa::avx2;
    else if (want == "avx512" && cpu_has_avx512())
      isa = GemmIsa::avx512;
    else if (want == "avx512")
      fail("MINITX_GEMM_ISA=avx512, but this CPU has no AVX-512F");
    else
      fail("MINITX_GEMM_ISA: expected avx2 or avx512, got '{}'", want);
  }
  g_isa.store(static_cast<int>(isa));
  return isa;
}

void set_gemm_isa(GemmIsa isa) {
  MINITX_CHECK(isa != GemmIsa::avx512 || cpu_has_avx512(), "sgemm: this CPU has no AVX-512F");
  g_isa.store(static_cast<int>(isa));
}

const char* gemm_isa_name(GemmIsa isa) { return isa == GemmIsa::avx512 ? "avx512" : "avx2"; }

void sgemm(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
           std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_only(m, n, beta, nullptr, c, ldc);
  const Operand op_b{b, ldb, trans_b == Trans::yes};
  const bool small = is_small(m, n, k);
  const Panels panels{t_pack_b.get(panel_floats(k, n)), k, n};
  pack_panels(op_b, panels, small);
  multiply_tiles({a, lda, trans_a == Trans::yes}, m, alpha, panels, beta, nullptr, c, ldc, small);
}

void PackedB::Free::operator()(float* p) const { std::free(p); }

PackedB::PackedB(Trans trans_b, std::size_t k, std::size_t n, const float* b, std::size_t ldb) : k_(k), n_(n) {
  const std::size_t bytes = std::max<std::size_t>(64, (panel_floats(k, n) * sizeof(float) + 63) / 64 * 64);
  data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
  if (!data_) throw std::bad_alloc();
  pack_panels({b, ldb, trans_b == Trans::yes}, {data_.get(), k, n}, false);
}

void sgemm_packed(Trans trans_a, std::size_t m, float alpha, const float* a, std::size_t lda, const PackedB& b,
                  float beta, float* c, std::size_t ldc, const float* bias) {
  const std::size_t n = b.n(), k = b.k();
  MINITX_CHECK(bias == nullptr || beta == 0.0f, "sgemm_packed: a bias replaces beta · C, so beta must be 0");
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_only(m, n, beta, bias, c, ldc);
  multiply_tiles({a, lda, trans_a == Trans::yes}, m, alpha, {b.data_.get(), k, n}, beta, bias, c, ldc,
                 is_small(m, n, k));
}

void sgemm_reference(Trans trans_a, Trans trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                     const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                     std::size_t ldc) {
  const Operand op_a{a, lda, trans_a == Trans::yes};
  const Operand op_b{b, ldb, trans_b == Trans::yes};
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (std::size_t p = 0; p < k; ++p) sum += static_cast<double>(op_a.at(i, p)) * op_b.at(p, j);
      const double old = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c[i * ldc + j];
      c[i * ldc + j] = static_cast<float>(static_cast<double>(alpha) * sum + old);
    }
}

}  // namespace minitx::cpu
