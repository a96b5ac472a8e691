// Every CPU op against a plain double-precision reference: the forward values, and the backward
// against central finite differences of the reference (so the check itself has no float noise).
// Each backward is exercised through a scalar objective L = Σ out ⊙ R with random R.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"
#include "test_ops_reference.h"

namespace cpu = minitx::cpu;
using minitx::test::Vec;
using namespace minitx::test;

TEST_CASE("encoder forward and backward") {
  const std::size_t N = 6, T = 3, C = 5, V = 4;
  const std::vector<std::uint32_t> ids = {1, 3, 1, 0, 1, 2};
  const auto wte = rand_floats(V * C, 1), wpe = rand_floats(T * C, 2), dout = rand_floats(N * C, 3);
  std::vector<float> out(N * C);
  cpu::encoder_forward(out.data(), ids.data(), wte.data(), wpe.data(), N, T, C);
  CHECK(out[4 * C + 2] == wte[1 * C + 2] + wpe[1 * C + 2]);
  std::vector<float> dwte(V * C, 0.0f), dwpe(T * C, 0.0f);
  cpu::encoder_backward(dwte.data(), dwpe.data(), dout.data(), ids.data(), N, T, C);
  // token 1 appears at rows 0, 2, 4; position 1 at rows 1, 4
  CHECK(dwte[1 * C] == (dout[0] + dout[2 * C]) + dout[4 * C]);
  CHECK(dwpe[1 * C + 3] == dout[1 * C + 3] + dout[4 * C + 3]);
  CHECK(dwte[0 * C + 1] == dout[3 * C + 1]);
}

TEST_CASE("layernorm backward matches finite differences") {
  const std::size_t N = 4, C = 10;
  auto x = rand_floats(N * C, 1), w = rand_floats(C, 2), b = rand_floats(C, 3), r = rand_floats(N * C, 4);
  for (auto& v : w) v += 1.0f;
  std::vector<float> out(N * C), mean(N), rstd(N);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  check_close(out, ref_layernorm(to_double(x), to_double(w), to_double(b), N, C), 1e-5, "forward");
  std::vector<float> dx(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  cpu::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  const Vec R = to_double(r), X = to_double(x), W = to_double(w), Bv = to_double(b);
  check_close(dx, numeric_grad([&](const Vec& v) { return dot(ref_layernorm(v, W, Bv, N, C), R); }, X), 1e-4, "dinp");
  check_close(dw, numeric_grad([&](const Vec& v) { return dot(ref_layernorm(X, v, Bv, N, C), R); }, W), 1e-4, "dweight");
  check_close(db, numeric_grad([&](const Vec& v) { return dot(ref_layernorm(X, W, v, N, C), R); }, Bv), 1e-4, "dbias");
}

TEST_CASE("matmul backward matches finite differences") {
  const std::size_t N = 7, C = 9, OC = 20;
  const auto x = rand_floats(N * C, 1), w = rand_floats(OC * C, 2), b = rand_floats(OC, 3), r = rand_floats(N * OC, 4);
  std::vector<float> out(N * OC);
  cpu::matmul_forward(out.data(), x.data(), w.data(), b.data(), N, C, OC);
  const Vec X = to_double(x), W = to_double(w), Bv = to_double(b), R = to_double(r);
  check_close(out, ref_matmul(X, W, Bv, N, C, OC), 1e-6, "forward");
  std::vector<float> dx(N * C, 0.0f), dw(OC * C, 0.0f), db(OC, 0.0f);
  cpu::matmul_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), N, C, OC);
  check_close(dx, numeric_grad([&](const Vec& v) { return dot(ref_matmul(v, W, Bv, N, C, OC), R); }, X), 1e-5, "dinp");
  check_close(dw, numeric_grad([&](const Vec& v) { return dot(ref_matmul(X, v, Bv, N, C, OC), R); }, W), 1e-5, "dweight");
  check_close(db, numeric_grad([&](const Vec& v) { return dot(ref_matmul(X, W, v, N, C, OC), R); }, Bv), 1e-5, "dbias");
}

TEST_CASE("attention backward matches finite differences, across query blocks") {
  // T = 70 crosses the 64-row query block; the numeric gradient is taken on a subset of inputs.
  for (const std::size_t T : {std::size_t{5}, std::size_t{70}}) {
    const std::size_t B = 2, C = 8, NH = 2;
    const auto qkv = rand_floats(B * T * 3 * C, 1), r = rand_floats(B * T * C, 2);
    std::vector<float> out(B * T * C), att(B * NH * T * T), datt(att.size()), dqkv(qkv.size(), 0.0f);
    cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    const Vec Q = to_double(qkv), R = to_double(r);
    check_close(out, ref_attention(Q, B, T, C, NH), 1e-5, "forward");
    cpu::attention_backward(dqkv.data(), datt.data(), r.data(), qkv.data(), att.data(), B, T, C, NH);
    const auto f = [&](const Vec& v) { return dot(ref_attention(v, B, T, C, NH), R); };
    if (T <= 8) {
      check_close(dqkv, numeric_grad(f, Q), 1e-4, "dinp");
    } else {
      // a strided sample of inputs, including ones in the second query block
      Vec x = Q;
      double worst = 0, scale = 1e-12;
      for (std::size_t i = 0; i < x.size(); i += 97) {
        const double keep = x[i], h = 1e-6;
        x[i] = keep + h;
        const double up = f(x);
        x[i] = keep - h;
        const double down = f(x);
        x[i] = keep;
        const double want = (up - down) / (2 * h);
        scale = std::max(scale, std::abs(want));
        worst = std::max(worst, std::abs(want - dqkv[i]));
      }
      CHECK(worst / scale < 1e-4);
    }
  }
}

TEST_CASE("gelu forward and backward") {
  const std::size_t n = 4100;  // crosses a chunk and a vector tail
  auto x = rand_floats(n, 1, 3.0f);
  x[0] = 0.0f;
  x[1] = -30.0f;
  x[2] = 30.0f;
  const auto r = rand_floats(n, 2);
  std::vector<float> out(n), dx(n, 0.0f);
  cpu::gelu_forward(out.data(), x.data(), n);
  cpu::gelu_backward(dx.data(), x.data(), r.data(), n);
  double worst_f = 0, worst_b = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double xi = x[i], h = 1e-6;
    worst_f = std::max(worst_f, std::abs(out[i] - ref_gelu(xi)));
    const double g = (ref_gelu(xi + h) - ref_gelu(xi - h)) / (2 * h) * r[i];
    worst_b = std::max(worst_b, std::abs(dx[i] - g));
  }
  CHECK(worst_f < 1e-5);
  CHECK(worst_b < 1e-5);
}

TEST_CASE("residual") {
  std::vector<float> a = {1, 2}, b = {3, 4}, out(2), da = {1, 1}, db = {0, 0}, d = {5, 6};
  cpu::residual_forward(out.data(), a.data(), b.data(), 2);
  CHECK(out == std::vector<float>{4, 6});
  cpu::residual_backward(da.data(), db.data(), d.data(), 2);
  CHECK(da == std::vector<float>{6, 7});
  CHECK(db == std::vector<float>{5, 6});
}

TEST_CASE("softmax cross-entropy forward and backward") {
  const std::size_t N = 5, V = 37;
  auto logits = rand_floats(N * V, 1, 3.0f);
  const std::vector<std::uint32_t> t = {0, 36, 5, 5, 17};
  const Vec L = to_double(logits);
  std::vector<float> losses(N), losses2(N);
  cpu::crossentropy_forward(losses.data(), logits.data(), t.data(), N, V);
  check_close(losses, ref_crossentropy(L, t, N, V), 1e-6, "loss");
  const float scale = 0.25f;
  cpu::crossentropy_forward_backward(losses2.data(), logits.data(), t.data(), N, V, scale);
  CHECK(losses2 == losses);
  const auto f = [&](const Vec& v) {
    double s = 0;
    for (double l : ref_crossentropy(v, t, N, V)) s += l;
    return s * scale;
  };
  check_close(logits, numeric_grad(f, L), 1e-5, "dlogits");
}

TEST_CASE("adamw matches the formula") {
  std::vector<float> p = {1.0f, -2.0f}, g = {0.5f, 0.25f}, m = {0.1f, 0.0f}, v = {0.01f, 0.0f};
  const cpu::AdamWStep s{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 3};
  cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), 2, s);
  const double m0 = 0.9 * 0.1 + 0.1 * 0.5, v0 = 0.95 * 0.01 + 0.05 * 0.25;
  const double mh = m0 / (1 - std::pow(0.9, 3)), vh = v0 / (1 - std::pow(0.95, 3));
  CHECK(p[0] == doctest::Approx(1.0 - 0.01 * (mh / (std::sqrt(vh) + 1e-8) + 0.1)).epsilon(1e-6));
  CHECK(m[0] == doctest::Approx(m0).epsilon(1e-6));
  CHECK(v[0] == doctest::Approx(v0).epsilon(1e-6));
}

TEST_CASE("ops are bit-identical for 1 and 2 threads") {
  const std::size_t B = 2, T = 70, C = 16, NH = 2, N = B * T, V = 50;
  const auto qkv = rand_floats(N * 3 * C, 1), r = rand_floats(N * C, 2), x = rand_floats(N * C, 3);
  const auto w = rand_floats(C, 4), b = rand_floats(C, 5), big = rand_floats(N * V, 6);
  std::vector<std::uint32_t> t(N);
  for (std::size_t i = 0; i < N; ++i) t[i] = static_cast<std::uint32_t>(i % V);
  auto run = [&](int threads) {
    minitx::set_thread_count(threads);
    std::vector<float> all;
    std::vector<float> out(N * C), att(B * NH * T * T), datt(att.size()), dqkv(qkv.size(), 0.0f);
    cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    cpu::attention_backward(dqkv.data(), datt.data(), r.data(), qkv.data(), att.data(), B, T, C, NH);
    std::vector<float> ln(N * C), mean(N), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
    cpu::layernorm_forward(ln.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    cpu::layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
    std::vector<float> logits = big, losses(N);
    cpu::crossentropy_forward_backward(losses.data(), logits.data(), t.data(), N, V, 0.01f);
    for (const auto* v : {&out, &att, &dqkv, &ln, &dx, &dw, &db, &logits, &losses}) all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  const int saved = minitx::thread_count();
  const auto one = run(1), two = run(2);
  minitx::set_thread_count(saved);
  CHECK(one == two);
}
