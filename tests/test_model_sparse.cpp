// A model with a block-sparse attention pattern: its gradient against finite differences of the
// masked double reference, its decode step against its forward, a window that covers the context
// against dense attention, and the pattern as config, model description and checkpoint.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "helpers.h"
#include "minitx/core/config.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"
#include "minitx/model/params.h"
#include "minitx/sparse/pattern.h"
#include "decode_checks.h"
#include "test_ops_reference.h"

using namespace minitx;
using namespace minitx::test;
using Kind = sparse::AttentionPattern::Kind;

namespace {

// Five blocks of 16: enough rows for every pattern, BigBird's random draws included, to drop some.
ModelConfig sparse_config(Kind kind) {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 8;
  m.n_head = 2;
  m.context = 80;
  m.vocab_size = 11;
  m.init_std = 0.3;
  m.attention.kind = kind;
  m.attention.block = 16;
  m.attention.window = 2;
  m.attention.stride = 3;        // strided: columns 2, 5, ...
  m.attention.global_blocks = 1;
  m.attention.random_blocks = 1;
  m.attention.per_head = true;   // bigbird: each head its own draw
  m.attention.seed = 7;
  m.attention.global_tokens = 3;
  m.attention.sinks = 1;
  return m;
}

const Kind kSparseKinds[] = {Kind::local, Kind::strided, Kind::bigbird, Kind::longformer, Kind::sinks};

std::vector<std::uint32_t> tokens(std::size_t n, std::uint32_t vocab, std::uint64_t stream) {
  const CounterRng rng(5, stream);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

}  // namespace

TEST_CASE("a sparse model's loss and gradient match the masked double reference, every pattern") {
  for (Kind kind : kSparseKinds) {
    const std::string pattern = sparse::to_string(kind);
    CAPTURE(pattern);
    const ModelConfig m = sparse_config(kind);
    const auto layout = sparse::build_layout(m.attention, 72, 2, 64);
    REQUIRE(layout.density() < 1.0);  // the test would not see the mask otherwise
    GptModel model(m);
    init_params(model.data(), m, 3);
    const std::size_t B = 2, T = 72;
    const auto ids = tokens(B * T, 11, 1), targets = tokens(B * T, 11, 2);
    GptTrainer trainer(model, B, T);
    const double loss = trainer.forward(ids.data(), targets.data());
    std::vector<float> grads(model.size());
    trainer.backward(grads.data());
    const Vec w = to_double(model.storage);
    CHECK(loss == doctest::Approx(ref_gpt_loss(w, m, ids, targets, B, T)).epsilon(1e-5));
    // The attention matrices' gradient, where a wrong mask shows first: layer 0's qkv weights.
    std::size_t off = 0, n = 0;
    for (const auto& t : param_tensors(m)) {
      if (t.kind == Param::qkvw) {
        n = t.size(m.n_layer);
        break;
      }
      off += t.size(m.n_layer);
    }
    REQUIRE(n > 0);
    Vec x = w;
    Vec numeric(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double keep = x[off + i], h = 1e-6;
      x[off + i] = keep + h;
      const double up = ref_gpt_loss(x, m, ids, targets, B, T);
      x[off + i] = keep - h;
      const double down = ref_gpt_loss(x, m, ids, targets, B, T);
      x[off + i] = keep;
      numeric[i] = (up - down) / (2 * h);
    }
    check_close(std::vector<float>(grads.begin() + static_cast<std::ptrdiff_t>(off),
                                   grads.begin() + static_cast<std::ptrdiff_t>(off + n)),
                numeric, 1e-3, "qkv weight gradient");
    // And the loss differs from the dense model's: the pattern is really applied.
    ModelConfig dense = m;
    dense.attention = {};
    CHECK(std::abs(ref_gpt_loss(w, dense, ids, targets, B, T) - loss) > 1e-6);
  }
}

TEST_CASE("a sparse model's decode step gives its forward's logits at every position") {
  for (Kind kind : kSparseKinds) {
    const std::string pattern = sparse::to_string(kind);
    CAPTURE(pattern);
    const ModelConfig m = sparse_config(kind);
    GptModel model(m);
    init_params(model.data(), m, 6);
    const std::size_t T = m.context;
    const auto ids = tokens(T, static_cast<std::uint32_t>(m.vocab_size), 3);
    const GptWeights w = weights_of(model);
    KvCache cache(m);
    StepBuffers buffers(m);
    check_steps_match_forward(w, cache, buffers, ids, forward_logits(w, ids));
  }
}

TEST_CASE("a local window that covers the context is dense attention") {
  ModelConfig m = sparse_config(Kind::local);
  m.attention.window = 5;  // 5 blocks of 16 >= 80 positions
  ModelConfig dense = m;
  dense.attention = {};
  GptModel a(m), b(dense);
  init_params(a.data(), m, 4);
  init_params(b.data(), dense, 4);
  REQUIRE(a.storage == b.storage);
  const std::size_t B = 2, T = 75;
  const auto ids = tokens(B * T, 11, 7), targets = tokens(B * T, 11, 8);
  GptTrainer ta(a, B, T), tb(b, B, T);
  const double la = ta.forward(ids.data(), targets.data()), lb = tb.forward(ids.data(), targets.data());
  CHECK(la == doctest::Approx(lb).epsilon(1e-6));
  std::vector<float> ga(a.size()), gb(b.size());
  ta.backward(ga.data());
  tb.backward(gb.data());
  check_close(ga, to_double(gb), 1e-5, "gradient, local covering the context vs dense");
}

TEST_CASE("every pattern's layout for T tokens is the first rows of its layout for more") {
  for (Kind kind : kSparseKinds) {
    const std::string pattern = sparse::to_string(kind);
    CAPTURE(pattern);
    const ModelConfig m = sparse_config(kind);
    const auto whole = sparse::build_layout(m.attention, 200, 2, 64);
    for (std::int32_t T : {1, 17, 40, 63, 64, 129}) {
      CAPTURE(T);
      const auto part = sparse::build_layout(m.attention, T, 2, 64);
      for (std::int32_t h = 0; h < 2; ++h)
        for (std::int32_t q = 0; q < T; ++q)
          for (std::int32_t k = 0; k <= q; ++k)
            if (part.allowed(h, q, k) != whole.allowed(h, q, k)) {
              FAIL_CHECK("head " << h << " query " << q << " key " << k << " differs");
              h = 2, q = T, k = T;  // one report per length is enough
            }
    }
  }
}

TEST_CASE("[model.attention]: every pattern parses, describes itself and reads back") {
  const char* texts[] = {
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n",
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\npattern = \"local\"\nblock = 32\nwindow = 3\n",
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\npattern = \"strided\"\nstride = 4\n",
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\npattern = \"bigbird\"\nper_head = true\nseed = 9\nrandom_blocks = 3\n",
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\npattern = \"longformer\"\nglobal_tokens = 5\n",
      "[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\npattern = \"sinks\"\nsinks = 2\nwindow = 8\n",
  };
  std::vector<std::string> descriptions;
  for (const char* text : texts) {
    CAPTURE(text);
    const ConfigFile file = ConfigFile::parse(text, "p.toml");
    ModelConfig m = parse_model_config(file.root().table("model"));
    m.vocab_size = 100;
    const std::string description = describe_architecture(m);
    CHECK(description.find("attention_") == (m.attention.dense() ? std::string::npos : description.find("attention_pattern")));
    auto keys = parse_key_values(description, "d");
    const ModelConfig back = parse_architecture(keys, "d");
    CHECK(keys.empty());
    CHECK(describe_architecture(back) == description);
    CHECK(same_architecture(back, m));
    descriptions.push_back(description);
  }
  for (std::size_t i = 0; i < descriptions.size(); ++i)
    for (std::size_t j = i + 1; j < descriptions.size(); ++j) CHECK(descriptions[i] != descriptions[j]);
  const ConfigFile local = ConfigFile::parse(texts[1], "p.toml");
  const ModelConfig m = parse_model_config(local.root().table("model"));
  CHECK(sparse::summarize_pattern(m.attention) == "local (block 32, window 3)");
  CHECK(m.attention.bounded());
}

TEST_CASE("[model.attention]: bad patterns, keys and values are named") {
  auto parse = [](const std::string& attention) {
    const ConfigFile file =
        ConfigFile::parse("[model]\nn_layer = 1\nn_embd = 64\nn_head = 1\ncontext = 256\n[model.attention]\n" + attention, "b.toml");
    return parse_model_config(file.root().table("model"));
  };
  CHECK_ERROR_CONTAINS(parse("pattern = \"butterfly\"\n"), "pattern");
  CHECK_ERROR_CONTAINS(parse("pattern = \"local\"\nblock = 48\n"), "expected 16, 32, 64 or 128, got 48");
  CHECK_ERROR_CONTAINS(parse("pattern = \"local\"\nstride = 4\n"), "is read by the strided patterns only, not by local");
  CHECK_ERROR_CONTAINS(parse("pattern = \"dense\"\nwindow = 4\n"), "not by dense");
  CHECK_ERROR_CONTAINS(parse("pattern = \"local\"\nwindow = 0\n"), "window");
  CHECK_ERROR_CONTAINS(parse("pattern = \"local\"\nwindwo = 2\n"), "unknown key");
  auto keys = parse_key_values("attention_pattern local\nattention_block 64\n", "f.ckpt");
  CHECK_ERROR_CONTAINS(sparse::parse_pattern(keys, "f.ckpt"), "f.ckpt: the model description lacks 'attention_window'");
  keys = parse_key_values("attention_pattern local\nattention_block 48\nattention_window 2\n", "f.ckpt");
  CHECK_ERROR_CONTAINS(sparse::parse_pattern(keys, "f.ckpt"), "f.ckpt: attention block = 48");
  keys = parse_key_values("attention_pattern dense\n", "f.ckpt");
  CHECK_ERROR_CONTAINS(sparse::parse_pattern(keys, "f.ckpt"), "never written");
}

TEST_CASE("a checkpoint keeps the attention pattern, and a different pattern is a different architecture") {
  const auto dir = std::filesystem::temp_directory_path() / "minitx-test-sparse-ckpt";
  std::filesystem::create_directories(dir);
  Checkpoint ck;
  ck.config = sparse_config(Kind::bigbird);
  ck.tokenizer_sha256 = std::string(64, 'a');
  ck.params.assign(param_count(ck.config), 0.5f);
  write_checkpoint(dir / "m.ckpt", ck);
  const Checkpoint back = read_checkpoint(dir / "m.ckpt");
  CHECK(describe_architecture(back.config) == describe_architecture(ck.config));
  CHECK(back.config.attention.seed == 7);
  CHECK(back.config.attention.per_head);
  ModelConfig other = ck.config;
  other.attention.seed = 8;
  CHECK_FALSE(same_architecture(other, ck.config));
  std::filesystem::remove_all(dir);
}

TEST_CASE("local and sinks decode from a ring KV cache of their span: flat memory, the forward's logits") {
  for (Kind kind : {Kind::local, Kind::sinks}) {
    const std::string pattern = sparse::to_string(kind);
    CAPTURE(pattern);
    ModelConfig m = sparse_config(kind);
    m.context = 300;  // the ring (32 positions, after 16 sink positions) wraps eight times
    m.position = ModelConfig::Position::rotary;
    GptModel model(m);
    init_params(model.data(), m, 8);
    const std::size_t T = m.context;
    const auto ids = tokens(T, static_cast<std::uint32_t>(m.vocab_size), 4);
    const GptWeights w = weights_of(model);
    const std::vector<float> all = forward_logits(w, ids);
    KvCache cache(m);
    REQUIRE(cache.ring());
    const std::size_t span = kind == Kind::sinks ? 16 + 32 : 32;
    CHECK(cache.bytes() == 2 * m.n_layer * span * m.n_embd * sizeof(float));
    StepBuffers buffers(m);
    check_steps_match_forward(w, cache, buffers, ids, all);
    CHECK(cache.bytes() == 2 * m.n_layer * span * m.n_embd * sizeof(float));  // the same after 300 positions
    // A prefill through the ring, then decoding on: the same logits as the forward's last rows.
    KvCache prefilled(m);
    GptActivations part(m, 1, T - 5, false);
    gpt_forward(w, part, ids.data(), 1, T - 5, &prefilled);
    prefilled.length = T - 5;
    check_steps_match_forward(w, prefilled, buffers, ids, all, T - 5);
  }
  ModelConfig dense = sparse_config(Kind::local);
  dense.attention = {};
  CHECK_FALSE(KvCache(dense).ring());
  ModelConfig wide = sparse_config(Kind::local);
  wide.attention.window = 5;  // 80 positions: the whole context, so no ring
  CHECK_FALSE(KvCache(wide).ring());
}

TEST_CASE("the ring's slots: sink rows, then a ring of the window; the GPU's 32-bit slots are the CPU's") {
  for (Kind kind : {Kind::local, Kind::sinks}) {
    const std::string pattern = sparse::to_string(kind);
    CAPTURE(pattern);
    ModelConfig m = sparse_config(kind);
    m.context = 1000;
    const cpu::KvSlots slots = kv_slots(m.attention, m.context);
    const std::size_t fixed = kind == Kind::sinks ? 16 : 0;
    REQUIRE(slots.is_ring());
    CHECK(slots.fixed == fixed);
    CHECK(slots.ring == 32);
    CHECK(slots.rows(m.context) == fixed + 32);
    const BasicKvSlots<std::uint32_t> device{static_cast<std::uint32_t>(slots.fixed), static_cast<std::uint32_t>(slots.ring)};
    for (std::size_t p = 0; p < m.context; ++p) {
      CAPTURE(p);
      const std::size_t slot = slots(p);
      CHECK(slot == (p < fixed ? p : fixed + (p - fixed) % 32));
      CHECK(device(static_cast<std::uint32_t>(p)) == slot);
    }
  }
  // Other patterns, and a window covering the context: row p, as many rows as positions.
  ModelConfig strided = sparse_config(Kind::strided);
  strided.context = 1000;
  const cpu::KvSlots rows = kv_slots(strided.attention, strided.context);
  CHECK_FALSE(rows.is_ring());
  CHECK(rows(999) == 999);
  CHECK(rows.rows(1000) == 1000);
  ModelConfig wide = sparse_config(Kind::local);
  wide.attention.window = 5;
  CHECK_FALSE(kv_slots(wide.attention, wide.context).is_ring());
  CHECK_FALSE(BasicKvSlots<std::uint32_t>{}.is_ring());
}
