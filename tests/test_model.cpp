// The whole GPT: gradient against finite differences of the double reference, the forward
// against the reference, batch-size and thread-count independence.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "minitx/core/threads.h"
#include "helpers.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"
#include "minitx/model/params.h"
#include "decode_checks.h"
#include "test_ops_reference.h"

using namespace minitx;
using namespace minitx::test;

namespace {

ModelConfig tiny_config() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 8;
  m.n_head = 2;
  m.context = 6;
  m.vocab_size = 11;
  m.init_std = 0.3;  // large enough that attention and GELU are far from linear
  return m;
}

std::vector<std::uint32_t> tokens(std::size_t n, std::uint32_t vocab, std::uint64_t stream) {
  const CounterRng rng(5, stream);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

// Biases and norm parameters away from their 0/1 initial values, so their gradients are tested
// in general position.
void perturb(GptModel& model) {
  const CounterRng rng(9, 0);
  for (std::size_t i = 0; i < model.size(); ++i) model.storage[i] += 0.1f * rng.normal(i);
}

// The architectures the descriptor carries, in miniature: every option away from GPT-2's.
std::vector<std::pair<const char*, ModelConfig>> variants() {
  std::vector<std::pair<const char*, ModelConfig>> out;
  out.emplace_back("gpt2", tiny_config());
  ModelConfig pythia = tiny_config();
  pythia.position = ModelConfig::Position::rotary;
  pythia.rotary_fraction = 0.5;
  pythia.parallel_residual = true;
  pythia.activation = ModelConfig::Activation::gelu_erf;
  pythia.tied_head = false;
  out.emplace_back("neox-partial-rotary-parallel", pythia);
  ModelConfig neox = pythia;
  neox.rotary_fraction = 1.0;
  neox.rotary_base = 100.0;
  neox.parallel_residual = false;
  neox.ln_eps = 1e-3;
  out.emplace_back("neox-full-rotary-sequential", neox);
  ModelConfig opt = tiny_config();
  opt.activation = ModelConfig::Activation::relu;
  opt.position_offset = 2;
  opt.ffn = 12;
  out.emplace_back("opt", opt);
  ModelConfig bare = tiny_config();
  bare.bias = false;
  bare.tied_head = false;
  out.emplace_back("no-bias-untied", bare);
  return out;
}

// A longer context, so that the KV cache grows past its first allocation while decoding.
ModelConfig long_rotary() {
  ModelConfig m = tiny_config();
  m.position = ModelConfig::Position::rotary;
  m.context = 150;
  return m;
}

}  // namespace

TEST_CASE("GPT gradient matches finite differences of the double reference, every architecture") {
 for (const auto& [arch, m] : variants()) {
  CAPTURE(arch);
  GptModel model(m);
  init_params(model.data(), m, 3);
  perturb(model);
  const std::size_t B = 2, T = 5;
  const auto ids = tokens(B * T, 11, 1), targets = tokens(B * T, 11, 2);
  GptTrainer trainer(model, B, T);
  const double loss = trainer.forward(ids.data(), targets.data());
  std::vector<float> grads(model.size());
  trainer.backward(grads.data());
  const Vec w = to_double(model.storage);
  CHECK(loss == doctest::Approx(ref_gpt_loss(w, m, ids, targets, B, T)).epsilon(1e-5));
  const Vec numeric = numeric_grad([&](const Vec& v) { return ref_gpt_loss(v, m, ids, targets, B, T); }, w);
  check_close(grads, numeric, 1e-4, "whole-model gradient");
  // and tensor by tensor, so a wrong small tensor is not hidden by a large one
  std::size_t off = 0;
  for (const auto& t : param_tensors(m)) {
    CAPTURE(t.name);
    const std::size_t n = t.size(m.n_layer);
    check_close(std::vector<float>(grads.begin() + static_cast<std::ptrdiff_t>(off),
                                   grads.begin() + static_cast<std::ptrdiff_t>(off + n)),
                Vec(numeric.begin() + static_cast<std::ptrdiff_t>(off), numeric.begin() + static_cast<std::ptrdiff_t>(off + n)),
                1e-3, t.name);
    off += n;
  }
  CHECK(off == model.size());
 }
}

TEST_CASE("the decode step gives the forward's logits at every position, every architecture") {
  auto archs = variants();
  archs.emplace_back("rotary-context-150", long_rotary());
  for (const auto& [arch, m] : archs) {
    CAPTURE(arch);
    GptModel model(m);
    init_params(model.data(), m, 6);
    perturb(model);
    const std::size_t T = m.context;
    const auto ids = tokens(T, static_cast<std::uint32_t>(m.vocab_size), 3);
    const GptWeights w = weights_of(model);
    KvCache cache(m);
    StepBuffers buffers(m);
    check_steps_match_forward(w, cache, buffers, ids, forward_logits(w, ids));
    std::vector<float> step(m.vocab_size);
    CHECK_ERROR_CONTAINS(gpt_step(w, cache, buffers, ids[0], step.data()), "past the model's context");
    cache.length = 0;
    CHECK_ERROR_CONTAINS(gpt_step(w, cache, buffers, static_cast<std::uint32_t>(m.vocab_size), step.data()),
                         "outside the model's vocabulary");
  }
}

TEST_CASE("GPT forward rows do not depend on the batch or on later tokens") {
  ModelConfig m = tiny_config();
  m.n_embd = 32;
  m.n_head = 4;
  m.context = 80;
  m.vocab_size = 50;
  GptModel model(m);
  init_params(model.data(), m, 4);
  const std::size_t T = 80;
  const auto ids = tokens(3 * T, 50, 1);
  GptActivations all(m, 3, T, false), one(m, 1, T, false), prefix(m, 1, 70, false);
  gpt_forward(model, all, ids.data(), 3, T);
  gpt_forward(model, one, ids.data() + T, 1, T);
  gpt_forward(model, prefix, ids.data() + T, 1, 70);
  const std::size_t C = m.n_embd;
  CHECK(std::vector<float>(all.lnf + T * C, all.lnf + 2 * T * C) == std::vector<float>(one.lnf, one.lnf + T * C));
  CHECK(std::vector<float>(one.lnf, one.lnf + 70 * C) == std::vector<float>(prefix.lnf, prefix.lnf + 70 * C));
}

TEST_CASE("GPT training step is bit-identical for 1 and 2 threads") {
  ModelConfig m = tiny_config();
  m.n_embd = 48;
  m.n_head = 3;
  m.context = 70;
  m.vocab_size = 97;
  GptModel model(m);
  init_params(model.data(), m, 4);
  const std::size_t B = 3, T = 70;
  const auto ids = tokens(B * T, 97, 1), targets = tokens(B * T, 97, 2);
  auto run = [&](int threads) {
    set_thread_count(threads);
    GptTrainer trainer(model, B, T);
    const double loss = trainer.forward(ids.data(), targets.data());
    std::vector<float> grads(model.size());
    trainer.backward(grads.data());
    grads.push_back(static_cast<float>(loss));
    return grads;
  };
  const int saved = thread_count();
  const auto one = run(1), two = run(2);
  set_thread_count(saved);
  CHECK(one == two);
}
