// Quantized GPT models: the linear view against fp32, per-product error bounds, model logits
// against fp32 within a derived bound, file round trips, eval and generate on quantized weights,
// and the errors for files that do not fit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/infer/decoder.h"
#include "minitx/infer/generate.h"
#include "minitx/model/weights.h"
#include "minitx/infer/perplexity.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/params.h"
#include "minitx/quant/fp16.h"
#include "minitx/quant/quantize.h"

using namespace minitx;
using quant::Format;

namespace {

ModelConfig qm_config() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 64;
  m.n_head = 2;
  m.context = 48;
  m.vocab_size = 96;
  m.init_std = 0.1;
  return m;
}

std::vector<std::uint32_t> random_ids(std::size_t n, std::uint32_t vocab, std::uint64_t seed = 2) {
  const CounterRng rng(seed, 0);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

const std::string kSha(64, 'a');

std::unique_ptr<QuantModel> quantized(const GptModel& model, const std::string& recipe) {
  return make_quant_model(quantize_model(model, quant::recipe_by_name(recipe), {kSha, 7, recipe}), "test");
}

// Logits after each prefix of `ids` (cache: prefill the first, then steps).
std::vector<std::vector<float>> decode_all(const GptWeights& w, const std::vector<std::uint32_t>& ids) {
  Decoder d(w);
  std::vector<std::vector<float>> out{d.prefill(ids.data(), 1)};
  for (std::size_t i = 1; i < ids.size(); ++i) out.push_back(d.step(ids[i]));
  return out;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

}  // namespace

TEST_CASE("an fp32 quantized file computes exactly the fp32 model's logits and losses") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const auto qm = quantized(model, "f32");
  const auto ids = random_ids(m.context, static_cast<std::uint32_t>(m.vocab_size));
  const auto a = decode_all(weights_of(model), ids), b = decode_all(qm->weights, ids);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  Decoder da(model), db(qm->weights);
  CHECK(da.prefill(ids.data(), ids.size()) == db.prefill(ids.data(), ids.size()));
  const auto stream = random_ids(200, static_cast<std::uint32_t>(m.vocab_size), 9);
  CHECK(evaluate_loss(model, stream, 32, 2).loss_sum == evaluate_loss(qm->weights, stream, 32, 2).loss_sum);
}

// Every quantized product y = Ŵ·x̂ (weights and the input both rounded to their blocks) differs
// from the fp32 product W·x by at most Σ_b (d_w,b/2)·Σ_{i∈b}|x_i| + (d_x,b/2)·Σ_{i∈b}|ŵ_i|, since
// each weight is within half its block's step d_w of its value and each input within half of
// d_x (test_quant_formats checks both), plus fp32 rounding, bounded by 1e-5·Σ|w||x| here.
TEST_CASE("a quantized linear layer stays within its derived error bound, rows and one vector alike") {
  const std::size_t OC = 40, C = 96, N = 3;
  const CounterRng rng(4, 0);
  std::vector<float> w(OC * C), x(N * C), bias(OC);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = rng.uniform(i) * 2 - 1;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (rng.uniform(100000 + i) * 2 - 1) * (i % 7 == 0 ? 5.0f : 1.0f);
  for (std::size_t i = 0; i < OC; ++i) bias[i] = rng.uniform(200000 + i);
  for (Format f : {Format::q8_0, Format::q4_0}) {
    CAPTURE(quant::format_name(f));
    const quant::QTensor q = quant::quantize_tensor("w", {OC, C}, w, f);
    const std::vector<float> wd = quant::dequantize_tensor(q);
    std::vector<float> rows(N * OC), one(OC);
    linear_forward(rows.data(), x.data(), q.matrix(), bias.data(), N);
    for (std::size_t n = 0; n < N; ++n) {
      linear_matvec(one.data(), q.matrix(), x.data() + n * C, bias.data());
      std::vector<quant::block_q8_0> xq(C / quant::QK);
      quant::quantize_row_q8_0_ref(x.data() + n * C, xq.data(), C);
      for (std::size_t o = 0; o < OC; ++o) {
        CHECK(one[o] == rows[n * OC + o]);  // the same kernels whether one row or many
        double exact = bias[o], bound = 0, scale = 0;
        for (std::size_t b = 0; b < C / quant::QK; ++b) {
          const double dx = quant::fp16_to_fp32(xq[b].d);
          double dw = 0, sx = 0, sw = 0;
          for (std::size_t i = b * quant::QK; i < (b + 1) * quant::QK; ++i) {
            dw = std::max(dw, std::abs(static_cast<double>(w[o * C + i]) - wd[o * C + i]));
            sx += std::abs(x[n * C + i]);
            sw += std::abs(wd[o * C + i]);
            exact += static_cast<double>(w[o * C + i]) * x[n * C + i];
            scale += std::abs(static_cast<double>(w[o * C + i]) * x[n * C + i]);
          }
          // dw is the block's largest actual error, itself at most half its step.
          bound += dw * sx + dx / 2 * sw;
        }
        CHECK(std::abs(one[o] - exact) <= bound + 1e-5 * scale);
      }
    }
  }
}

// The model-level bound. A q8_0 value is off by at most half a step, amax/254 of its block; for
// the near-Gaussian blocks of weights and activations (amax ≈ 2.1σ over 32 values) that is an
// error of RMS ≈ 2.1σ/254/√3 ≈ 0.5% of the values' RMS per operand, ≈ 0.7% per product with both
// operands rounded. A logit here passes through at most 2L + 1 = 5 products in a chain (one per
// layer branch, then the head); adding their errors linearly (no cancellation assumed) gives
// ≈ 3.5% of the logits' RMS, and LayerNorm rescales but does not amplify relative errors. We
// assert 5% for q8_0. q4_0's half step is amax/16 of a block: RMS ≈ 2.1σ/16/√3 ≈ 7.6% per
// product, ≈ 38% along the chain; we assert 40%, and q4_mix (embeddings and head at q8_0) must
// land between the two.
TEST_CASE("quantized model logits stay within the derived bound of the fp32 logits") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 3);
  const auto ids = random_ids(m.context, static_cast<std::uint32_t>(m.vocab_size), 5);
  const auto ref = decode_all(weights_of(model), ids);
  std::map<std::string, double> worst;
  for (const char* recipe : {"q8_0", "q4_0", "q4_mix"}) {
    const auto qm = quantized(model, recipe);
    const auto got = decode_all(qm->weights, ids);
    double w = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      std::vector<float> diff(ref[i].size());
      for (std::size_t v = 0; v < diff.size(); ++v) diff[v] = got[i][v] - ref[i][v];
      w = std::max(w, rms(diff) / rms(ref[i]));
    }
    worst[recipe] = w;
  }
  INFO("worst relative RMS error: q8_0 " << worst["q8_0"] << ", q4_0 " << worst["q4_0"] << ", q4_mix "
                                          << worst["q4_mix"]);
  CHECK(worst["q8_0"] < 0.05);
  CHECK(worst["q4_0"] < 0.40);
  CHECK(worst["q4_mix"] <= worst["q4_0"]);
  CHECK(worst["q8_0"] < worst["q4_mix"]);
}

TEST_CASE("a quantized model file round-trips: same tensors, metadata and logits") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  TempDir dir;
  const auto path = dir.path() / "model-q4_mix.mtq";
  std::vector<std::string> patterns = quant::kEmbeddingPatterns;
  patterns.push_back("h.1.fcprojw");
  const quant::QuantFile file =
      quantize_model(model, quant::recipe_by_name("q4_mix", patterns), {kSha, 42, "q4_mix"});
  quant::write_quant_file(path, file);
  CHECK(is_quant_file(path));
  const InferenceModel loaded = load_inference_model(path, m, "test.toml");
  REQUIRE(loaded.quant != nullptr);
  CHECK(loaded.format == "q4_mix");
  CHECK(loaded.step == 42);
  CHECK(loaded.tokenizer_sha256 == kSha);
  CHECK(loaded.quant->file.metadata == file.metadata);
  CHECK(loaded.quant->file.metadata.find("q8_0_tensors wte,wpe,h.1.fcprojw\n") != std::string::npos);
  REQUIRE(loaded.quant->file.tensors.size() == file.tensors.size());
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    CHECK(loaded.quant->file.tensors[i].name == file.tensors[i].name);
    CHECK(loaded.quant->file.tensors[i].format == file.tensors[i].format);
    CHECK(loaded.quant->file.tensors[i].data == file.tensors[i].data);
  }
  CHECK(loaded.quant->file.get("wte").format == Format::q8_0);
  CHECK(loaded.quant->file.get("h.0.fcprojw").format == Format::q4_0);
  CHECK(loaded.quant->file.get("h.1.fcprojw").format == Format::q8_0);
  CHECK(loaded.quant->file.get("h.0.ln1w").format == Format::f32);
  const auto in_memory = make_quant_model(file, "memory");
  const auto ids = random_ids(20, static_cast<std::uint32_t>(m.vocab_size));
  CHECK(decode_all(in_memory->weights, ids) == decode_all(loaded.weights, ids));
  // Deterministic bytes: quantizing again gives the same file.
  CHECK(quant::encode_quant_file(quantize_model(model, quant::recipe_by_name("q4_mix", patterns), {kSha, 42, "q4_mix"})) ==
        read_file(path));
  // A checkpoint loads through the same entry point.
  Checkpoint ck{m, kSha, "", 3, "cpu", "fp32", model.storage, {}, {}};
  write_checkpoint(dir.path() / "model.ckpt", ck);
  const InferenceModel fp32 = load_inference_model(dir.path() / "model.ckpt", m, "test.toml");
  CHECK(fp32.fp32 != nullptr);
  CHECK(fp32.format == "fp32 checkpoint");
  CHECK(fp32.step == 3);
}

TEST_CASE("eval and generate run on a quantized model") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const auto q8 = quantized(model, "q8_0");
  const auto q4 = quantized(model, "q4_0");
  const auto stream = random_ids(300, static_cast<std::uint32_t>(m.vocab_size), 11);
  const EvalResult base = evaluate_loss(model, stream, 32, 4);
  const EvalResult r8 = evaluate_loss(q8->weights, stream, 32, 4);
  const EvalResult r4 = evaluate_loss(q4->weights, stream, 32, 4);
  CHECK(r8.tokens == base.tokens);
  CHECK(std::abs(r8.mean_loss() - base.mean_loss()) < 0.01 * base.mean_loss());
  CHECK(std::abs(r4.mean_loss() - base.mean_loss()) < 0.1 * base.mean_loss());
  // Batch-size independence holds for quantized weights too.
  CHECK(evaluate_loss(q4->weights, stream, 32, 1).loss_sum == r4.loss_sum);
  GenerateOptions options;
  options.max_new = 20;
  options.sampling.temperature = 0.8;
  options.sampling.seed = 3;
  const GenerateResult a = generate(q4->weights, {1, 2, 3}, options);
  const GenerateResult b = generate(q4->weights, {1, 2, 3}, options);
  CHECK(a.tokens.size() == 20);
  CHECK(a.tokens == b.tokens);
  for (std::uint32_t t : a.tokens) CHECK(t < m.vocab_size);
}

TEST_CASE("a quantized file that does not fit the config or the tokenizer is an error") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  TempDir dir;
  const auto path = dir.path() / "model-q8_0.mtq";
  quant::write_quant_file(path, quantize_model(model, quant::recipe_by_name("q8_0"), {kSha, 1, "q8_0"}));
  ModelConfig other = m;
  other.n_layer = 3;
  CHECK_ERROR_CONTAINS(load_inference_model(path, other, "other.toml"),
                       "the quantized model (n_layer 2, n_embd 64, n_head 2, context 48, vocab_size 96,");
  CHECK_ERROR_CONTAINS(load_inference_model(path, other, "other.toml"), "does not fit [model] in other.toml (n_layer 3, n_embd 64");
  const InferenceModel loaded = load_inference_model(path, m, "test.toml");
  CHECK_ERROR_CONTAINS(check_tokenizer_fits(loaded, path, 96, std::string(64, 'b'), "val.bin"),
                       "made with the tokenizer whose SHA-256 is " + kSha + ", but val.bin comes from");
  CHECK_ERROR_CONTAINS(check_tokenizer_fits(loaded, path, 100, kSha, "val.bin"),
                       "the model has a vocabulary of 96 tokens, but val.bin has 100");
  check_tokenizer_fits(loaded, path, 96, kSha, "val.bin");

  // A quantized file cut short inside its magic is called a truncated quantized model, not a checkpoint.
  const std::string whole = read_file(path);
  write_file_atomic(dir.path() / "short.mtq", whole.substr(0, 5));
  CHECK_ERROR_CONTAINS(load_inference_model(dir.path() / "short.mtq"),
                       (dir.path() / "short.mtq").string() + ": truncated: 5 bytes, the header alone needs 64");
  write_file_atomic(dir.path() / "empty.mtq", "");
  CHECK_ERROR_CONTAINS(load_inference_model(dir.path() / "empty.mtq"), "empty.mtq: truncated: 0 bytes, the header alone needs 64");
  write_file_atomic(dir.path() / "cut.bin", whole.substr(0, 7));
  CHECK_ERROR_CONTAINS(load_inference_model(dir.path() / "cut.bin"), "cut.bin: truncated: 7 bytes, the header alone needs 64");

  // Files whose tensors or metadata do not describe this GPT.
  quant::QuantFile file = quantize_model(model, quant::recipe_by_name("q8_0"), {kSha, 1, "q8_0"});
  {
    quant::QuantFile f = file;
    f.tensors.pop_back();
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "x.mtq: the tensor lnfb is missing");
  }
  {
    quant::QuantFile f = file;
    f.tensors.push_back(f.tensors.back());
    f.tensors.back().name = "extra";
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "holds 29 tensors, a GPT of this shape has 28");
  }
  {
    quant::QuantFile f = file;
    const std::vector<float> ones(2 * 32, 1.0f);
    for (auto& t : f.tensors)
      if (t.name == "h.0.ln1w") t = quant::quantize_tensor("h.0.ln1w", {64}, std::vector<float>(64, 1.0f), Format::q8_0);
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "the vector h.0.ln1w is q8_0; vectors must be f32");
  }
  {
    quant::QuantFile f = file;
    for (auto& t : f.tensors)
      if (t.name == "h.1.fcw") t.shape = {128, 128};
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "tensor h.1.fcw has shape (128, 128), the model's config needs (256, 64)");
  }
  {
    quant::QuantFile f = file;
    f.metadata = "something else\n";
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "not a minitx GPT");
  }
  {
    quant::QuantFile f = file;
    f.metadata.replace(f.metadata.find("n_head 2"), 8, "n_head x");
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "x.mtq: n_head = 'x': expected a whole number");
  }
  {
    quant::QuantFile f = file;
    f.metadata.replace(f.metadata.find("recipe"), 6, "recipi");
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "metadata lacks 'recipe'");
  }
  {
    quant::QuantFile f = file;
    f.metadata += "colour blue\n";
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "unknown metadata key 'colour'");
  }
  {
    quant::QuantFile f = file;
    f.metadata.replace(0, f.metadata.find('\n'), "minitx-gpt 1");
    CHECK_ERROR_CONTAINS(make_quant_model(f, "x.mtq"), "format 1 (GPT-2 only");
  }
  // A truncated file: the file layer's checks come first.
  std::string bytes = read_file(path);
  write_file_atomic(dir.path() / "cut.mtq", bytes.substr(0, bytes.size() - 10));
  CHECK_ERROR_CONTAINS(load_inference_model(dir.path() / "cut.mtq", m, "test.toml"), "cut.mtq");
}

// Issue 14: an 84 KB file claiming 50 million layers took 10.9 GB for 24 s before its error, and
// 2^31 layers ended in std::bad_alloc. The layer count is bounded when the metadata is read, and
// a count within the bound that the file does not hold is refused at its first missing tensor.
TEST_CASE("a quantized file claiming more layers than it holds is refused before anything is allocated") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  const quant::QuantFile good = quantize_model(model, quant::recipe_by_name("q8_0"), {kSha, 1, "q8_0"});
  REQUIRE(good.metadata.find("\nn_layer 2\n") != std::string::npos);
  TempDir dir;
  const auto claiming = [&](const std::string& layers) {
    quant::QuantFile f = good;
    f.metadata.replace(f.metadata.find("\nn_layer 2\n"), 11, "\nn_layer " + layers + "\n");
    const fs::path path = dir.path() / ("layers-" + layers + ".mtq");
    quant::write_quant_file(path, f);
    return path;
  };
  CHECK_ERROR_CONTAINS(load_inference_model(claiming("50000000")), "(n_layer 50000000, n_embd 64, n_head 2, context 48, "
                                                                    "ffn 256) is beyond the sizes minitx accepts");
  CHECK_ERROR_CONTAINS(load_inference_model(claiming("2147483648")), "n_layer = '2147483648': expected a whole number up to 2^30");
  CHECK_ERROR_CONTAINS(load_inference_model(claiming("4096")), "layers-4096.mtq: the tensor h.2.ln1w is missing");
  CHECK(load_inference_model(claiming("2")).config.n_layer == 2);
}

TEST_CASE("q4_mix's exceptions: sensitivity is measured per matrix and chosen within the share") {
  const ModelConfig m = qm_config();
  GptModel model(m);
  init_params(model.data(), m, 1);
  std::vector<float> logits(3 * m.vocab_size, 0.5f);
  CHECK(mean_kl(logits.data(), logits.data(), 3, m.vocab_size) == 0.0);
  const auto ids = random_ids(64, static_cast<std::uint32_t>(m.vocab_size));
  const auto s = measure_sensitivity(model, ids, 32, 2, Format::q4_0);
  REQUIRE(s.size() == 4 * m.n_layer);
  CHECK(s[0].tensor == "h.0.qkvw");
  CHECK(s[0].params == 3 * 64 * 64);
  for (const Sensitivity& x : s) CHECK(x.kl > 0.0);
  CHECK(choose_q8_tensors(s, 0.0).empty());
  CHECK(choose_q8_tensors(s, 1.0).size() == s.size());
  std::size_t total = 0, kept = 0;
  for (const Sensitivity& x : s) total += x.params;
  const auto chosen = choose_q8_tensors(s, 0.25);
  CHECK(!chosen.empty());
  for (const Sensitivity& x : s)
    if (std::find(chosen.begin(), chosen.end(), x.tensor) != chosen.end()) kept += x.params;
  CHECK(kept <= total / 4);
  CHECK(choose_q8_tensors(s, 0.25) == chosen);

  // Ids past the vocabulary (a calibration file that claims a larger one) stop at the model's
  // entry instead of reading other memory as embeddings (issue 14, item 2).
  auto bad = ids;
  bad[40] = static_cast<std::uint32_t>(m.vocab_size);
  CHECK_ERROR_CONTAINS(measure_sensitivity(model, bad, 32, 2, Format::q4_0),
                       "forward: token id 96 at index 40 is outside the model's vocabulary of 96 tokens");
  bad[40] = 0xffffffffu;
  CHECK_ERROR_CONTAINS(measure_sensitivity(model, bad, 32, 2, Format::q4_0), "token id 4294967295 at index 40");
}
