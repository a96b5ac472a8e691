// Double-precision references for the CPU ops and a whole GPT, plus finite-difference helpers.
// Plain loops written for clarity, never for speed: they are what the float kernels are checked
// against.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <numbers>
#include <vector>

#include "minitx/core/rng.h"
#include "minitx/model/config.h"
#include "minitx/sparse/pattern.h"

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

inline Vec ref_layernorm(const Vec& x, const Vec& w, const Vec& b, std::size_t N, std::size_t C, double eps = 1e-5) {
  Vec out(N * C);
  for (std::size_t n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (std::size_t c = 0; c < C; ++c) m += x[n * C + c];
    m /= static_cast<double>(C);
    for (std::size_t c = 0; c < C; ++c) v += (x[n * C + c] - m) * (x[n * C + c] - m);
    const double s = 1.0 / std::sqrt(v / static_cast<double>(C) + eps);
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

// Causal attention; with a layout, only the keys its element mask allows (the diagonal always is).
inline Vec ref_attention(const Vec& qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH,
                         const minitx::sparse::BlockLayout* layout = nullptr) {
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
          if (layout != nullptr &&
              !layout->allowed(static_cast<std::int32_t>(h), static_cast<std::int32_t>(i), static_cast<std::int32_t>(j)))
            s[j] = -std::numeric_limits<double>::infinity();
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

inline double ref_gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::numbers::sqrt2)); }

// Rotary positions in double, from the definition: pairs (i, i + dims/2) of the first `dims`
// dimensions of each head of q and k rotate by pos · base^(-2i/dims).
inline void ref_rotary(Vec& qkv, std::size_t B, std::size_t T, std::size_t C, std::size_t NH, std::size_t dims,
                       double base) {
  const std::size_t hs = C / NH, half = dims / 2;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t part = 0; part < 2; ++part)
        for (std::size_t h = 0; h < NH; ++h) {
          double* x = &qkv[(b * T + t) * 3 * C + part * C + h * hs];
          for (std::size_t i = 0; i < half; ++i) {
            const double theta = static_cast<double>(t) * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dims));
            const double a = x[i], c = x[i + half];
            x[i] = a * std::cos(theta) - c * std::sin(theta);
            x[i + half] = c * std::cos(theta) + a * std::sin(theta);
          }
        }
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
// A whole GPT in double for any architecture of the descriptor, written from the definitions
// (not from the float code): params laid out as the tensor table (minitx/model/params.h) says.
// Mean cross-entropy of targets given ids over (B, T); `logits_out`, when given, receives the
// logits (B·T, V).
inline double ref_gpt_loss(const Vec& w, const ModelConfig& m, const std::vector<std::uint32_t>& ids,
                           const std::vector<std::uint32_t>& targets, std::size_t B, std::size_t T,
                           Vec* logits_out = nullptr) {
  const std::size_t L = m.n_layer, C = m.n_embd, V = m.vocab_size, F = m.ffn_width(), N = B * T;
  const bool learned = m.position == ModelConfig::Position::learned;
  std::size_t off = 0;
  auto take = [&](std::size_t n, bool present = true) {
    if (!present) return Vec();
    Vec out(w.begin() + static_cast<std::ptrdiff_t>(off), w.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
    return out;
  };
  const Vec wte = take(V * C), wpe = take((m.context + m.position_offset) * C, learned), ln1w = take(L * C),
            ln1b = take(L * C), qkvw = take(L * 3 * C * C), qkvb = take(L * 3 * C, m.bias), apw = take(L * C * C),
            apb = take(L * C, m.bias), ln2w = take(L * C), ln2b = take(L * C), fcw = take(L * F * C),
            fcb = take(L * F, m.bias), fpw = take(L * C * F), fpb = take(L * C, m.bias), lnfw = take(C), lnfb = take(C),
            head = take(V * C, !m.tied_head);
  auto slice = [](const Vec& v, std::size_t at, std::size_t n) {
    if (v.empty()) return Vec();
    return Vec(v.begin() + static_cast<std::ptrdiff_t>(at), v.begin() + static_cast<std::ptrdiff_t>(at + n));
  };
  const auto act = [&](double v) {
    switch (m.activation) {
      case ModelConfig::Activation::gelu_tanh: return ref_gelu(v);
      case ModelConfig::Activation::gelu_erf: return ref_gelu_erf(v);
      case ModelConfig::Activation::relu: return std::max(v, 0.0);
    }
    return v;
  };
  Vec x(N * C);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t c = 0; c < C; ++c)
      x[n * C + c] = wte[ids[n] * C + c] + (learned ? wpe[(n % T + m.position_offset) * C + c] : 0.0);
  for (std::size_t l = 0; l < L; ++l) {
    const Vec h = ref_layernorm(x, slice(ln1w, l * C, C), slice(ln1b, l * C, C), N, C, m.ln_eps);
    Vec qkv = ref_matmul(h, slice(qkvw, l * 3 * C * C, 3 * C * C), slice(qkvb, l * 3 * C, 3 * C), N, C, 3 * C);
    if (!learned) ref_rotary(qkv, B, T, C, m.n_head, m.rotary_dims(), m.rotary_base);
    const std::optional<minitx::sparse::BlockLayout> layout =
        m.attention.dense() ? std::nullopt
                            : std::optional(minitx::sparse::build_layout(m.attention, static_cast<std::int32_t>(T),
                                                                         static_cast<std::int32_t>(m.n_head), 64));
    const Vec a = ref_attention(qkv, B, T, C, m.n_head, layout ? &*layout : nullptr);
    const Vec p = ref_matmul(a, slice(apw, l * C * C, C * C), slice(apb, l * C, C), N, C, C);
    const Vec mlp_in = x;
    for (std::size_t i = 0; i < N * C; ++i) x[i] += p[i];
    const Vec h2 = ref_layernorm(m.parallel_residual ? mlp_in : x, slice(ln2w, l * C, C), slice(ln2b, l * C, C), N, C,
                                 m.ln_eps);
    Vec f = ref_matmul(h2, slice(fcw, l * F * C, F * C), slice(fcb, l * F, F), N, C, F);
    for (auto& v : f) v = act(v);
    const Vec q = ref_matmul(f, slice(fpw, l * C * F, C * F), slice(fpb, l * C, C), N, F, C);
    for (std::size_t i = 0; i < N * C; ++i) x[i] += q[i];
  }
  const Vec xf = ref_layernorm(x, lnfw, lnfb, N, C, m.ln_eps);
  const Vec logits = ref_matmul(xf, m.tied_head ? wte : head, {}, N, C, V);
  if (logits_out != nullptr) *logits_out = logits;
  double sum = 0;
  for (double loss : ref_crossentropy(logits, targets, N, V)) sum += loss;
  return sum / static_cast<double>(N);
}

}  // namespace minitx::test
