// Writes the fuzzers' seeds with the project's own writers: small valid inputs of every format,
// from a tiny model (1 layer, width 8, 2 heads, context 8, vocab 260) and a BPE tokenizer trained
// on a sentence. Each seed is read back by its reader before it is kept. `make fuzz-seeds` runs it:
//   build/fuzz/make_seeds OUT_DIR CONFIG.toml...
// writes OUT_DIR/<harness>/<seed>; the TOML configs are copied as they are. Seeds of harnesses
// with a mode byte (see the harnesses) start with it.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "minitx/core/error.h"
#include "minitx/core/gzip.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/threads.h"
#include "minitx/data/token_file.h"
#include "minitx/experiment.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"
#include "minitx/model/hf_config.h"
#include "minitx/model/params.h"
#include "minitx/model/safetensors.h"
#include "minitx/quant/file.h"
#include "minitx/quant/recipe.h"
#include "minitx/release/release.h"
#include "minitx/tokenizer/trainer.h"

namespace fs = std::filesystem;
using namespace minitx;

namespace {

constexpr std::string_view kText =
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
    "and nothing particular to interest me on shore, I thought I would sail about a little and see the watery "
    "part of the world. The whale, the whale! the sea, the sea.\n";

fs::path g_out;
std::size_t g_bytes = 0;

void seed(const std::string& harness, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_out / harness;
  fs::create_directories(dir);
  write_file_atomic(dir / name, bytes);
  g_bytes += bytes.size();
  fmt::print("  {:<40} {:>7} bytes\n", (fs::path(harness) / name).string(), bytes.size());
}

std::string with_mode(char mode, std::string_view bytes) { return std::string(1, mode) + std::string(bytes); }

ModelConfig tiny_gpt2() {
  ModelConfig c;
  c.n_layer = 1;
  c.n_embd = 8;
  c.n_head = 2;
  c.context = 8;
  c.vocab_size = 260;
  c.validate("tiny gpt2");
  return c;
}

// GPT-NeoX shape with everything the descriptor can vary: rotary on half of each head, parallel
// residual, gelu-erf, untied head, no biases, padded vocabulary. A small vocabulary keeps it short.
ModelConfig tiny_neox() {
  ModelConfig c = tiny_gpt2();
  c.vocab_size = 16;
  c.vocab_tokens = 12;
  c.position = ModelConfig::Position::rotary;
  c.rotary_fraction = 0.5;
  c.parallel_residual = true;
  c.activation = ModelConfig::Activation::gelu_erf;
  c.tied_head = false;
  c.bias = false;
  c.validate("tiny neox");
  return c;
}

std::unique_ptr<GptModel> make_model(const ModelConfig& config, std::uint64_t seed) {
  auto model = std::make_unique<GptModel>(config);
  init_params(model->data(), config, seed);
  return model;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [CONFIG.toml...]\n", argv[0]);
    return 2;
  }
  set_thread_count(1);
  g_out = fs::absolute(argv[1]);
  TempDir tmp("minitx-seeds");
  const fs::path t = tmp.path();
  fmt::print("make_seeds: writing {}\n", g_out.string());

  // Tokenizers: 256 bytes + 1 special + 3 merges = 260 (the model's vocab); and a gpt4-pattern
  // one without special tokens.
  TrainerOptions options;
  options.vocab_size = 260;
  const Tokenizer tokenizer = train_bpe(kText, options);
  tokenizer.save(t / "tokenizer.json");
  seed("tokenizer", "gpt2-special.json", read_file(t / "tokenizer.json"));
  const std::string tokenizer_sha = sha256_file_hex(t / "tokenizer.json");
  TrainerOptions gpt4 = options;
  gpt4.special_tokens.clear();
  gpt4.pattern = SplitPattern::gpt4;
  train_bpe(kText, gpt4).save(t / "gpt4.json");
  seed("tokenizer", "gpt4-plain.json", read_file(t / "gpt4.json"));
  (void)Tokenizer::load(t / "gpt4.json");

  // Token files: width 2 (vocab 260) and width 4 (a vocabulary past 65536); mode byte 1: the
  // harness recomputes the checksum.
  TokenFile tokens{tokenizer.vocab_size(), tokenizer_sha, tokenizer.encode(kText.substr(0, 120))};
  write_token_file(t / "train.bin", tokens);
  seed("token_file", "width2.bin", with_mode(1, read_file(t / "train.bin")));
  tokens.vocab_size = 70000;
  tokens.ids.resize(16);
  tokens.ids.back() = 69999;
  write_token_file(t / "wide.bin", tokens);
  seed("token_file", "width4.bin", with_mode(1, read_file(t / "wide.bin")));
  (void)read_token_file(t / "wide.bin");

  // Checkpoints (mode byte 1: the harness recomputes the checksum).
  const auto gpt2 = make_model(tiny_gpt2(), 1);
  const auto neox = make_model(tiny_neox(), 2);
  Checkpoint ck;
  ck.config = gpt2->config;
  ck.tokenizer_sha256 = tokenizer_sha;
  ck.step = 60;
  ck.params = gpt2->storage;
  write_checkpoint(t / "gpt2.ckpt", ck);
  (void)read_checkpoint(t / "gpt2.ckpt");
  seed("checkpoint", "gpt2.ckpt", with_mode(1, read_file(t / "gpt2.ckpt")));
  ck.config = neox->config;
  ck.train_sha256 = sha256_hex("[train]");
  ck.device = "cuda";
  ck.precision = "bf16";
  ck.params = neox->storage;
  ck.m.assign(ck.params.size(), 0.25f);
  ck.v.assign(ck.params.size(), 0.0625f);
  write_checkpoint(t / "neox.ckpt", ck);
  (void)read_checkpoint(t / "neox.ckpt");
  seed("checkpoint", "neox-adam.ckpt", with_mode(1, read_file(t / "neox.ckpt")));

  // Quantized files (mode byte 1), read back as models.
  const auto quant_seed = [&](const GptModel& model, const char* recipe, const char* name) {
    const quant::QuantFile file = quantize_model(model, quant::recipe_by_name(recipe), {tokenizer_sha, 60, recipe});
    quant::write_quant_file(t / name, file);
    (void)make_quant_model(quant::read_quant_file(t / name), name);
    seed("quant", name, with_mode(1, read_file(t / name)));
  };
  quant_seed(*gpt2, "q8_0", "gpt2-q8_0.mtq");
  quant_seed(*neox, "q4_0", "neox-q4_0.mtq");

  // Safetensors (mode byte 0): the NeoX model's tensors under the tensor table's names.
  {
    std::vector<SafeTensorOut> out;
    std::vector<std::string> names;
    const ParamLayout layout = param_layout(neox->config);
    for (const ParamTensor& p : param_tensors(neox->config)) {
      std::vector<std::uint64_t> shape;
      if (p.per_layer) shape.push_back(neox->config.n_layer);
      shape.push_back(p.rows);
      if (p.cols != 0) shape.push_back(p.cols);
      out.push_back({p.name, shape, neox->data() + layout.offset[static_cast<std::size_t>(p.kind)]});
    }
    write_safetensors(t / "model.safetensors", out, {{"format", "pt"}});
    const auto st = SafetensorsCheckpoint::open_file(t / "model.safetensors");
    for (const std::string& name : st.names()) (void)st.read_f32(name);
    seed("safetensors", "neox.safetensors", with_mode(0, read_file(t / "model.safetensors")));
  }
  {
    // BF16, F16 and a scalar, with a gap of 2 bytes: mode byte 2 (allow gaps). No writer makes
    // these dtypes, so the bytes are spelled out.
    std::string header =
        R"({"__metadata__":{"format":"pt"},"a.bf16":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},)"
        R"("b.f16":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"F32","shape":[],"data_offsets":[16,20]}})";
    header.resize((header.size() + 7) / 8 * 8, ' ');
    std::string file(8, '\0');
    const std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) file[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
    file += header;
    const unsigned char data[20] = {0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f, 0x01, 0x00,  // bf16 1, -2, inf, tiny
                                    0x00, 0x3c, 0x00, 0x7c, 0x01, 0x80,              // f16 1, inf, -tiny
                                    0xee, 0xee,                                      // the gap
                                    0x00, 0x00, 0xc0, 0x7f};                         // f32 NaN
    file.append(reinterpret_cast<const char*>(data), sizeof data);
    write_file_atomic(t / "dtypes.safetensors", file);
    const auto st = SafetensorsCheckpoint::open_file(t / "dtypes.safetensors", {.allow_gaps = true});
    for (const std::string& name : st.names()) (void)st.read_f32(name);
    seed("safetensors", "dtypes-gap.safetensors", with_mode(2, file));
  }
  // config.json of the three families (mode byte 1).
  {
    HfConfig c;
    c.n_layer = 1;
    c.hidden_size = 8;
    c.n_head = 2;
    c.ffn_size = 32;
    c.vocab_size = 260;
    c.max_positions = 8;
    c.bos_token_id = c.eos_token_id = 256;
    std::map<std::string, HfConfig> configs;
    configs["gpt2.json"] = c;
    HfConfig opt = c;
    opt.model_type = HfModelType::opt;
    opt.activation = HfActivation::relu;
    opt.position_offset = 2;
    opt.pad_token_id = 1;
    configs["opt.json"] = opt;
    HfConfig neox_config = c;
    neox_config.model_type = HfModelType::gpt_neox;
    neox_config.activation = HfActivation::gelu_erf;
    neox_config.rotary = true;
    neox_config.rotary_fraction = 0.5;
    neox_config.parallel_residual = true;
    neox_config.tie_word_embeddings = false;
    configs["gpt_neox.json"] = neox_config;
    for (const auto& [name, config] : configs) {
      const std::string text = write_hf_config(config);
      (void)parse_hf_config(text, name);
      seed("safetensors", name, with_mode(1, text));
    }
  }

  // Configs: copied.
  for (int i = 2; i < argc; ++i) {
    const fs::path config = argv[i];
    (void)load_experiment(config);
    seed("config", config.filename().string(), read_file(config));
  }

  // A release of two small files: the .tar.gz (mode byte 0) and the tar inside (mode byte 1).
  {
    const fs::path here = fs::current_path();
    fs::current_path(t);
    fs::create_directories("rel/results");
    write_file_atomic("rel/README.md", "# minitx fuzz seed\n");
    write_file_atomic("rel/results/eval.json", "{\"val_loss\": 5.083}\n");
    fs::current_path(t / "rel");
    PackOptions pack;
    pack.output = t / "minitx-seed.tar.gz";
    pack.prefix = "minitx-seed";
    pack.files = {"README.md", "results/eval.json"};
    pack.source_date_epoch = 1700000000;
    (void)pack_release(pack);
    fs::current_path(here);
    (void)verify_release(pack.output);
    const std::string archive = read_file(pack.output);
    seed("release", "two-files.tar.gz", with_mode(0, archive));
    seed("release", "two-files.tar", with_mode(1, gzip_decompress(archive, "seed", 1u << 20)));
  }

  // gzip streams.
  seed("gzip", "text.gz", gzip_compress(kText));
  seed("gzip", "empty.gz", gzip_compress(""));

  fmt::print("make_seeds: {} bytes in all\n", g_bytes);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "make_seeds: %s\n", e.what());
  return 1;
}
