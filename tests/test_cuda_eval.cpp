// `minitx eval --device cuda` (infer/cuda_eval.h) against the CPU's eval, on a checkpoint and on a
// q8_0 file; and the benchmarks' two-device CSVs, parsed back (`bench generate` and
// `bench quant --speed` with --device auto on a machine with a GPU).
//
// Tolerances, from the logits' (tests/test_cuda_decode.cpp derives those): the GPU's logits of a
// token differ from the CPU's by at most r times their RMS, r = 1e-4 in fp32 and
// 4 · 2^-9 · √(14L + 4) in bf16 (the decode test's count of independent bf16 roundings, plus one:
// eval's logits are stored in bf16 before the cross-entropy). A token's loss, logsumexp(z) − z_t,
// moves by at most twice the largest change of a logit (its gradient, softmax − one-hot, has an
// L1 norm of at most 2), so the mean loss moves by at most 2r times the mean of the tokens' logit
// RMS, which is at most the RMS over all the stream's logits (measured on the CPU); plus 1e-6 for
// eval.json's six decimals. A q8_0 file: the GPU multiplies its dequantized matrices, which the
// CPU reference above gets as a checkpoint of those values; the CPU's eval of the file itself
// also rounds each product's inputs to q8_0, so the GPU is within the same tolerance plus the
// CPU's own distance between the two (the triangle inequality), measured here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../src/cli/args.h"
#include "../src/cli/commands.h"
#include "architectures.h"
#include "gpu.h"
#include "helpers.h"
#include "minitx/core/csv.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/data/token_file.h"
#include "minitx/infer/cuda_eval.h"
#include "minitx/infer/quant_model.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"
#include "minitx/model/load.h"
#include "minitx/quant/file.h"

using namespace minitx;
using minitx::cli::Args;

namespace {

// Head size 64, so that bf16 runs too; a context that cuts the stream into several passes of
// cuda_eval_windows windows, and a final short window. Each architecture of tests/architectures.h.
ModelConfig base_config() { return test::small_config(96, 0.08); }

using test::random_ids;

void write_model(const fs::path& path, const ModelConfig& config, std::vector<float> params) {
  Checkpoint ck;
  ck.config = config;
  ck.tokenizer_sha256 = kNoTokenizer;
  ck.step = 7;
  ck.params = std::move(params);
  write_checkpoint(path, ck);
}

// `minitx eval` of a model file on the token file; the val_loss its JSON records.
double eval_loss(const fs::path& model, const fs::path& val, const fs::path& json, const std::string& device,
                 const std::string& precision = "fp32", const std::string& batch = "8") {
  Args args("eval", {"--model", model.string(), "--input", val.string(), "--output", json.string(), "--device", device,
                     "--precision", precision, "--batch-size", batch});
  REQUIRE(cli::run_eval(args) == 0);
  const std::string text = read_file(json);
  const std::size_t at = text.find("\"val_loss\": ");
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + 12));
}

// The RMS of the CPU's logits over the windows eval cuts the stream into (T = the context).
double logits_rms(const GptWeights& w, const std::vector<std::uint32_t>& ids) {
  const std::size_t T = w.config.context, V = w.config.vocab_size;
  double sum = 0;
  std::size_t count = 0;
  std::vector<float> logits;
  for (std::size_t start = 0; start + 1 < ids.size(); start += T) {
    const std::size_t len = std::min(T, ids.size() - 1 - start);
    GptActivations acts(w.config, 1, len, false);
    gpt_forward(w, acts, ids.data() + start, 1, len);
    logits.resize(len * V);
    gpt_logits(w, logits.data(), acts.lnf, len);
    for (float z : logits) sum += double(z) * z;
    count += logits.size();
  }
  return std::sqrt(sum / double(count));
}

double tolerance(const std::string& precision, const ModelConfig& m, double rms) {
  const double r = precision == "fp32" ? 1e-4 : 4.0 * std::ldexp(1.0, -9) * std::sqrt(14.0 * double(m.n_layer) + 4.0);
  return 2.0 * r * rms + 1e-6;
}

}  // namespace

GPU_TEST_CASE("cuda eval: a checkpoint's loss is the CPU's, fp32 and bf16, whatever --batch-size") {
  for (const auto& [name, config] : test::architectures(base_config())) {
    INFO(name);
    TempDir dir("minitx-test-cuda-eval");
    const auto model = random_model(config, 21);
    // Three passes of cuda_eval_windows(96) = 42 windows, the last one short, then a 15-token tail.
    const std::vector<std::uint32_t> ids = random_ids(10000, config.tokens(), 22);
    write_token_file(dir.path() / "val.bin", {static_cast<std::uint32_t>(config.tokens()), std::string(64, 'a'), ids});
    write_model(dir.path() / "model.ckpt", config, model->storage);
    const fs::path ckpt = dir.path() / "model.ckpt", val = dir.path() / "val.bin";
    const double cpu = eval_loss(ckpt, val, dir.path() / "cpu.json", "cpu");
    const double rms = logits_rms(weights_of(*model), ids);
    for (const std::string precision : {"fp32", "bf16"}) {
      INFO(precision << ": CPU " << cpu << ", logits' RMS " << rms);
      const double gpu = eval_loss(ckpt, val, dir.path() / "gpu.json", "cuda", precision, "1");
      CHECK(std::fabs(gpu - cpu) <= tolerance(precision, config, rms));
      // The GPU groups the windows its own way: another --batch-size gives the same file.
      const std::string first = read_file(dir.path() / "gpu.json");
      (void)eval_loss(ckpt, val, dir.path() / "gpu.json", "cuda", precision, "13");
      CHECK(read_file(dir.path() / "gpu.json") == first);
      CHECK(first.find("\"tokens\": 9999,") != std::string::npos);
      CHECK(first.find("\"device\": \"cuda\",\n  \"precision\": \"" + precision + "\"\n}") != std::string::npos);
    }
    CHECK(read_file(dir.path() / "cpu.json").find("device") == std::string::npos);
  }
}

GPU_TEST_CASE("cuda eval: a q8_0 file evaluates as the CPU does on its dequantized matrices") {
  const ModelConfig config = base_config();
  TempDir dir("minitx-test-cuda-eval");
  const auto model = random_model(config, 23);
  const std::vector<std::uint32_t> ids = random_ids(5000, config.tokens(), 24);
  const fs::path val = dir.path() / "val.bin", file = dir.path() / "model-q8_0.mtq", dequantized = dir.path() / "deq.ckpt";
  write_token_file(val, {static_cast<std::uint32_t>(config.tokens()), std::string(64, 'a'), ids});
  write_quant_file(file, quantize_model(*model, quant::recipe_by_name("q8_0"), {kNoTokenizer, 7, "q8_0"}));
  const InferenceModel q = load_inference_model(file);
  write_model(dequantized, config, dense_parameters(q.weights));
  const InferenceModel reference = load_inference_model(dequantized);
  const double rms = logits_rms(reference.weights, ids);
  const double cpu_dequantized = eval_loss(dequantized, val, dir.path() / "deq.json", "cpu");
  const double cpu_file = eval_loss(file, val, dir.path() / "cpu.json", "cpu");
  INFO("CPU on the file " << cpu_file << ", on its dequantized values " << cpu_dequantized << ", logits' RMS " << rms);
  const double fp32 = eval_loss(file, val, dir.path() / "gpu.json", "cuda", "fp32");
  CHECK(std::fabs(fp32 - cpu_dequantized) <= tolerance("fp32", config, rms));
  CHECK(std::fabs(fp32 - cpu_file) <= tolerance("fp32", config, rms) + std::fabs(cpu_file - cpu_dequantized));
  const double bf16 = eval_loss(file, val, dir.path() / "gpu16.json", "cuda", "bf16");
  CHECK(std::fabs(bf16 - cpu_dequantized) <= tolerance("bf16", config, rms));
  // The library call gives eval.json's numbers: every token once, windows as on the CPU.
  const EvalResult r = cuda_evaluate_loss(q.weights, ids, config.context, GpuPrecision::fp32);
  CHECK(r.tokens == ids.size() - 1);
  CHECK(r.windows == (ids.size() - 1 + config.context - 1) / config.context);
  CHECK(std::fabs(r.mean_loss() - fp32) <= 1e-6);
}

GPU_TEST_CASE("cuda eval: errors name what is wrong") {
  ModelConfig narrow = base_config();
  narrow.n_embd = 64;  // head size 32: the bf16 attention kernel takes 64 and 128
  const auto model = random_model(narrow, 25);
  const std::vector<std::uint32_t> ids = random_ids(300, narrow.tokens(), 26);
  CHECK_ERROR_CONTAINS(cuda_evaluate_loss(weights_of(*model), ids, narrow.context, GpuPrecision::bf16),
                       "this model's is 32 (n_embd 64 / n_head 2); use --precision fp32");
  CHECK_ERROR_CONTAINS(cuda_evaluate_loss(weights_of(*model), ids, narrow.context + 1, GpuPrecision::fp32),
                       "eval: window of 97 tokens outside 1..96");
  std::vector<std::uint32_t> bad = ids;
  bad[100] = 5000;
  CHECK_ERROR_CONTAINS(cuda_evaluate_loss(weights_of(*model), bad, narrow.context, GpuPrecision::fp32), "5000");
}

namespace {

const char* const kConfig = R"([corpus]
name = "x"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[corpus.sources]]
url = "file://x.txt"

[tokenizer]
vocab_size = 301

[model]
n_layer = 2
n_embd = 128
n_head = 2
context = 96

[bench]
reps = 2
max_length = 40
)";

// The rows of each device, in the file's order.
std::vector<std::string> devices_of(const CsvTable& t) {
  std::vector<std::string> out;
  for (const auto& row : t.rows) out.push_back(row[t.column("device")]);
  return out;
}

// A directory as `make bench` leaves it for the config above: its checkpoint in OUT.
struct BenchDir {
  TempDir dir{"minitx-test-cuda-bench"};
  fs::path config = dir.path() / "gpu.toml", out = dir.path() / "out";
  BenchDir() {
    write_file_atomic(config, kConfig);
    fs::create_directories(out);
    ModelConfig m = base_config();
    m.init_std = 0.02;
    write_model(out / "model.ckpt", m, random_model(m, 27)->storage);
  }
};

}  // namespace

GPU_TEST_CASE("cuda bench generate: --device auto writes the CPU's rows, then the GPU's, and they parse back") {
  BenchDir d;
  Args bench("bench generate", {"--config", d.config.string(), "--out", d.out.string(), "--device", "auto", "--quiet"});
  CHECK(cli::run_bench_generate(bench) == 0);
  const CsvTable table = read_csv(d.out / "bench.csv");
  CHECK(table.header.front() == "device");
  CHECK(devices_of(table) == std::vector<std::string>{"cpu", "cpu", "cuda", "cuda"});  // lengths 32 and 40
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    CHECK(table.number(r, table.column("length")) == (r % 2 == 0 ? 32 : 40));
    CHECK(table.number(r, table.column("cached_ms_per_token")) > 0);
    CHECK(table.number(r, table.column("speedup")) > 0);
  }
  const CsvTable positions = read_csv(d.out / "bench_positions.csv");
  const std::vector<std::string> devices = devices_of(positions);
  REQUIRE(devices.size() == 80);
  CHECK(std::count(devices.begin(), devices.begin() + 40, "cpu") == 40);
  CHECK(std::count(devices.begin() + 40, devices.end(), "cuda") == 40);
  CHECK(positions.number(79, positions.column("position")) == 40);
}

GPU_TEST_CASE("cuda bench quant: --speed with --device auto adds the GPU's rows, with their floor") {
  BenchDir d;
  Args quant("bench quant", {"--config", d.config.string(), "--out", d.out.string(), "--random", "--reps", "1",
                             "--device", "auto", "--formats", "f32,q8_0,q4_0", "--speed", (d.out / "times.csv").string(),
                             "--quiet"});
  CHECK(cli::run_bench_quant(quant) == 0);
  const CsvTable times = read_csv(d.out / "times.csv");
  REQUIRE(devices_of(times) == std::vector<std::string>{"cpu", "cpu", "cpu", "cuda", "cuda", "cuda"});
  const std::size_t floor = times.column("floor_tok_s"), threads = times.column("threads"), depth = times.column("depth"),
                    gen = times.column("gen_tokens");
  for (std::size_t r = 0; r < times.rows.size(); ++r) {
    const bool gpu = r >= 3;
    INFO("row " << r);
    CHECK(times.rows[r][floor].empty() == !gpu);
    CHECK(times.rows[r][threads].empty() == gpu);
    // The GPU decodes after a 16-token prompt what the context of 96 leaves: 80 tokens.
    CHECK(times.number(r, depth) == (gpu ? 16 : 1));
    CHECK(times.number(r, gen) == (gpu ? 80 : 95));
    if (gpu) CHECK(times.number(r, floor) > times.number(r, times.column("decode_tok_s")));
  }
  // Speedups are over the same device's fp32 row.
  CHECK(times.number(3, times.column("decode_speedup")) == 1.0);
}
