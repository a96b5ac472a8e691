// The CPU oracle of block-sparse attention: with the dense-causal layout it is the existing
// causal attention (forward and backward), and its backward is the derivative of its forward
// (central differences) on a layout with global tokens.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/sparse/attention_ref.h"
#include "minitx/sparse/layout.h"
#include "test_ops_reference.h"

namespace sp = minitx::sparse;

TEST_CASE("attention_ref with the dense-causal layout equals cpu::attention_forward/backward") {
  const std::size_t B = 2, T = 37, H = 3, D = 8, C = H * D;
  const auto qkv = minitx::test::rand_floats(B * T * 3 * C, 1), dout = minitx::test::rand_floats(B * T * C, 2);
  const auto layout = sp::dense_causal(static_cast<std::int32_t>(T), 16);
  std::vector<float> want(B * T * C), att(B * H * T * T), got(B * T * C), lse(B * H * T);
  minitx::cpu::attention_forward(want.data(), att.data(), qkv.data(), B, T, C, H);
  sp::attention_ref_forward(got.data(), lse.data(), qkv.data(), layout, B, T, C, H);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1));
  std::vector<float> dwant(B * T * 3 * C, 0.0f), datt(att.size()), dgot(B * T * 3 * C);
  minitx::cpu::attention_backward(dwant.data(), datt.data(), dout.data(), qkv.data(), att.data(), B, T, C, H);
  sp::attention_ref_backward(dgot.data(), dout.data(), qkv.data(), layout, B, T, C, H);
  for (std::size_t i = 0; i < dgot.size(); ++i) CHECK(dgot[i] == doctest::Approx(dwant[i]).epsilon(1e-4).scale(1));
  // lse: the first row attends only itself, so lse = scale·q·k.
  double s = 0;
  for (std::size_t d = 0; d < D; ++d) s += static_cast<double>(qkv[d]) * qkv[C + d];
  CHECK(lse[0] == doctest::Approx(s / std::sqrt(static_cast<double>(D))).epsilon(1e-6));
}

TEST_CASE("attention_ref backward matches finite differences on a sparse layout") {
  const std::size_t B = 1, T = 40, H = 2, D = 4, C = H * D;
  auto qkv = minitx::test::rand_floats(B * T * 3 * C, 3);
  const auto dout = minitx::test::rand_floats(B * T * C, 4);
  const auto layout = sp::longformer(static_cast<std::int32_t>(T), 16, 1, {3, 20});
  std::vector<float> dq(qkv.size()), out(B * T * C);
  sp::attention_ref_backward(dq.data(), dout.data(), qkv.data(), layout, B, T, C, H);
  auto objective = [&]() {
    sp::attention_ref_forward(out.data(), nullptr, qkv.data(), layout, B, T, C, H);
    double sum = 0;
    for (std::size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(out[i]) * dout[i];
    return sum;
  };
  for (std::size_t i = 0; i < qkv.size(); i += 7) {
    const float x = qkv[i], h = 1e-2f;
    qkv[i] = x + h;
    const double up = objective();
    qkv[i] = x - h;
    const double down = objective();
    qkv[i] = x;
    CHECK(dq[i] == doctest::Approx((up - down) / (2.0 * h)).epsilon(1e-2).scale(1));
  }
}
