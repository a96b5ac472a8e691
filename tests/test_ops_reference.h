// Double-precision references for the CPU ops and a whole GPT, plus finite-difference helpers.
// Plain loops written for clarity, never for speed: they are what the float kernels are checked
// against.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <vector>

#include "minitx/core/rng.h"

namespace minitx::test {

using Vec = std::vector<double>;

inline std::vector<float> rand_floats(std::size_t n, std::uint64_t stream, float scale = 1.0f) {
  const minitx::CounterRng rng(11, stream);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = rng.normal(i) * scale;
  return out;
}
inline Vec to_double(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of f at x (double), h = 1e-6.
inline Vec numeric_grad(const std::function<double(const Vec&)>& f, Vec x) {
  Vec g(x.size());
  const double h = 1e-6;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// max |got - want| relative to max |want|: a float analytic gradient against a double numeric one.
inline void check_close(const std::vector<float>& got, const Vec& want, double tol, const char* what) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-12, worst = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  INFO(what << ": max abs error " << worst << " relative to " << scale);
  CHECK(worst / scale < tol);
}

inline Vec ref_layernorm(const Vec& x, const Vec& w, const Vec& b, std::size_t N, std::size_t C) {
  Vec out(N * C);
  for (std::size_t n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (std::size_t c = 0; c < C; ++c) m += x[n * C + c];
    m /= static_cast<double>(C);
    for (std::size_t c = 0; c < C; ++c) v += (x[n * C + c] - m) * (x[n * C + c] - m);
    const double s = 1.0 / std::sqrt(v / static_cast<double>(C) + 1e-5);
    for (std::size_t c = 0; c < C; ++c) out[n * C + c] = (x[n * C + c] - m) * s * w[c] + b[c];
  }
  return out;
}

inline Vec ref_matmul(const Vec& x, const Vec& w, const Vec& b, std::size_t N, std::size_t C, std::size_t OC) {
  Vec out(N * OC);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t o = 0; o < OC; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (std::size_t c = 0; c < C; ++c) s += x[n * C + c] * w[o * C + c];
      out[n * OC + o] = s;
    }
  return out;
}

inline Vec ref_attention(const Vec& qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH) {
  const std::size_t hs = C / NH;
  Vec out(B * T * C);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < NH; ++h)
      for (std::size_t i = 0; i < T; ++i) {
        const double* q = &qkv[(b * T + i) * 3 * C + h * hs];
        Vec s(i + 1);
        double mx = -1e300;
        for (std::size_t j = 0; j <= i; ++j) {
          const double* k = &qkv[(b * T + j) * 3 * C + C + h * hs];
          double d = 0;
          for (std::size_t e = 0; e < hs; ++e) d += q[e] * k[e];
          s[j] = d / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (auto& x : s) z += (x = std::exp(x - mx));
        for (std::size_t e = 0; e < hs; ++e) {
          double o = 0;
          for (std::size_t j = 0; j <= i; ++j) o += s[j] / z * qkv[(b * T + j) * 3 * C + 2 * C + h * hs + e];
          out[(b * T + i) * C + h * hs + e] = o;
        }
      }
  return out;
}

inline double ref_gelu(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

inline Vec ref_crossentropy(const Vec& logits, const std::vector<std::uint32_t>& t, std::size_t N, std::size_t V) {
  Vec out(N);
  for (std::size_t n = 0; n < N; ++n) {
    double mx = -1e300, z = 0;
    for (std::size_t v = 0; v < V; ++v) mx = std::max(mx, logits[n * V + v]);
    for (std::size_t v = 0; v < V; ++v) z += std::exp(logits[n * V + v] - mx);
    out[n] = std::log(z) + mx - logits[n * V + t[n]];
  }
  return out;
}

// A whole GPT in double: params laid out as in minitx/model/params.h. Mean cross-entropy of
// targets given ids over (B, T).
struct RefShape {
  std::size_t L, C, NH, V, context;
};

inline double ref_gpt_loss(const Vec& w, const RefShape& s, const std::vector<std::uint32_t>& ids,
                           const std::vector<std::uint32_t>& targets, std::size_t B, std::size_t T) {
  const std::size_t L = s.L, C = s.C, V = s.V, N = B * T;
  std::size_t off = 0;
  auto take = [&](std::size_t n) {
    Vec out(w.begin() + static_cast<std::ptrdiff_t>(off), w.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
    return out;
  };
  const Vec wte = take(V * C), wpe = take(s.context * C), ln1w = take(L * C), ln1b = take(L * C),
            qkvw = take(L * 3 * C * C), qkvb = take(L * 3 * C), apw = take(L * C * C), apb = take(L * C),
            ln2w = take(L * C), ln2b = take(L * C), fcw = take(L * 4 * C * C), fcb = take(L * 4 * C),
            fpw = take(L * 4 * C * C), fpb = take(L * C), lnfw = take(C), lnfb = take(C);
  auto slice = [](const Vec& v, std::size_t at, std::size_t n) {
    return Vec(v.begin() + static_cast<std::ptrdiff_t>(at), v.begin() + static_cast<std::ptrdiff_t>(at + n));
  };
  Vec x(N * C);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c) x[n * C + c] = wte[ids[n] * C + c] + wpe[(n % T) * C + c];
  for (std::size_t l = 0; l < L; ++l) {
    const Vec h = ref_layernorm(x, slice(ln1w, l * C, C), slice(ln1b, l * C, C), N, C);
    const Vec qkv = ref_matmul(h, slice(qkvw, l * 3 * C * C, 3 * C * C), slice(qkvb, l * 3 * C, 3 * C), N, C, 3 * C);
    const Vec a = ref_attention(qkv, B, T, C, s.NH);
    const Vec p = ref_matmul(a, slice(apw, l * C * C, C * C), slice(apb, l * C, C), N, C, C);
    for (std::size_t i = 0; i < N * C; ++i) x[i] += p[i];
    const Vec h2 = ref_layernorm(x, slice(ln2w, l * C, C), slice(ln2b, l * C, C), N, C);
    Vec f = ref_matmul(h2, slice(fcw, l * 4 * C * C, 4 * C * C), slice(fcb, l * 4 * C, 4 * C), N, C, 4 * C);
    for (auto& v : f) v = ref_gelu(v);
    const Vec q = ref_matmul(f, slice(fpw, l * 4 * C * C, 4 * C * C), slice(fpb, l * C, C), N, 4 * C, C);
    for (std::size_t i = 0; i < N * C; ++i) x[i] += q[i];
  }
  const Vec xf = ref_layernorm(x, lnfw, lnfb, N, C);
  const Vec logits = ref_matmul(xf, wte, {}, N, C, V);
  double sum = 0;
  for (double loss : ref_crossentropy(logits, targets, N, V)) sum += loss;
  return sum / static_cast<double>(N);
}

}  // namespace minitx::test
