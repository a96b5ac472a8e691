// The importer against transformers: the fixtures (tests/fixtures/arch, made by
// scripts/make_arch_fixtures.py) hold tiny GPT-2, OPT and GPT-NeoX models with the logits and
// greedy generations transformers computed for them.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/infer/generate.h"
#include "minitx/model/gpt.h"
#include "minitx/model/hf_import.h"
#include "minitx/model/params.h"
#include "minitx/model/safetensors.h"

using namespace minitx;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = "tests/fixtures/arch";
const char* const kArchs[] = {"gpt2", "opt", "neox_partial_parallel", "neox_full_sequential"};

std::vector<std::uint32_t> read_ids(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::uint32_t> out;
  for (std::uint32_t id; in >> id;) out.push_back(id);
  return out;
}

// greedy.txt: "key: ids" lines.
std::vector<std::uint32_t> greedy_line(const fs::path& dir, const std::string& key) {
  std::ifstream in(dir / "greedy.txt");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return read_ids(line.substr(key.size() + 1));
  FAIL("greedy.txt lacks " << key);
  return {};
}

struct RefLogits {
  std::size_t T = 0, V = 0;
  std::vector<float> values;
};
RefLogits read_logits(const fs::path& path) {
  const std::string data = read_file(path);
  REQUIRE(data.size() >= 16);
  REQUIRE(data.compare(0, 8, "MTXLGT01") == 0);
  RefLogits r;
  std::uint32_t t = 0, v = 0;
  std::memcpy(&t, data.data() + 8, 4);
  std::memcpy(&v, data.data() + 12, 4);
  r.T = t;
  r.V = v;
  REQUIRE(data.size() == 16 + r.T * r.V * 4);
  r.values.resize(r.T * r.V);
  std::memcpy(r.values.data(), data.data() + 16, r.values.size() * 4);
  return r;
}

std::unique_ptr<GptModel> load(const HfModel& hf) {
  auto model = std::make_unique<GptModel>(hf.config);
  model->storage = hf.params;
  model->params = bind_params(model->data(), hf.config);
  return model;
}

}  // namespace

TEST_CASE("import: logits equal transformers' at every position, every architecture") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const fs::path dir = kFixtures / arch;
    const HfModel hf = import_hf(dir);
    const auto model = load(hf);
    std::ifstream ids_in(dir / "ids.txt");
    std::string line;
    std::getline(ids_in, line);
    const auto ids = read_ids(line);
    const RefLogits ref = read_logits(dir / "logits.bin");
    REQUIRE(ids.size() == ref.T);
    REQUIRE(hf.config.vocab_size == ref.V);
    const GptWeights w = weights_of(*model);
    GptActivations acts(hf.config, 1, ref.T, false);
    gpt_forward(w, acts, ids.data(), 1, ref.T);
    std::vector<float> logits(ref.T * ref.V);
    gpt_logits(w, logits.data(), acts.lnf, ref.T);
    float worst = 0.0f;
    for (std::size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(logits[i] - ref.values[i]));
    MESSAGE(std::string(arch) << ": max abs logit difference from transformers " << worst);
    CHECK(worst < 1e-4f);
  }
}

TEST_CASE("import: greedy generation picks transformers' tokens, with and without the cache") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const fs::path dir = kFixtures / arch;
    const HfModel hf = import_hf(dir);
    const auto model = load(hf);
    const auto prompt = greedy_line(dir, "prompt");
    for (const bool cache : {true, false}) {
      CAPTURE(cache);
      GenerateOptions options;
      options.max_new = 12;
      options.sampling.temperature = 0.0;
      options.use_cache = cache;
      const GenerateResult r = generate(weights_of(*model), prompt, options, {});
      CHECK(r.tokens == greedy_line(dir, cache ? "cache" : "no_cache"));
    }
  }
}

TEST_CASE("import: each family's architecture is read from config.json") {
  const auto config = [](const char* arch) { return import_hf(kFixtures / arch).config; };
  const ModelConfig gpt2 = config("gpt2"), opt = config("opt"), pythia = config("neox_partial_parallel"),
                    neox = config("neox_full_sequential");
  CHECK(gpt2.activation == ModelConfig::Activation::gelu_tanh);
  CHECK(gpt2.tied_head);
  CHECK(gpt2.position_offset == 0);
  CHECK(opt.activation == ModelConfig::Activation::relu);
  CHECK(opt.position_offset == 2);
  CHECK(opt.position_rows() == 66);
  CHECK(pythia.position == ModelConfig::Position::rotary);
  CHECK(pythia.rotary_dims() == 4);
  CHECK(pythia.parallel_residual);
  CHECK(!pythia.tied_head);
  CHECK(pythia.activation == ModelConfig::Activation::gelu_erf);
  CHECK(neox.rotary_dims() == 16);
  CHECK(!neox.parallel_residual);
}

TEST_CASE("export then import gives back the same model, bit for bit") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const HfModel hf = import_hf(kFixtures / arch);
    TempDir dir;
    export_hf(hf.config, hf.params, "", dir.path() / "out");
    const HfModel back = import_hf(dir.path() / "out");
    CHECK(describe_architecture(back.config) == describe_architecture(hf.config));
    CHECK(back.params == hf.params);
  }
}

TEST_CASE("import refuses files that do not describe the model, by name") {
  TempDir tmp;
  const fs::path src = kFixtures / "gpt2";
  const auto copy = [&](const char* name) {
    const fs::path dir = tmp.path() / name;
    fs::create_directories(dir);
    fs::copy_file(src / "config.json", dir / "config.json");
    fs::copy_file(src / "model.safetensors", dir / "model.safetensors");
    return dir;
  };
  CHECK_ERROR_CONTAINS(import_hf(tmp.path() / "none"), "is not a directory");
  {  // a config whose shape the tensors do not have
    const fs::path dir = copy("wide");
    std::string text = read_file(dir / "config.json");
    text.replace(text.find("\"n_inner\": 128"), 14, "\"n_inner\": 256");
    write_file_atomic(dir / "config.json", text);
    CHECK_ERROR_CONTAINS(import_hf(dir), "tensor transformer.h.0.mlp.c_fc.weight has shape (64, 128), the config needs (64, 256)");
  }
  {  // a tensor the model does not have
    const fs::path dir = copy("extra");
    const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir);
    std::vector<std::vector<float>> values;
    std::vector<SafeTensorOut> out;
    for (const std::string& name : ck.names()) values.push_back(ck.read_f32(name));
    std::size_t i = 0;
    for (const std::string& name : ck.names()) out.push_back({name, ck.tensor(name).shape, values[i++].data()});
    out.push_back({"transformer.h.7.ln_1.weight", {64}, values[0].data()});
    write_safetensors(dir / "model.safetensors", out);
    CHECK_ERROR_CONTAINS(import_hf(dir), "the tensor transformer.h.7.ln_1.weight is not part of a gpt2 model");
  }
  {  // another family's config over GPT-2's tensors
    const fs::path dir = copy("family");
    fs::remove(dir / "config.json");
    fs::copy_file(kFixtures / "opt" / "config.json", dir / "config.json");
    CHECK_ERROR_CONTAINS(import_hf(dir), "no token embedding found");
  }
  {  // a missing tensor
    const fs::path dir = copy("missing");
    const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir);
    std::vector<std::vector<float>> values;
    std::vector<SafeTensorOut> out;
    for (const std::string& name : ck.names())
      if (name != "transformer.ln_f.bias") {
        values.push_back(ck.read_f32(name));
        out.push_back({name, ck.tensor(name).shape, nullptr});
      }
    for (std::size_t i = 0; i < out.size(); ++i) out[i].data = values[i].data();
    write_safetensors(dir / "model.safetensors", out);
    CHECK_ERROR_CONTAINS(import_hf(dir), "the tensor transformer.ln_f.bias is missing");
  }
  {  // a tokenizer with more tokens than the embedding has rows
    const fs::path dir = copy("tok");
    fs::copy_file("tests/fixtures/hf/hf_512.json", dir / "tokenizer.json");
    CHECK_ERROR_CONTAINS(import_hf(dir), "more than the embedding's 383 rows");
  }
}
