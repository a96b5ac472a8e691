// Every CUDA op against the CPU reference of the same op (minitx/backend/cpu/ops.h) or, where the
// CPU has none (gelu-erf, relu, rotary, the padded cross-entropy), a double-precision reference
// written here. Each op runs for T = float and T = bf16 on odd shapes (rows and channels that are
// not multiples of a warp or a tile, a vocabulary that is not a multiple of 64), on fresh random
// inputs; outputs that an op overwrites are poisoned with NaN first, so an element it forgets to
// write fails the check; and each op is run twice to check that the bits repeat.
//
// Tolerances (u32 = 2^-24, the fp32 unit roundoff; u16 = 2^-8, bf16's):
// - bf16 inputs are generated already rounded to bf16, so both sides see the same numbers and
//   only the computation and the final rounding differ.
// - A bf16 output is the fp32 result rounded once: at most u16·|y| ≈ 3.9e-3·|y| from it. With the
//   fp32 differences between the two implementations on top, kBf16 = 1e-2 (≈ 2.5·u16) relative,
//   plus the same fraction of the tensor's mean magnitude for values that cancel to near 0.
// - fp32 element-wise ops with exp/erf/division differ from the CPU's by a few ulp: kFp32 = 1e-5
//   relative (≈ 170 ulp, far above the few ulp expected, far below any real bug), plus the same
//   fraction of the tensor's mean magnitude.
// - Sums of K products (matmul) are bounded, for any summation order, by γ_K·Σ|a||b| with
//   γ_K ≈ K·u32, so two implementations differ by at most 2·γ_K·Σ|a||b|; the test computes
//   Σ|a||b| with the CPU matmul on absolute values.
// - Ops that do the same fp32 operations in the same order as the CPU are compared bit for bit:
//   the embedding (both directions), residual, AdamW, and the copies of rotary.
//
// In a build without CUDA (MINITX_CUDA unset) this file compiles to nothing: the GPU test cases
// do not exist there. In a CUDA build on a machine without a GPU they exist and are skipped
// (tests/gpu.h), so `make test` counts them as skipped.
#include <doctest/doctest.h>

#if MINITX_CUDA
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/backend/cuda/check.h"
#include "minitx/backend/cuda/ops.h"
#include "minitx/core/error.h"

namespace cpu = minitx::cpu;
namespace gpu = minitx::cuda;
using gpu::bf16;

namespace {

constexpr double kU32 = 1.0 / 16777216.0;  // 2^-24
constexpr double kFp32 = 1e-5;
constexpr double kBf16 = 1e-2;

template <class T>
constexpr double storage_tol() {
  return std::is_same_v<T, float> ? kFp32 : kBf16;
}

float round_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

template <class T>
float round_to(float x) {
  return std::is_same_v<T, float> ? x : round_bf16(x);
}

// Uniform in [lo, hi), rounded to what T can hold, from a seed of the test's own.
template <class T>
std::vector<float> random(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = round_to<T>(dist(gen));
  return v;
}

// A device buffer of n elements of T, filled from and read back as floats.
template <class T>
class Dev {
 public:
  explicit Dev(std::size_t n) : n_(n) { MINITX_CUDA_CHECK(cudaMalloc(&p_, std::max<std::size_t>(n, 1) * sizeof(T))); }
  explicit Dev(const std::vector<float>& v) : Dev(v.size()) { upload(v); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;

  T* get() const { return p_; }
  void upload(const std::vector<float>& v) {
    REQUIRE(v.size() == n_);
    std::vector<T> host(n_);
    for (std::size_t i = 0; i < n_; ++i) host[i] = static_cast<T>(v[i]);
    MINITX_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<float> download() const {
    MINITX_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(n_);
    MINITX_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> v(n_);
    for (std::size_t i = 0; i < n_; ++i) v[i] = static_cast<float>(host[i]);
    return v;
  }
  // All bits set: a NaN in fp32 and in bf16, so an element left unwritten cannot pass a check.
  void poison() { MINITX_CUDA_CHECK(cudaMemset(p_, 0xff, n_ * sizeof(T))); }
  std::vector<std::uint8_t> bits() const {
    MINITX_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<std::uint8_t> b(n_ * sizeof(T));
    MINITX_CUDA_CHECK(cudaMemcpy(b.data(), p_, b.size(), cudaMemcpyDeviceToHost));
    return b;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

class Stream {
 public:
  Stream() { MINITX_CUDA_CHECK(cudaStreamCreate(&s_)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  operator cudaStream_t() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

double mean_abs(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += std::fabs(x);
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// |got - ref| ≤ bound(i) for every element, and no NaN (an unwritten, poisoned element); reports
// the count and the worst element.
template <class Bound>
void expect_within(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref,
                   const Bound& bound) {
  REQUIRE(got.size() == ref.size());
  std::size_t bad = 0, worst = 0;
  double worst_ratio = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
    const double b = bound(i);
    const bool ok = !std::isnan(got[i]) && err <= b;
    if (!ok) ++bad;
    const double ratio = std::isnan(got[i]) ? INFINITY : (b > 0 ? err / b : (err > 0 ? INFINITY : 0.0));
    if (ratio > worst_ratio || (!ok && bad == 1)) worst_ratio = ratio, worst = i;
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements out of bounds; worst [" << worst
            << "] got " << (got.empty() ? 0.0f : got[worst]) << ", expected " << (ref.empty() ? 0.0f : ref[worst])
            << ", bound " << (got.empty() ? 0.0 : bound(worst)));
  CHECK(bad == 0);
}

// rtol·(|ref| + mean|ref|): relative, with a floor at the tensor's scale for values near 0.
void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref, double rtol) {
  const double floor = mean_abs(ref);
  expect_within(what, got, ref, [&](std::size_t i) { return rtol * (std::fabs(ref[i]) + floor); });
}

void expect_equal(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref) {
  expect_within(what, got, ref, [](std::size_t) { return 0.0; });
}

template <class T>
std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = round_to<T>(x);
  return v;
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

// ---- embedding ---------------------------------------------------------------------------------

template <class T>
void check_encoder(bool positions) {
  const std::size_t B = 3, T_ = 37, C = 200, V = 1001, offset = positions ? 2 : 0;
  const std::size_t N = B * T_;
  Stream stream;
  std::vector<std::uint32_t> ids(N);
  std::mt19937_64 gen(11);
  for (auto& id : ids) id = static_cast<std::uint32_t>(gen() % 61) * 13;  // repeats, spread over V
  ids[5] = static_cast<std::uint32_t>(V - 1);
  const auto wte = random<T>(V * C, 1), wpe = random<T>((T_ + offset) * C, 2), dout = random<T>(N * C, 3);
  const auto dwte0 = random<float>(V * C, 4), dwpe0 = random<float>((T_ + offset) * C, 5);

  // Forward: one fp32 add, rounded once to T, on both sides: bit-identical.
  std::vector<float> ref(N * C);
  std::vector<float> zeros(T_ * C, 0.0f);
  cpu::encoder_forward(ref.data(), ids.data(), wte.data(), positions ? wpe.data() + offset * C : zeros.data(), N, T_, C);
  Dev<std::uint32_t> d_ids(N);
  MINITX_CUDA_CHECK(cudaMemcpy(d_ids.get(), ids.data(), N * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  Dev<T> d_wte(wte), d_wpe(wpe), d_out(N * C), d_dout(dout);
  d_out.poison();
  gpu::encoder_forward(d_out.get(), d_ids.get(), d_wte.get(), positions ? d_wpe.get() : nullptr, B, T_, C, offset, stream);
  expect_equal("encoder_forward", d_out.download(), rounded<T>(ref));

  // Backward: the GPU adds each row's positions in the CPU's order, from the same start.
  std::vector<float> ref_dwte = dwte0, ref_dwpe = dwpe0;
  std::vector<float> scratch_dwpe(T_ * C, 0.0f);
  cpu::encoder_backward(ref_dwte.data(), positions ? ref_dwpe.data() + offset * C : scratch_dwpe.data(), dout.data(),
                        ids.data(), N, T_, C);
  const gpu::TokenRows rows = gpu::token_rows(ids.data(), N, V);
  REQUIRE(rows.offsets.size() == rows.rows.size() + 1);
  REQUIRE(rows.offsets.back() == static_cast<std::int32_t>(N));
  Dev<std::int32_t> d_rows(rows.rows.size()), d_offsets(rows.offsets.size()), d_positions(N);
  MINITX_CUDA_CHECK(cudaMemcpy(d_rows.get(), rows.rows.data(), rows.rows.size() * 4, cudaMemcpyHostToDevice));
  MINITX_CUDA_CHECK(cudaMemcpy(d_offsets.get(), rows.offsets.data(), rows.offsets.size() * 4, cudaMemcpyHostToDevice));
  MINITX_CUDA_CHECK(cudaMemcpy(d_positions.get(), rows.positions.data(), N * 4, cudaMemcpyHostToDevice));
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    Dev<float> d_dwte(dwte0), d_dwpe(dwpe0);
    gpu::encoder_backward(d_dwte.get(), positions ? d_dwpe.get() : nullptr, d_dout.get(), d_rows.get(),
                          d_offsets.get(), d_positions.get(), rows.rows.size(), B, T_, C, offset, stream);
    expect_equal("encoder_backward dwte", d_dwte.download(), ref_dwte);
    expect_equal("encoder_backward dwpe", d_dwpe.download(), ref_dwpe);  // untouched without positions
    if (run == 0) first_bits = d_dwte.bits();
    else CHECK(d_dwte.bits() == first_bits);
  }
}

// ---- LayerNorm -----------------------------------------------------------------------------------

template <class T>
void check_layernorm(std::size_t N, std::size_t C) {
  Stream stream;
  const auto inp = random<T>(N * C, 21, -2.0f, 3.0f), weight = random<T>(C, 22, 0.5f, 1.5f),
             bias = random<T>(C, 23), dout = random<T>(N * C, 24);
  const auto dinp0 = random<T>(N * C, 25), dweight0 = random<float>(C, 26), dbias0 = random<float>(C, 27);
  std::vector<float> ref(N * C), ref_mean(N), ref_rstd(N);
  cpu::layernorm_forward(ref.data(), ref_mean.data(), ref_rstd.data(), inp.data(), weight.data(), bias.data(), N, C);

  Dev<T> d_inp(inp), d_weight(weight), d_bias(bias), d_out(N * C), d_dout(dout);
  Dev<float> d_mean(N), d_rstd(N);
  d_out.poison(), d_mean.poison(), d_rstd.poison();
  gpu::layernorm_forward(d_out.get(), d_mean.get(), d_rstd.get(), d_inp.get(), d_weight.get(), d_bias.get(), N, C,
                         1e-5f, stream);
  expect_close("layernorm_forward out", d_out.download(), ref, storage_tol<T>());
  // mean and rstd are fp32 from inputs both sides hold exactly.
  expect_close("layernorm_forward mean", d_mean.download(), ref_mean, kFp32);
  expect_close("layernorm_forward rstd", d_rstd.download(), ref_rstd, kFp32);

  // The backward of both sides starts from the CPU's statistics, so only the backward is compared.
  d_mean.upload(ref_mean), d_rstd.upload(ref_rstd);
  std::vector<float> ref_dinp = dinp0, ref_dweight = dweight0, ref_dbias = dbias0;
  cpu::layernorm_backward(ref_dinp.data(), ref_dweight.data(), ref_dbias.data(), dout.data(), inp.data(), weight.data(),
                          ref_mean.data(), ref_rstd.data(), N, C);
  Dev<float> scratch(gpu::layernorm_backward_scratch_floats(N, C));
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    Dev<T> d_dinp(dinp0);
    Dev<float> d_dweight(dweight0), d_dbias(dbias0);
    scratch.poison();
    gpu::layernorm_backward(d_dinp.get(), d_dweight.get(), d_dbias.get(), scratch.get(), d_dout.get(), d_inp.get(),
                            d_weight.get(), d_mean.get(), d_rstd.get(), N, C, stream);
    expect_close("layernorm_backward dinp", d_dinp.download(), ref_dinp, storage_tol<T>());
    // Column sums of N fp32 terms in another order: within kFp32 of the tensor's scale.
    expect_close("layernorm_backward dweight", d_dweight.download(), ref_dweight, kFp32);
    expect_close("layernorm_backward dbias", d_dbias.download(), ref_dbias, kFp32);
    auto bits = d_dinp.bits();
    const auto wbits = d_dweight.bits();
    bits.insert(bits.end(), wbits.begin(), wbits.end());
    if (run == 0) first_bits = bits;
    else CHECK(bits == first_bits);
  }
}

// ---- activations and residual ----------------------------------------------------------------------

double ref_act(double x, gpu::Activation act) {
  switch (act) {
    case gpu::Activation::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    case gpu::Activation::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
    case gpu::Activation::relu: return x > 0 ? x : 0.0;
  }
  return 0.0;
}
double ref_act_derivative(double x, gpu::Activation act) {
  switch (act) {
    case gpu::Activation::gelu_tanh: {
      const double k = std::sqrt(2.0 / std::numbers::pi), u = k * (x + 0.044715 * x * x * x);
      const double t = std::tanh(u);
      return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case gpu::Activation::gelu_erf:
      return 0.5 * (1.0 + std::erf(x / std::numbers::sqrt2)) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    case gpu::Activation::relu: return x > 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

template <class T>
void check_activation(gpu::Activation act, const char* name, std::size_t n) {
  INFO(name);
  Stream stream;
  auto inp = random<T>(n, 31, -6.0f, 6.0f);
  inp[0] = 0.0f, inp[1] = -0.0f, inp[2] = round_to<T>(1e-3f), inp[3] = round_to<T>(-12.0f);
  const auto dout = random<T>(n, 32), dinp0 = random<T>(n, 33);
  std::vector<float> ref(n), ref_dinp = dinp0;
  if (act == gpu::Activation::gelu_tanh) {  // the CPU op exists: compare with it
    cpu::gelu_forward(ref.data(), inp.data(), n);
    cpu::gelu_backward(ref_dinp.data(), inp.data(), dout.data(), n);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      ref[i] = static_cast<float>(ref_act(inp[i], act));
      ref_dinp[i] = static_cast<float>(dinp0[i] + ref_act_derivative(inp[i], act) * dout[i]);
    }
  }
  Dev<T> d_inp(inp), d_out(n), d_dout(dout);
  d_out.poison();
  gpu::activation_forward(d_out.get(), d_inp.get(), n, act, stream);
  const auto out = d_out.download();
  expect_close("activation_forward", out, ref, storage_tol<T>());
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    Dev<T> d_dinp(dinp0);
    gpu::activation_backward(d_dinp.get(), d_inp.get(), d_dout.get(), n, act, stream);
    expect_close("activation_backward", d_dinp.download(), ref_dinp, storage_tol<T>());
    if (run == 0) first_bits = d_dinp.bits();
    else CHECK(d_dinp.bits() == first_bits);
  }
  {  // overwriting: a poisoned dinp is never read
    std::vector<float> ref_over(n, 0.0f);
    if (act == gpu::Activation::gelu_tanh)
      cpu::gelu_backward(ref_over.data(), inp.data(), dout.data(), n);
    else
      for (std::size_t i = 0; i < n; ++i) ref_over[i] = static_cast<float>(ref_act_derivative(inp[i], act) * dout[i]);
    Dev<T> d_dinp(n);
    d_dinp.poison();
    gpu::activation_backward(d_dinp.get(), d_inp.get(), d_dout.get(), n, act, stream, false);
    expect_close("activation_backward (overwrite)", d_dinp.download(), ref_over, storage_tol<T>());
  }
  // The tanh form of the CPU also against double: both are within kFp32 of the exact function.
  if (act == gpu::Activation::gelu_tanh && std::is_same_v<T, float>) {
    std::vector<float> exact(n);
    for (std::size_t i = 0; i < n; ++i) exact[i] = static_cast<float>(ref_act(inp[i], act));
    expect_close("gelu_tanh vs double", out, exact, kFp32);
  }
}

template <class T>
void check_residual(std::size_t n) {
  Stream stream;
  const auto a = random<T>(n, 41), b = random<T>(n, 42), dout = random<T>(n, 43);
  const auto da0 = random<T>(n, 44), db0 = random<T>(n, 45);
  std::vector<float> ref(n), ref_da = da0, ref_db = db0;
  cpu::residual_forward(ref.data(), a.data(), b.data(), n);
  cpu::residual_backward(ref_da.data(), ref_db.data(), dout.data(), n);
  Dev<T> d_a(a), d_b(b), d_out(n), d_dout(dout), d_da(da0), d_db(db0);
  d_out.poison();
  gpu::residual_forward(d_out.get(), d_a.get(), d_b.get(), n, stream);
  // One fp32 add rounded once to T, as the CPU's result rounded to T.
  expect_equal("residual_forward", d_out.download(), rounded<T>(ref));
  gpu::residual_backward(d_da.get(), d_db.get(), d_dout.get(), n, stream);
  expect_equal("residual_backward da", d_da.download(), rounded<T>(ref_da));
  expect_equal("residual_backward db", d_db.download(), rounded<T>(ref_db));
  gpu::residual_forward(d_a.get(), d_a.get(), d_b.get(), n, stream);  // in place
  expect_equal("residual_forward in place", d_a.download(), rounded<T>(ref));
}

// ---- rotary --------------------------------------------------------------------------------------

// Double reference of the GPT-NeoX rotation; sign = -1 applies the transpose.
std::vector<double> ref_rotary(const std::vector<float>& qkv, std::size_t N, std::size_t T_, std::size_t C,
                               std::size_t NH, std::size_t rd, double base, std::size_t offset, double sign) {
  std::vector<double> out(qkv.begin(), qkv.end());
  const std::size_t D = C / NH, half = rd / 2;
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t part = 0; part < 2; ++part)
      for (std::size_t h = 0; h < NH; ++h)
        for (std::size_t i = 0; i < half; ++i) {
          const double theta = static_cast<double>(n % T_ + offset) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(rd));
          const double c = std::cos(theta), s = sign * std::sin(theta);
          const std::size_t at = n * 3 * C + part * C + h * D + i;
          const double x1 = qkv[at], x2 = qkv[at + half];
          out[at] = x1 * c - x2 * s;
          out[at + half] = x2 * c + x1 * s;
        }
  return out;
}

template <class T>
void check_rotary(std::size_t rd) {
  INFO("rotary_dim " << rd);
  const std::size_t B = 2, T_ = 19, NH = 3, D = 24, C = NH * D, offset = 5, N = B * T_;
  const float base = 10000.0f;
  Stream stream;
  const auto qkv = random<T>(N * 3 * C, 51), dout = random<T>(N * 3 * C, 52);
  // Tolerance: the rotated elements are fp32 products of exact inputs with cos/sin rounded once
  // from double; elements not rotated are copies and must match exactly (the bound is 0 there).
  const auto bound_for = [&](const std::vector<float>& ref, double tol) {
    const double floor = mean_abs(ref);
    return [&ref, tol, floor, C, D, rd](std::size_t i) {
      const std::size_t col = i % (3 * C);
      const bool rotated = col < 2 * C && (col % C) % D < rd;
      return rotated ? tol * (std::fabs(ref[i]) + floor) : 0.0;
    };
  };
  for (const double sign : {1.0, -1.0}) {
    const auto& x = sign > 0 ? qkv : dout;
    const auto ref_d = ref_rotary(x, N, T_, C, NH, rd, base, offset, sign);
    std::vector<float> ref(ref_d.begin(), ref_d.end());
    const auto expected = rounded<T>(ref);
    Dev<T> d_x(x), d_y(x.size());
    d_y.poison();
    std::vector<std::uint8_t> first_bits;
    for (int run = 0; run < 2; ++run) {
      if (sign > 0) gpu::rotary_forward(d_y.get(), d_x.get(), B, T_, C, NH, rd, base, offset, stream);
      else gpu::rotary_backward(d_y.get(), d_x.get(), B, T_, C, NH, rd, base, offset, stream);
      expect_within(sign > 0 ? "rotary_forward" : "rotary_backward", d_y.download(), expected,
                    bound_for(expected, storage_tol<T>()));
      if (run == 0) first_bits = d_y.bits();
      else CHECK(d_y.bits() == first_bits);
    }
    // In place gives the same bits as out of place.
    if (sign > 0) gpu::rotary_forward(d_x.get(), d_x.get(), B, T_, C, NH, rd, base, offset, stream);
    else gpu::rotary_backward(d_x.get(), d_x.get(), B, T_, C, NH, rd, base, offset, stream);
    CHECK(d_x.bits() == first_bits);
  }
}

// ---- cross-entropy -------------------------------------------------------------------------------

template <class T>
void check_crossentropy(std::size_t Vp) {  // 1040: rows of 16-byte packs; 1003: the scalar path
  INFO("Vp = " << Vp);
  const std::size_t N = 37, V = 1001;
  const float scale = 1.0f / static_cast<float>(N);
  Stream stream;
  auto logits = random<T>(N * Vp, 61, -4.0f, 4.0f);
  for (std::size_t n = 0; n < N; ++n)  // padding that would change every result if it were read
    for (std::size_t v = V; v < Vp; ++v) logits[n * Vp + v] = 50.0f;
  std::vector<std::uint32_t> targets(N);
  std::mt19937_64 gen(62);
  for (auto& t : targets) t = static_cast<std::uint32_t>(gen() % V);
  targets[0] = 0, targets[1] = static_cast<std::uint32_t>(V - 1);

  // Double reference over the first V columns; the padding's gradient is 0.
  std::vector<float> ref_loss(N), ref_d(N * Vp, 0.0f);
  for (std::size_t n = 0; n < N; ++n) {
    const float* row = logits.data() + n * Vp;
    double max = row[0];
    for (std::size_t v = 0; v < V; ++v) max = std::max(max, static_cast<double>(row[v]));
    double sum = 0.0;
    for (std::size_t v = 0; v < V; ++v) sum += std::exp(row[v] - max);
    ref_loss[n] = static_cast<float>(std::log(sum) + max - row[targets[n]]);
    for (std::size_t v = 0; v < V; ++v)
      ref_d[n * Vp + v] = static_cast<float>((std::exp(row[v] - max) / sum - (v == targets[n] ? 1.0 : 0.0)) * scale);
  }
  // The CPU op (no padding) agrees with the double reference on the real columns.
  {
    std::vector<float> unpadded(N * V), cpu_loss(N);
    for (std::size_t n = 0; n < N; ++n) std::copy_n(logits.begin() + n * Vp, V, unpadded.begin() + n * V);
    cpu::crossentropy_forward(cpu_loss.data(), unpadded.data(), targets.data(), N, V);
    expect_close("cpu crossentropy vs double", cpu_loss, ref_loss, kFp32);
  }
  Dev<std::uint32_t> d_targets(N);
  MINITX_CUDA_CHECK(cudaMemcpy(d_targets.get(), targets.data(), N * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  Dev<T> d_logits(logits), d_dlogits(N * Vp);
  Dev<float> d_loss(N);
  // The gradient: values ~scale/V around the much larger -scale at the targets, so its floor is
  // taken from the largest magnitude (scale) rather than the mean.
  const auto expected_d = rounded<T>(ref_d);
  const auto d_bound = [&](std::size_t i) {  // the padding must be exactly 0
    return i % Vp >= V ? 0.0 : storage_tol<T>() * (std::fabs(expected_d[i]) + 1e-3 * scale);
  };
  // Losses are fp32 from inputs both sides hold exactly.
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    d_loss.poison(), d_dlogits.poison();
    gpu::crossentropy_forward_backward(d_loss.get(), d_dlogits.get(), d_logits.get(), d_targets.get(), N, V, Vp, scale,
                                       stream);
    expect_close("crossentropy losses", d_loss.download(), ref_loss, kFp32);
    expect_within("crossentropy dlogits", d_dlogits.download(), expected_d, d_bound);
    if (run == 0) first_bits = d_dlogits.bits();
    else CHECK(d_dlogits.bits() == first_bits);
  }
  d_loss.poison();
  gpu::crossentropy_forward_backward<T>(d_loss.get(), nullptr, d_logits.get(), d_targets.get(), N, V, Vp, scale, stream);
  expect_close("crossentropy losses, forward only", d_loss.download(), ref_loss, kFp32);
  // In place: the logits become the gradient, with the same bits.
  gpu::crossentropy_forward_backward(d_loss.get(), d_logits.get(), d_logits.get(), d_targets.get(), N, V, Vp, scale,
                                     stream);
  CHECK(d_logits.bits() == first_bits);
  expect_close("crossentropy losses, in place", d_loss.download(), ref_loss, kFp32);
}

// ---- AdamW, gradient norm ------------------------------------------------------------------------

void check_adamw(float weight_decay) {
  const std::size_t n = 10007;
  Stream stream;
  const auto params = random<float>(n, 71), grads = random<float>(n, 72, -0.1f, 0.1f), m = random<float>(n, 73, -0.01f, 0.01f),
             v = random<float>(n, 74, 0.0f, 1e-3f);
  const gpu::AdamWStep step{3e-4f, 0.9f, 0.95f, 1e-8f, weight_decay, 7};
  std::vector<float> ref_p = params, ref_m = m, ref_v = v;
  cpu::adamw_update(ref_p.data(), grads.data(), ref_m.data(), ref_v.data(), n,
                    cpu::AdamWStep{step.lr, step.beta1, step.beta2, step.eps, step.weight_decay, step.t});
  Dev<float> d_p(params), d_g(grads), d_m(m), d_v(v);
  Dev<bf16> d_p16(n);
  d_p16.poison();
  gpu::adamw_update(d_p.get(), d_p16.get(), d_g.get(), d_m.get(), d_v.get(), n, step, stream);
  // The same fp32 operations in the same order, no contraction: bit for bit.
  expect_equal("adamw params", d_p.download(), ref_p);
  expect_equal("adamw m", d_m.download(), ref_m);
  expect_equal("adamw v", d_v.download(), ref_v);
  expect_equal("adamw bf16 copy", d_p16.download(), rounded<bf16>(ref_p));
  gpu::adamw_update(d_p.get(), nullptr, d_g.get(), d_m.get(), d_v.get(), n, step, stream);  // no copy: no crash
}

void check_grad_norm() {
  const std::size_t n = 1000003;  // 245 chunks of 4096, the last one short
  Stream stream;
  const auto x = random<float>(n, 81);
  const std::size_t chunks = gpu::grad_norm_chunk_count(n);
  REQUIRE(chunks == (n + 4095) / 4096);
  Dev<float> d_x(x);
  Dev<double> d_sums(chunks);
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    d_sums.poison();
    gpu::grad_norm_chunks(d_sums.get(), d_x.get(), n, stream);
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (run == 0) first_bits = d_sums.bits();
    else CHECK(d_sums.bits() == first_bits);
  }
  // Each chunk against the CPU's sum of that chunk: two double sums of 4096 terms in different
  // orders agree within 2·4096·2^-53 relatively.
  const auto doubles = [](const Dev<double>& d, std::size_t count) {
    std::vector<double> out(count);
    MINITX_CUDA_CHECK(cudaMemcpy(out.data(), d.get(), count * sizeof(double), cudaMemcpyDeviceToHost));
    return out;
  };
  const std::vector<double> sums = doubles(d_sums, chunks);
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t len = std::min<std::size_t>(4096, n - c * 4096);
    const double ref = cpu::sum_of_squares(x.data() + c * 4096, len);
    CHECK(std::fabs(sums[c] - ref) <= 2.0 * 4096.0 * 0x1p-53 * ref);
  }
  // A suffix starting on a chunk boundary (a shard) gives the whole vector's sums for its chunks.
  Dev<double> d_tail(chunks - 100);
  gpu::grad_norm_chunks(d_tail.get(), d_x.get() + 100 * 4096, n - 100 * 4096, stream);
  MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));
  const std::vector<double> tail = doubles(d_tail, chunks - 100);
  CHECK(std::memcmp(tail.data(), sums.data() + 100, tail.size() * sizeof(double)) == 0);
  // The tree's node and clipping's scale: one fp32 operation per element, as on the CPU.
  const auto y = random<float>(n, 82);
  Dev<float> d_y(y);
  gpu::add_in_place(d_x.get(), d_y.get(), n, stream);
  std::vector<float> ref_x = x;
  for (std::size_t i = 0; i < n; ++i) ref_x[i] += y[i];
  expect_equal("add_in_place", d_x.download(), ref_x);
  gpu::scale_in_place(d_x.get(), n, 3.0f, stream);
  cpu::scale_in_place(ref_x.data(), n, 3.0f);
  expect_equal("scale_in_place", d_x.download(), ref_x);
}

// ---- matmul --------------------------------------------------------------------------------------

std::vector<float> abs_of(std::vector<float> v) {
  for (auto& x : v) x = std::fabs(x);
  return v;
}

template <class T>
void check_matmul(std::size_t N, std::size_t C, std::size_t OC, bool with_bias) {
  INFO(type_name<T>() << " N=" << N << " C=" << C << " OC=" << OC << " bias=" << with_bias);
  Stream stream;
  gpu::LtMatmul lt;
  // doctest builds INFO messages only when a check fails: then they name the algorithms.
  const auto chosen = [&lt] {
    std::string text;
    for (const auto& line : lt.algorithms()) text += "\n  " + line;
    return text;
  };
  INFO("cuBLASLt algorithms chosen:" << chosen());
  const auto inp = random<T>(N * C, 91), weight = random<T>(OC * C, 92), bias = random<T>(OC, 93),
             dout = random<T>(N * OC, 94);
  const auto dweight0 = random<float>(OC * C, 96), dbias0 = random<float>(OC, 97);
  // fp32 accumulation on both sides: 2·γ_K·Σ|a||b| with γ_K = K·u32 (bf16 products are exact in
  // fp32; the factor 2 more allows for tensor cores' accumulation rounding), plus for a bf16
  // output its rounding u16·|y|.
  const double out_round = std::is_same_v<T, float> ? 0.0 : 1.0 / 256.0;
  const auto product_bound = [&](const std::vector<float>& magnitude, const std::vector<float>& expected,
                                 std::size_t K, double round) {
    return [&magnitude, &expected, K, round](std::size_t i) {
      return 4.0 * static_cast<double>(K + 2) * kU32 * magnitude[i] + round * std::fabs(expected[i]) + 1e-30;
    };
  };

  // Forward.
  std::vector<float> ref(N * OC), mag(N * OC);
  cpu::matmul_forward(ref.data(), inp.data(), weight.data(), with_bias ? bias.data() : nullptr, N, C, OC);
  const auto abs_bias = abs_of(bias);
  cpu::matmul_forward(mag.data(), abs_of(inp).data(), abs_of(weight).data(), with_bias ? abs_bias.data() : nullptr, N,
                      C, OC);
  Dev<T> d_inp(inp), d_weight(weight), d_bias(bias), d_out(N * OC), d_dout(dout);
  std::vector<std::uint8_t> first_bits;
  for (int run = 0; run < 2; ++run) {
    d_out.poison();
    gpu::matmul_forward(lt, d_out.get(), d_inp.get(), d_weight.get(), with_bias ? d_bias.get() : nullptr, N, C, OC,
                        stream);
    expect_within("matmul_forward", d_out.download(), ref, product_bound(mag, ref, C, out_round));
    if (run == 0) first_bits = d_out.bits();
    else CHECK(d_out.bits() == first_bits);
  }

  // Backward, accumulating (into random gradients) and overwriting (into NaN-poisoned ones).
  const auto abs_dout = abs_of(dout);
  for (const bool accumulate : {true, false}) {
    INFO("accumulate=" << accumulate);
    std::vector<float> ref_dinp(N * C, 0.0f);  // dinp is always overwritten
    std::vector<float> ref_dweight = accumulate ? dweight0 : std::vector<float>(OC * C, 0.0f);
    std::vector<float> ref_dbias = accumulate ? dbias0 : std::vector<float>(OC, 0.0f);
    cpu::matmul_backward(ref_dinp.data(), ref_dweight.data(), with_bias ? ref_dbias.data() : nullptr, dout.data(),
                         inp.data(), weight.data(), N, C, OC);
    // Magnitudes: the same products on absolute values, plus the starting gradient.
    std::vector<float> mag_dinp(N * C, 0.0f);
    std::vector<float> mag_dweight = accumulate ? abs_of(dweight0) : std::vector<float>(OC * C, 0.0f);
    std::vector<float> mag_dbias = accumulate ? abs_of(dbias0) : std::vector<float>(OC, 0.0f);
    cpu::matmul_backward(mag_dinp.data(), mag_dweight.data(), mag_dbias.data(), abs_dout.data(), abs_of(inp).data(),
                         abs_of(weight).data(), N, C, OC);
    Dev<float> scratch(gpu::matmul_backward_scratch_floats(N, C, OC));
    std::vector<std::uint8_t> first_grad_bits;
    for (int run = 0; run < 2; ++run) {
      Dev<T> d_dinp(N * C);
      Dev<float> d_dweight(dweight0), d_dbias(dbias0);
      d_dinp.poison();
      if (!accumulate) d_dweight.poison(), d_dbias.poison();
      gpu::matmul_backward(lt, d_dinp.get(), d_dweight.get(), with_bias ? d_dbias.get() : nullptr, scratch.get(),
                           d_dout.get(), d_inp.get(), d_weight.get(), N, C, OC, accumulate, stream);
      expect_within("matmul_backward dinp", d_dinp.download(), ref_dinp, product_bound(mag_dinp, ref_dinp, OC, out_round));
      expect_within("matmul_backward dweight", d_dweight.download(), ref_dweight,
                    product_bound(mag_dweight, ref_dweight, N, 0.0));
      if (with_bias)
        expect_within("matmul_backward dbias", d_dbias.download(), ref_dbias, product_bound(mag_dbias, ref_dbias, N, 0.0));
      auto bits = d_dinp.bits();
      const auto wbits = d_dweight.bits();
      bits.insert(bits.end(), wbits.begin(), wbits.end());
      if (run == 0) first_grad_bits = bits;
      else CHECK(bits == first_grad_bits);
    }
  }
  const auto algos = lt.algorithms();
  CHECK(algos.size() >= 3);  // forward, dinp, dweight shapes
  for (const auto& line : algos) {
    INFO(line);
    CHECK(line.find("algo=") != std::string::npos);
    CHECK(line.find("reduction=inplace") == std::string::npos);
    CHECK(line.find("splitk=1 reduction=none") != std::string::npos);
  }
}

}  // namespace

GPU_TEST_CASE("encoder forward and backward (learned positions with an offset, and none)") {
  SUBCASE("fp32") { check_encoder<float>(true), check_encoder<float>(false); }
  SUBCASE("bf16") { check_encoder<bf16>(true), check_encoder<bf16>(false); }
}

// Host code only: runs without a GPU too.
TEST_CASE("cuda: token_rows groups positions by token in increasing order") {
  const std::vector<std::uint32_t> ids = {4, 1, 4, 0, 4, 1};
  const auto r = gpu::token_rows(ids.data(), ids.size(), 6);
  CHECK(r.rows == std::vector<std::int32_t>{0, 1, 4});
  CHECK(r.offsets == std::vector<std::int32_t>{0, 1, 3, 6});
  CHECK(r.positions == std::vector<std::int32_t>{3, 1, 5, 0, 2, 4});
  const std::vector<std::uint32_t> bad = {7};
  CHECK_THROWS_AS(gpu::token_rows(bad.data(), 1, 6), minitx::Error);
}

GPU_TEST_CASE("layernorm forward and backward") {
  SUBCASE("fp32, C = 200") { check_layernorm<float>(111, 200); }
  SUBCASE("fp32, C = 45") { check_layernorm<float>(70, 45); }
  SUBCASE("bf16, C = 200") { check_layernorm<bf16>(111, 200); }
  SUBCASE("bf16, C = 45") { check_layernorm<bf16>(300, 45); }
  // The fused one-pass backward (rows of 16-byte packs, up to 4 per lane) over several slabs, and
  // rows too long for it (the column-sum path with packable rows).
  SUBCASE("bf16, C = 768, fused") { check_layernorm<bf16>(333, 768); }
  SUBCASE("fp32, C = 384, fused") { check_layernorm<float>(100, 384); }
  SUBCASE("bf16, C = 1536") { check_layernorm<bf16>(70, 1536); }
}

GPU_TEST_CASE("activations forward and backward (gelu-tanh, gelu-erf, relu)") {
  SUBCASE("fp32") {
    for (std::size_t n : {4099, 4096}) check_activation<float>(gpu::Activation::gelu_tanh, "gelu_tanh", n);
    for (std::size_t n : {4099, 4096}) check_activation<float>(gpu::Activation::gelu_erf, "gelu_erf", n);
    for (std::size_t n : {4099, 4096}) check_activation<float>(gpu::Activation::relu, "relu", n);
  }
  SUBCASE("bf16") {
    for (std::size_t n : {4099, 4096}) check_activation<bf16>(gpu::Activation::gelu_tanh, "gelu_tanh", n);
    for (std::size_t n : {4099, 4096}) check_activation<bf16>(gpu::Activation::gelu_erf, "gelu_erf", n);
    for (std::size_t n : {4099, 4096}) check_activation<bf16>(gpu::Activation::relu, "relu", n);
  }
}

GPU_TEST_CASE("residual forward and backward") {
  // 3001 elements take the scalar path, 4096 the 16-byte vector path.
  SUBCASE("fp32") { for (std::size_t n : {3001, 4096}) check_residual<float>(n); }
  SUBCASE("bf16") { for (std::size_t n : {3001, 4096}) check_residual<bf16>(n); }
}

GPU_TEST_CASE("rotary forward and backward (GPT-NeoX rotate-half)") {
  SUBCASE("fp32") { check_rotary<float>(16), check_rotary<float>(24); }
  SUBCASE("bf16") { check_rotary<bf16>(16), check_rotary<bf16>(24); }
}

GPU_TEST_CASE("softmax cross-entropy over a padded vocabulary") {
  SUBCASE("fp32") { for (std::size_t vp : {1040, 1003}) check_crossentropy<float>(vp); }
  SUBCASE("bf16") { for (std::size_t vp : {1040, 1003}) check_crossentropy<bf16>(vp); }
}

GPU_TEST_CASE("adamw matches the CPU bit for bit") {
  check_adamw(0.1f);
  check_adamw(0.0f);
}

GPU_TEST_CASE("the gradient norm's chunk sums, the tree's add and scaling") { check_grad_norm(); }

GPU_TEST_CASE("matmul forward and backward through cuBLASLt") {
  SUBCASE("fp32") {
    check_matmul<float>(111, 72, 200, true);
    check_matmul<float>(37, 77, 51, false);
  }
  SUBCASE("bf16") {
    check_matmul<bf16>(111, 72, 200, true);
    check_matmul<bf16>(37, 77, 51, true);
  }
  SUBCASE("many rows into few tiles: the weight gradient split over row chunks") {
    CHECK(gpu::weight_grad_splits(4096, 72, 40) == 8);  // 1 tile; chunks of 512 rows
    CHECK(gpu::weight_grad_splits(4100, 72, 40) == 4);  // 4100 = 4 · 1025, and 1025 is odd
    CHECK(gpu::weight_grad_splits(16384, 768, 3072) == 2);
    CHECK(gpu::weight_grad_splits(16384, 768, 50304) == 1);
    check_matmul<float>(4096, 72, 40, true);
    check_matmul<bf16>(4096, 72, 40, true);
  }
}

#endif  // MINITX_CUDA
