// Block-sparse attention on the GPU against the CPU oracle (sparse::attention_ref_*), for every
// pattern, block sizes 16/32/64/128, D 64 and 128, T not a multiple of the block, B·H > 1.
//
// Tolerance. The oracle runs in double on the same bf16-rounded q, k, v, dO, so the only
// differences are the kernel's own roundings: P (forward) and dS, P (backward) rounded to bf16
// before their products (unit roundoff u = 2^-9 ≈ 2e-3 each, independent across elements, so
// the relative L2 error of a sum of them stays near u), fp32 accumulation (negligible), and the
// bf16 outputs (u/2). Expected: a few 1e-3. Bounds: relative L2 ≤ 1e-2 for out, ≤ 2e-2 for dq,
// dk, dv (dS = P·(dP − delta) is rounded after a subtraction that can cancel), |Δlse| ≤ 1e-3·(1+|lse|).
// Every output is poisoned with NaN before the call and must come back finite (fully written).
// The fp32 checking path (plain FMA) must match to fp32 rounding: ≤ 1e-5 (out, lse), ≤ 1e-4 (gradients).
#include <doctest/doctest.h>

#include "gpu.h"

#if MINITX_CUDA
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/backend/cuda/attention.h"
#include "minitx/core/error.h"
#include "minitx/backend/cuda/check.h"
#include "minitx/core/rng.h"
#include "minitx/sparse/attention_ref.h"
#include "minitx/sparse/layout.h"

namespace mc = minitx::cuda;
namespace sp = minitx::sparse;

namespace {

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) { MINITX_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T))); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& host) { MINITX_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    MINITX_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // Ordered on `stream` alone: it sees what that stream's earlier work (and what it waited for) wrote.
  std::vector<T> download(cudaStream_t stream) const {
    std::vector<T> host(n_);
    MINITX_CUDA_CHECK(cudaMemcpyAsync(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, stream));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));
    return host;
  }
  void poison() { MINITX_CUDA_CHECK(cudaMemset(p_, 0xff, n_ * sizeof(T))); }  // all-ones: NaN in bf16 and fp32

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

// bf16 patterns and their exact float values.
struct Bf16Data {
  std::vector<mc::bf16_bits> bits;
  std::vector<float> values;
};
Bf16Data random_bf16(std::size_t n, std::uint64_t seed) {
  const minitx::CounterRng rng(seed, 77);
  Bf16Data d{std::vector<mc::bf16_bits>(n), std::vector<float>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    d.bits[i] = mc::bf16_from_float(rng.normal(i));
    d.values[i] = mc::float_from_bf16(d.bits[i]);
  }
  return d;
}

std::vector<float> widen(const std::vector<mc::bf16_bits>& bits) {
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) out[i] = mc::float_from_bf16(bits[i]);
  return out;
}

// Relative L2 error of got against want over the elements where select(i) holds; every
// selected element must be finite.
template <class Select>
double rel_l2(const std::vector<float>& got, const std::vector<float>& want, Select select) {
  double num = 0, den = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!select(i)) continue;
    if (!std::isfinite(got[i])) ++bad;
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  CHECK_MESSAGE(bad == 0, bad << " elements not written (still NaN) or not finite");
  return std::sqrt(num / std::max(den, 1e-30));
}
double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  return rel_l2(got, want, [](std::size_t) { return true; });
}

struct Outputs {
  std::vector<mc::bf16_bits> out, dqkv;
  std::vector<float> lse;
};

struct Problem {
  std::int32_t B, T, H, D;
  Bf16Data qkv, dout;
  Problem(std::int32_t b, std::int32_t t, std::int32_t h, std::int32_t d, std::uint64_t seed)
      : B(b), T(t), H(h), D(d),
        qkv(random_bf16(static_cast<std::size_t>(b) * t * 3 * h * d, seed)),
        dout(random_bf16(static_cast<std::size_t>(b) * t * h * d, seed + 1000)) {}
  std::size_t C() const { return static_cast<std::size_t>(H) * D; }
  std::size_t tokens() const { return static_cast<std::size_t>(B) * T; }

  // Forward and backward on the GPU, every output poisoned first. On a stream of the caller's,
  // the outputs are read back through that stream only (no device-wide synchronisation).
  Outputs run(const sp::BlockLayout& layout, cudaStream_t stream = nullptr) const {
    const std::size_t C = this->C(), N = tokens();
    DeviceBuffer<mc::bf16_bits> qkv_d(N * 3 * C), out_d(N * C), dout_d(N * C), dqkv_d(N * 3 * C);
    const mc::DeviceLayout dl(layout);
    const mc::AttentionShape shape{B, T, H, D};
    DeviceBuffer<float> lse_d(static_cast<std::size_t>(B) * H * T),
        scratch_d(mc::attention_backward_scratch_floats(dl, shape));
    qkv_d.upload(qkv.bits);
    dout_d.upload(dout.bits);
    out_d.poison();
    lse_d.poison();
    dqkv_d.poison();
    scratch_d.poison();
    const auto in = mc::qkv_view(qkv_d.get(), static_cast<std::int64_t>(C));
    const auto ld = static_cast<std::int64_t>(C);
    if (stream != nullptr) MINITX_CUDA_CHECK(cudaDeviceSynchronize());  // the uploads and poisons
    mc::attention_forward(out_d.get(), ld, lse_d.get(), in, dl, shape, stream);
    mc::bf16_bits* dq = dqkv_d.get();
    mc::attention_backward(dq, dq + C, dq + 2 * C, 3 * ld, scratch_d.get(), scratch_d.size(), dout_d.get(), ld,
                           out_d.get(), ld, lse_d.get(), in, dl, shape, stream);
    if (stream != nullptr) return {out_d.download(stream), dqkv_d.download(stream), lse_d.download(stream)};
    MINITX_CUDA_CHECK(cudaDeviceSynchronize());
    return {out_d.download(), dqkv_d.download(), lse_d.download()};
  }

  void check_against_reference(const sp::BlockLayout& layout, cudaStream_t stream = nullptr) const {
    const std::size_t C = this->C(), N = tokens();
    const Outputs got = run(layout, stream);
    std::vector<float> out(N * C), lse(static_cast<std::size_t>(B) * H * T), dqkv(N * 3 * C);
    sp::attention_ref_forward(out.data(), lse.data(), qkv.values.data(), layout, B, T, C, H);
    sp::attention_ref_backward(dqkv.data(), dout.values.data(), qkv.values.data(), layout, B, T, C, H);
    CHECK(rel_l2(widen(got.out), out) <= 1e-2);
    std::size_t lse_bad = 0;
    for (std::size_t i = 0; i < lse.size(); ++i)
      if (!(std::abs(got.lse[i] - lse[i]) <= 1e-3 * (1 + std::abs(lse[i])))) ++lse_bad;
    CHECK_MESSAGE(lse_bad == 0, lse_bad << " lse values off");
    const auto g = widen(got.dqkv);
    for (std::size_t part = 0; part < 3; ++part) {
      CAPTURE(part);  // 0 dq, 1 dk, 2 dv
      CHECK(rel_l2(g, dqkv, [&](std::size_t i) { return (i % (3 * C)) / C == part; }) <= 2e-2);
    }
  }
};

std::vector<std::pair<std::string, sp::BlockLayout>> patterns(std::int32_t T, std::int32_t block, std::int32_t H) {
  return {
      {"dense", sp::dense_causal(T, block)},
      {"local", sp::local(T, block, 2)},
      {"strided", sp::strided(T, block, 2, 3)},
      {"bigbird", sp::bigbird(T, block, 1, 1, 2, 5, H)},  // a layout per head
      {"longformer", sp::longformer(T, block, 1, {0, 37, T - 2})},
      {"sinks", sp::sinks(T, block, 1, 2)},
  };
}

}  // namespace

GPU_TEST_CASE("cuda attention: forward and backward against the reference, every pattern and block size") {
  for (std::int32_t D : {64, 128})
    for (std::int32_t block : {16, 32, 64, 128}) {
      // T is odd and not a multiple of any block: the last block is partial.
      const std::int32_t T = D == 64 ? 301 : 203;
      const Problem problem(2, T, 3, D, static_cast<std::uint64_t>(D * 1000 + block));
      for (const auto& [name, layout] : patterns(T, block, 3)) {
        CAPTURE(D);
        CAPTURE(block);
        CAPTURE(name);
        problem.check_against_reference(layout);
      }
    }
}

// The fp32 path: plain FMA in fp32, so it must match the double oracle to fp32 rounding.
GPU_TEST_CASE("cuda attention: the fp32 checking path against the reference") {
  for (std::int32_t D : {16, 32, 80, 64, 128})
    for (std::int32_t block : {16, 32, 64, 128}) {
      const std::int32_t B = 2, T = 203, H = 3;
      const Problem problem(B, T, H, D, static_cast<std::uint64_t>(D * 1000 + block + 7));
      const std::size_t C = problem.C(), N = problem.tokens();
      DeviceBuffer<float> qkv_d(N * 3 * C), out_d(N * C), dout_d(N * C), dqkv_d(N * 3 * C);
      DeviceBuffer<float> lse_d(static_cast<std::size_t>(B) * H * T), delta_d(static_cast<std::size_t>(B) * H * T);
      qkv_d.upload(problem.qkv.values);
      dout_d.upload(problem.dout.values);
      for (const auto& [name, layout] : patterns(T, block, H)) {
        CAPTURE(D);
        CAPTURE(block);
        CAPTURE(name);
        out_d.poison();
        lse_d.poison();
        dqkv_d.poison();
        const mc::DeviceLayout dl(layout);
        const mc::AttentionShape shape{B, T, H, D};
        const auto ld = static_cast<std::int64_t>(C);
        const auto in = mc::qkv_view(static_cast<const float*>(qkv_d.get()), ld);
        mc::attention_forward_f32(out_d.get(), ld, lse_d.get(), in, dl, shape);
        float* dq = dqkv_d.get();
        mc::attention_backward_f32(dq, dq + C, dq + 2 * C, 3 * ld, delta_d.get(), dout_d.get(), ld, out_d.get(), ld,
                                   lse_d.get(), in, dl, shape);
        MINITX_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> out(N * C), lse(static_cast<std::size_t>(B) * H * T), dqkv(N * 3 * C);
        sp::attention_ref_forward(out.data(), lse.data(), problem.qkv.values.data(), layout, B, T, C, H);
        sp::attention_ref_backward(dqkv.data(), problem.dout.values.data(), problem.qkv.values.data(), layout, B, T, C,
                                   H);
        CHECK(rel_l2(out_d.download(), out) <= 1e-5);
        CHECK(rel_l2(lse_d.download(), lse) <= 1e-5);
        CHECK(rel_l2(dqkv_d.download(), dqkv) <= 1e-4);
      }
    }
}

GPU_TEST_CASE("cuda attention: long sequences stream many key tiles") {
  const Problem problem(1, 1000, 2, 64, 9);
  problem.check_against_reference(sp::dense_causal(1000, 64));
  problem.check_against_reference(sp::bigbird(1000, 128, 2, 1, 3, 11));
  const Problem p128(1, 777, 2, 128, 10);
  p128.check_against_reference(sp::sinks(777, 128, 1, 2));
}

// Blocks of 128 take the forward's 128-row query tiles (version 2): a T that fills its last tile
// exactly, B·H that leaves part of the last head group empty, and a layout keeping every causal
// block that must give dense causal's bits through that path too.
GPU_TEST_CASE("cuda attention: 128-row query tiles with whole last tiles and partial head groups") {
  for (std::int32_t D : {64, 128})
    for (std::int32_t T : {256, 384}) {
      const Problem problem(1, T, 5, D, static_cast<std::uint64_t>(D + T));
      for (const auto& [name, layout] : patterns(T, 128, 5)) {
        CAPTURE(D);
        CAPTURE(T);
        CAPTURE(name);
        problem.check_against_reference(layout);
      }
    }
  const Problem problem(2, 300, 3, 64, 41);
  const Outputs full = problem.run(sp::local(300, 128, 3)), dense = problem.run(sp::dense_causal(300, 128));
  CHECK(full.out == dense.out);
  CHECK(full.dqkv == dense.dqkv);
}

// Does the backward's plan cut some key column into chunks (scratch beyond rowsum(dO ∘ O))?
bool splits_columns(const sp::BlockLayout& layout, const mc::AttentionShape& s) {
  const auto rows = static_cast<std::size_t>(s.B) * s.H * s.T;
  return mc::attention_backward_scratch_floats(layout, s) > (rows + 3) / 4 * 4;
}

// Long columns (sinks' first block, strided's stripes, Longformer's global blocks, at T in the
// thousands) are cut into chunks whose fp32 partials a reduce adds: every block size and both
// head sizes, T odd.
GPU_TEST_CASE("cuda attention: the backward of split key columns against the reference") {
  const std::int32_t T = 2051, B = 1, H = 2;
  for (std::int32_t D : {64, 128}) {
    const Problem problem(B, T, H, D, static_cast<std::uint64_t>(D + 3));
    for (std::int32_t block : {16, 32, 64, 128}) {
      if (D == 128 && (block == 16 || block == 64)) continue;  // the reference's time: D 128 at two sizes
      const std::vector<std::pair<std::string, sp::BlockLayout>> layouts = {
          {"sinks", sp::sinks(T, block, 1, 2)},
          {"strided", sp::strided(T, block, 2, 8)},
          {"longformer", sp::longformer(T, block, 2, {0, 1, 700, 1500, T - 1})},
      };
      for (const auto& [name, layout] : layouts) {
        CAPTURE(D);
        CAPTURE(block);
        CAPTURE(name);
        REQUIRE(splits_columns(layout, {B, T, H, D}));
        problem.check_against_reference(layout);
      }
    }
  }
}

// Enough heads that the plan leaves every column whole (sinks at 1k: 48 heads in one group of 64,
// 16-tile columns against a slot's 17), so the kernels take their items from the block index;
// on a stream of the test's own, read back through it alone: dQ, on the backward's side stream,
// must start after delta and finish before the caller's stream goes on.
GPU_TEST_CASE("cuda attention: whole columns from B·H, dQ beside dK/dV, on the caller's stream") {
  const std::int32_t B = 8, T = 1024, H = 6;
  const sp::BlockLayout layout = sp::sinks(T, 128, 1, 4);
  const Problem problem(B, T, H, 64, 51);
  REQUIRE_FALSE(splits_columns(layout, {B, T, H, 64}));
  REQUIRE(splits_columns(layout, {1, T, 1, 64}));  // one head alone would cut them
  cudaStream_t stream = nullptr;
  MINITX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  problem.check_against_reference(layout, stream);
  const Outputs a = problem.run(layout, stream), b = problem.run(layout);
  CHECK(a.dqkv == b.dqkv);
  CHECK(a.out == b.out);
  MINITX_CUDA_CHECK(cudaStreamDestroy(stream));
}

GPU_TEST_CASE("cuda attention: two runs give the same bits") {
  for (std::int32_t D : {64, 128}) {
    CAPTURE(D);
    const Problem problem(2, 333, 2, D, 21);
    for (const auto& layout : {sp::dense_causal(333, 128), sp::longformer(333, 32, 2, {5, 100}),
                               sp::sinks(333, 16, 1, 2)}) {
      CHECK(splits_columns(layout, {2, 333, 2, D}));  // even dense causal's first columns, at this T
      const Outputs a = problem.run(layout), b = problem.run(layout);
      CHECK(a.out == b.out);
      CHECK(a.dqkv == b.dqkv);
      CHECK(std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)) == 0);
    }
  }
}

GPU_TEST_CASE("cuda attention: a layout that keeps everything is dense causal attention") {
  const std::int32_t T = 250, B = 2, H = 2, D = 64;
  const Problem problem(B, T, H, D, 31);
  // Local with a window as wide as the sequence keeps every causal block: the same tiles in the
  // same order as dense_causal, so the same bits.
  const Outputs full = problem.run(sp::local(T, 64, 4)), dense = problem.run(sp::dense_causal(T, 64));
  CHECK(full.out == dense.out);
  CHECK(full.dqkv == dense.dqkv);
  // And the existing CPU attention agrees within the bf16 tolerance.
  const std::size_t C = problem.C(), N = problem.tokens();
  std::vector<float> out(N * C), att(static_cast<std::size_t>(B) * H * T * T);
  minitx::cpu::attention_forward(out.data(), att.data(), problem.qkv.values.data(), B, T, C, H);
  CHECK(rel_l2(widen(dense.out), out) <= 1e-2);
}

GPU_TEST_CASE("cuda attention: arguments are checked") {
  const auto layout = sp::dense_causal(100, 64);
  const mc::DeviceLayout dl(layout);
  DeviceBuffer<mc::bf16_bits> qkv(100 * 3 * 64), out(100 * 64);
  DeviceBuffer<float> lse(100);
  const auto in = mc::qkv_view(qkv.get(), 64);
  CHECK_THROWS_WITH_AS(mc::attention_forward(out.get(), 64, lse.get(), in, dl, {1, 100, 1, 96}),
                       doctest::Contains("D must be 64 or 128"), minitx::Error);
  // The fp32 path takes multiples of 16 up to 128, and names the rule otherwise.
  DeviceBuffer<float> qkv32(100 * 3 * 160), out32(100 * 160);
  const auto in32 = mc::qkv_view(static_cast<const float*>(qkv32.get()), 3 * 40);
  CHECK_THROWS_WITH_AS(mc::attention_forward_f32(out32.get(), 40, lse.get(), in32, dl, {1, 100, 1, 40}),
                       doctest::Contains("D must be a multiple of 16 from 16 to 128, not 40"), minitx::Error);
  CHECK_THROWS_WITH_AS(mc::attention_forward_f32(out32.get(), 160, lse.get(), in32, dl, {1, 100, 1, 160}),
                       doctest::Contains("not 160"), minitx::Error);
  CHECK_THROWS_WITH_AS(mc::attention_forward(out.get(), 64, lse.get(), in, dl, {1, 120, 1, 64}),
                       doctest::Contains("the layout is for T = 100"), minitx::Error);
  // The backward's scratch: rowsum(dO ∘ O) and the split columns' partials, sized by the plan.
  const mc::AttentionShape shape{1, 100, 1, 64};
  const std::size_t need = mc::attention_backward_scratch_floats(dl, shape);
  CHECK(need == mc::attention_backward_scratch_floats(layout, shape));
  DeviceBuffer<mc::bf16_bits> dqkv(100 * 3 * 64), dout(100 * 64);
  DeviceBuffer<float> scratch(need);
  const std::string message = fmt::format("hold {} floats for this layout and shape, not {}", need, need - 1);
  CHECK_THROWS_WITH_AS(mc::attention_backward(dqkv.get(), dqkv.get() + 64, dqkv.get() + 128, 192, scratch.get(),
                                              need - 1, dout.get(), 64, out.get(), 64, lse.get(), in, dl, shape),
                       doctest::Contains(message.c_str()), minitx::Error);
}

#endif  // MINITX_CUDA
