#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "minitx/core/threads.h"
#include "minitx/quant/dot.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/matmul.h"
#include "minitx/quant/quantize.h"
#include "quant_samples.h"

using namespace minitx::quant;
using namespace minitx::quant::testing;

namespace {

std::vector<float> values(std::size_t n, std::uint64_t seed, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * gaussian(seed, i);
  return v;
}

std::vector<float> run(const QMatrix& w, const std::vector<float>& inp, const float* bias, std::size_t T, int threads) {
  minitx::set_thread_count(threads);
  std::vector<float> out(T * w.rows, std::nanf(""));
  matmul(out.data(), inp.data(), w, bias, T);
  minitx::set_thread_count(0);
  return out;
}

float row_dot(const QMatrix& w, std::size_t o, const Q8Row& x) {
  const std::byte* row = w.row(o);
  if (w.format == Format::q8_0) {
    const auto* r = reinterpret_cast<const block_q8_0*>(row);
    return vec_dot_q8_0_q8_0(w.cols, r, x);
  }
  const auto* r = reinterpret_cast<const block_q4_0*>(row);
  return vec_dot_q4_0_q8_0(w.cols, r, x);
}

}  // namespace

TEST_CASE("quant matmul: every output is the row's dot product, for any thread count") {
  const std::size_t OC = 67, C = 288, T = 5;  // uneven thread chunks; 9 blocks: a group of 8 and a tail
  const std::vector<float> weights = values(OC * C, 31, 0.05f), inp = values(T * C, 32, 1.0f), bias = values(OC, 33, 0.1f);
  for (Format format : {Format::f32, Format::q8_0, Format::q4_0}) {
    CAPTURE(format_name(format));
    const QTensor w = quantize_tensor("w", {OC, C}, weights, format);
    const QMatrix m = w.matrix();
    const std::vector<float> one = run(m, inp, bias.data(), T, 1);
    for (int threads : {2, 3, 8}) CHECK(run(m, inp, bias.data(), T, threads) == one);
    // Several rows at once equal one row at a time.
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<float> y(OC);
      const std::vector<float> x(inp.begin() + static_cast<std::ptrdiff_t>(t * C), inp.begin() + static_cast<std::ptrdiff_t>((t + 1) * C));
      matvec(y.data(), m, x.data(), bias.data());
      for (std::size_t o = 0; o < OC; ++o) REQUIRE(y[o] == one[t * OC + o]);
    }
    if (format == Format::f32) {
      for (std::size_t o = 0; o < OC; ++o)
        REQUIRE(one[o] == vec_dot_f32(C, weights.data() + o * C, inp.data()) + bias[o]);
      continue;
    }
    Q8Activations xq;
    xq.quantize(inp.data(), T, C);
    std::vector<float> again(T * OC);
    matmul_q8(again.data(), xq, m, bias.data());
    CHECK(again == one);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t o = 0; o < OC; ++o) {
        const Q8Row x = xq.row(t);
        // The dispatched kernel, bit for bit (test_quant_formats compares it with the reference).
        REQUIRE(one[t * OC + o] == row_dot(m, o, x) + bias[o]);
      }
  }
}

TEST_CASE("quant matmul: quantized products stay within the bound that the half-step errors give") {
  // With w~ = w + ew and x~ = x + ex, |w~.x~ - w.x| <= Σ |ew||x| + |w||ex| + |ew||ex|, and each
  // |ew_i| <= hw = |dw| (0.5 + 2^-16), |ex_i| <= hx likewise (test_quant_formats). The kernel's
  // fp32 sum adds at most (9/8 n_blocks + 17) u Σ|w~||x~| of rounding (test_quant_formats), u = 2^-24.
  const std::size_t OC = 40, C = 256;
  const std::vector<float> weights = values(OC * C, 41, 0.05f), x = values(C, 42, 1.0f);
  std::vector<block_q8_0> xq(C / QK);
  quantize_row_q8_0_ref(x.data(), xq.data(), C);
  for (Format format : {Format::q8_0, Format::q4_0}) {
    CAPTURE(format_name(format));
    const QTensor w = quantize_tensor("w", {OC, C}, weights, format);
    std::vector<float> y(OC);
    matvec(y.data(), w.matrix(), x.data());
    for (std::size_t o = 0; o < OC; ++o) {
      double exact = 0.0, bound = 0.0, magnitude = 0.0;
      for (std::size_t i = 0; i < C; ++i) {
        const std::byte* block = w.matrix().row(o) + (i / QK) * format_info(format).block_bytes;
        std::uint16_t dw;
        std::memcpy(&dw, block, sizeof dw);
        const double hw = std::fabs(fp16_to_fp32(dw)) * (0.5 + 0x1p-16);
        const double hx = std::fabs(fp16_to_fp32(xq[i / QK].d)) * (0.5 + 0x1p-16);
        const double wi = weights[o * C + i], xi = x[i];
        exact += wi * xi;
        bound += hw * std::fabs(xi) + std::fabs(wi) * hx + hw * hx;
        magnitude += (std::fabs(wi) + hw) * (std::fabs(xi) + hx);
      }
      bound += (1.125 * static_cast<double>(C / QK) + 17.0) * 0x1p-24 * magnitude;
      CAPTURE(o);
      REQUIRE(std::fabs(y[o] - exact) <= bound);
    }
  }
}

TEST_CASE("quant matmul: a slice of a stacked tensor is that layer's matrix") {
  const std::size_t L = 3, OC = 8, C = 64;
  const std::vector<float> weights = values(L * OC * C, 61, 0.1f), x = values(C, 62, 1.0f);
  const QTensor stacked = quantize_tensor("fcw", {L, OC, C}, weights, Format::q4_0);
  for (std::size_t l = 0; l < L; ++l) {
    const std::vector<float> layer(weights.begin() + static_cast<std::ptrdiff_t>(l * OC * C),
                                   weights.begin() + static_cast<std::ptrdiff_t>((l + 1) * OC * C));
    const QTensor alone = quantize_tensor("w", {OC, C}, layer, Format::q4_0);
    std::vector<float> a(OC), b(OC);
    matvec(a.data(), stacked.slice(l), x.data());
    matvec(b.data(), alone.matrix(), x.data());
    CHECK(a == b);
  }
  CHECK_THROWS_WITH(stacked.slice(3), doctest::Contains("fcw: slice 3 of 3"));
  const QTensor flat = quantize_tensor("w", {OC, C}, std::vector<float>(OC * C, 0.5f), Format::q8_0);
  CHECK_THROWS_WITH(flat.slice(0), doctest::Contains("rank 3 or more"));
}

TEST_CASE("quant matmul: unsupported combinations are errors naming the op") {
  const QTensor w = quantize_tensor("w", {4, 32}, std::vector<float>(128, 1.0f), Format::f32);
  Q8Activations x;
  x.quantize(std::vector<float>(32, 1.0f).data(), 1, 32);
  std::vector<float> y(4);
  CHECK_THROWS_WITH(matmul_q8(y.data(), x, w.matrix(), nullptr), doctest::Contains("matmul_q8: weights in format f32"));
  QMatrix bad = w.matrix();
  bad.format = Format::q8_0;
  bad.cols = 30;
  CHECK_THROWS_WITH(matmul(y.data(), std::vector<float>(30).data(), bad, nullptr, 1), doctest::Contains("multiple of 32"));
}

TEST_CASE("quant matmul: quantized tensors do not depend on the thread count") {
  const std::vector<float> weights = values(37 * 64, 71, 0.2f);
  for (Format format : {Format::q8_0, Format::q4_0}) {
    minitx::set_thread_count(1);
    const QTensor one = quantize_tensor("w", {37, 64}, weights, format);
    minitx::set_thread_count(3);
    const QTensor three = quantize_tensor("w", {37, 64}, weights, format);
    minitx::set_thread_count(0);
    CHECK(one.data == three.data);
  }
}
