// Generation: logits with and without the KV cache agree at every step, both modes pick the
// same tokens, the context policy, sampling, and batch-size independent evaluation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "helpers.h"
#include "minitx/core/rng.h"
#include "minitx/infer/decoder.h"
#include "minitx/infer/generate.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/params.h"

using namespace minitx;

namespace {

ModelConfig gen_config() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 64;
  m.n_head = 4;
  m.context = 80;  // crosses the 64-row attention block
  m.vocab_size = 101;
  m.init_std = 0.1;
  return m;
}

std::vector<std::uint32_t> random_ids(std::size_t n, std::uint32_t vocab) {
  const CounterRng rng(2, 0);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

// The draw that sampling.h documents for token `index` (no top-k, no top-p), written here from
// its text alone: the candidates by decreasing logit with ties by id, integer weights
// round(2^39 · exp((l - max)/T)) (from std::exp, not sampling_math.h's exp: the two may round a
// weight one unit of 2^-39 apart, and a draw would have to land in that unit to differ),
// u = (b + 1/2) / 2^24 from the top 24 bits b of Philox (seed, the "sample" stream, index), and
// the first token whose cumulative weight exceeds u · total, in exact 128-bit arithmetic.
std::uint32_t reference_draw(const std::vector<float>& logits, double temperature, std::uint64_t seed, std::uint64_t index) {
  __extension__ typedef unsigned __int128 u128;
  constexpr std::uint64_t kSampleStream = 0x73616d706c65;  // "sample" in ASCII
  std::vector<std::pair<float, std::uint32_t>> order;
  for (std::uint32_t id = 0; id < logits.size(); ++id) order.emplace_back(logits[id], id);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<std::uint64_t> cumulative;
  std::uint64_t total = 0;
  for (const auto& entry : order)
    cumulative.push_back(total += static_cast<std::uint64_t>(
                             std::nearbyint(std::ldexp(std::exp((static_cast<double>(entry.first) - order[0].first) / temperature), 39))));
  const std::uint64_t bits = CounterRng(seed, kSampleStream).block(index)[0] >> 8;  // u = (bits + 1/2) / 2^24
  const auto point = static_cast<std::uint64_t>((static_cast<u128>(2 * bits + 1) * total) >> 25);
  for (std::size_t k = 0; k < order.size(); ++k)
    if (point < cumulative[k]) return order[k].second;
  return order.back().second;
}

}  // namespace

TEST_CASE("logits with and without the KV cache agree to 1e-5 relative at every position") {
  const ModelConfig m = gen_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const auto ids = random_ids(m.context, 101);
  Decoder cached(model), plain(model);
  double worst = 0;
  std::vector<float> with = cached.prefill(ids.data(), 3);
  for (std::size_t n = 3; n <= m.context; ++n) {
    if (n > 3) with = cached.step(ids[n - 1]);
    const std::vector<float>& without = plain.logits_recompute(ids.data(), n);
    double scale = 0, diff = 0;
    for (std::size_t v = 0; v < with.size(); ++v) {
      scale = std::max(scale, std::abs(static_cast<double>(without[v])));
      diff = std::max(diff, std::abs(static_cast<double>(with[v]) - without[v]));
    }
    worst = std::max(worst, diff / scale);
  }
  INFO("worst relative difference " << worst);
  CHECK(worst < 1e-5);
  CHECK(cached.length() == m.context);
  CHECK_ERROR_CONTAINS(cached.step(1), "does not fit the model's context");
}

TEST_CASE("generation: both modes produce the same tokens and stop at the context") {
  const ModelConfig m = gen_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const std::vector<std::uint32_t> prompt = {5, 6, 7};
  GenerateOptions options;
  options.max_new = 1000;
  options.sampling = {0.8, 20, 0.95, 42};
  const GenerateResult cached = generate(model, prompt, options);
  options.use_cache = false;
  const GenerateResult plain = generate(model, prompt, options);
  CHECK(cached.tokens == plain.tokens);
  CHECK(cached.tokens.size() == m.context - prompt.size() + 1);
  CHECK(cached.hit_context);
  options.max_new = 5;
  CHECK_FALSE(generate(model, prompt, options).hit_context);
  CHECK_ERROR_CONTAINS(generate(model, random_ids(81, 101), options), "more than the model's context");
  CHECK_ERROR_CONTAINS(generate(model, {}, options), "empty");
  CHECK_ERROR_CONTAINS(generate(model, {101}, options), "outside the vocabulary");
}

TEST_CASE("generation: the sliding window goes past the context, the same in both modes") {
  const ModelConfig m = gen_config();  // context 80: the window jumps to the last 40 tokens
  GptModel model(m);
  init_params(model.data(), m, 1);
  const std::vector<std::uint32_t> prompt = {5, 6, 7};
  GenerateOptions options;
  options.max_new = 200;
  options.sampling = {0.8, 20, 0.95, 42};
  options.policy = ContextPolicy::slide;
  const GenerateResult cached = generate(model, prompt, options);
  options.use_cache = false;
  const GenerateResult plain = generate(model, prompt, options);
  CHECK(cached.tokens.size() == 200);
  CHECK(cached.tokens == plain.tokens);
  CHECK_FALSE(cached.hit_context);
  // The sequence reaches 81 tokens at step 78, then 40 + 41 tokens at steps 119 and 160.
  CHECK(cached.shifts == 3);
  CHECK(plain.shifts == 3);
  // Up to the first jump, sliding is the stop policy: the same first 78 tokens.
  options.use_cache = true;
  options.policy = ContextPolicy::stop;
  const GenerateResult stopped = generate(model, prompt, options);
  REQUIRE(stopped.tokens.size() == 78);
  CHECK(std::vector<std::uint32_t>(cached.tokens.begin(), cached.tokens.begin() + 78) == stopped.tokens);
  CHECK(stopped.shifts == 0);
  // After the last jump the model sees only the window: the last 41 tokens before step 160,
  // at positions 0 … 40 (checked against a fresh decoder on exactly those tokens).
  std::vector<std::uint32_t> sequence = prompt;
  sequence.insert(sequence.end(), cached.tokens.begin(), cached.tokens.end());
  const std::size_t len = prompt.size() + 160;  // the sequence's length at step 160
  Decoder fresh(model);
  const auto& logits = fresh.prefill(sequence.data() + len - 40, 40);
  CHECK(sample_token(logits, {0.8, 20, 0.95, 42}, 160) == cached.tokens[160]);
}

TEST_CASE("context policy names: stop and slide, anything else is an error") {
  CHECK(parse_context_policy("stop", "x") == ContextPolicy::stop);
  CHECK(parse_context_policy("slide", "x") == ContextPolicy::slide);
  CHECK_ERROR_CONTAINS(parse_context_policy("wrap", "--context-policy"),
                       "--context-policy: expected stop or slide, got 'wrap'");
}

TEST_CASE("packed weights give the plain view's bits; the head is packed only when asked") {
  const ModelConfig m = gen_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const GptWeights plain = weights_of(model);
  const GptWeights layers = with_packed_matrices(plain, PackHead::no);
  const GptWeights all = with_packed_matrices(plain, PackHead::yes);
  CHECK(plain.layers[0].qkvw.packed == nullptr);
  CHECK(layers.layers[1].fcprojw.packed != nullptr);
  CHECK(layers.head.packed == nullptr);
  CHECK(all.head.packed != nullptr);
  CHECK(all.wte.packed == nullptr);  // the lookup reads rows; only the head's products need panels
  CHECK(with_packed_matrices(all, PackHead::yes).packed_storage == all.packed_storage);  // packed once
  const std::size_t B = 2, T = 70, N = B * T;
  const auto ids = random_ids(N, 101);
  const auto run = [&](const GptWeights& w) {
    GptActivations acts(m, B, T, false);
    gpt_forward(w, acts, ids.data(), B, T);
    std::vector<float> logits(N * m.vocab_size);
    gpt_logits(w, logits.data(), acts.lnf, N);
    return logits;
  };
  const auto want = run(plain);
  CHECK(run(layers) == want);
  CHECK(run(all) == want);
}

TEST_CASE("sampling: greedy, top-k 1, and reproducible draws") {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f};
  CHECK(sample_token(logits, {0.0, 0, 1.0, 1}, 0) == 1);
  CHECK(sample_token(logits, {1.0, 1, 1.0, 1}, 7) == 1);
  CHECK(sample_token(logits, {1.0, 0, 0.01, 1}, 3) == 1);
  int counts[5] = {};
  for (std::uint64_t i = 0; i < 2000; ++i) ++counts[sample_token(logits, {1.0, 2, 1.0, 9}, i)];
  CHECK(counts[0] + counts[2] + counts[4] == 0);
  CHECK(counts[1] > 800);
  CHECK(counts[3] > 800);
  // Every draw is the one sampling.h documents, computed here independently.
  std::size_t differ = 0;
  for (double temperature : {1.0, 0.7})
    for (std::uint64_t i = 0; i < 200; ++i) {
      CAPTURE(temperature);
      CAPTURE(i);
      CHECK(sample_token(logits, {temperature, 0, 1.0, 9}, i) == reference_draw(logits, temperature, 9, i));
      differ += reference_draw(logits, temperature, 9, i) != reference_draw(logits, temperature, 10, i);
    }
  CHECK(differ > 100);  // the seed matters
}

TEST_CASE("evaluation does not depend on the batch size") {
  const ModelConfig m = gen_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const auto ids = random_ids(700, 101);
  const EvalResult one = evaluate_loss(model, ids, 64, 1), three = evaluate_loss(model, ids, 64, 3),
                   big = evaluate_loss(model, ids, 64, 100);
  CHECK(one.tokens == 699);
  CHECK(one.loss_sum == three.loss_sum);
  CHECK(one.loss_sum == big.loss_sum);
  CHECK(one.mean_loss() == doctest::Approx(std::log(101.0)).epsilon(0.15));  // near uniform at init
  CHECK(evaluate_loss(model, ids, 64, 2, 3).windows == 3);
}
