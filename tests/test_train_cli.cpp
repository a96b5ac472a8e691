// The model commands end to end at toy sizes: bench gemm, bench train and bench decode write
// their CSVs; train, eval, bench generate and generate run on token files made in memory.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../src/cli/args.h"
#include "../src/cli/commands.h"
#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/data/token_file.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/params.h"

using minitx::cli::Args;
namespace fs = std::filesystem;

namespace {

const char* const kConfig = R"([corpus]
name = "x"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[corpus.sources]]
url = "file://x.txt"

[tokenizer]
vocab_size = 300

[model]
n_layer = 1
n_embd = 16
n_head = 2
context = 40

[train]
batch_size = 2
steps = 4
learning_rate = 1e-3
eval_every = 2
eval_batches = 1
checkpoint_every = 2

[bench]
reps = 2
max_length = 40
)";

}  // namespace

TEST_CASE("bench gemm and bench train write their tables beside the peer's numbers") {
  minitx::TempDir dir;
  minitx::write_file_atomic(dir.path() / "peer.log",
                            "sgemm n=32 threads=1 gflops=2.0\ntrain tiny-2L64 params=1 B=8 T=64 threads=2 step_ms=1 tok_s=100\n");
  Args gemm("bench gemm", {"--sizes", "32,40", "--threads", "1", "--isa", "avx2", "--seconds", "0.01", "--torch-log",
                           (dir.path() / "peer.log").string(), "--output", (dir.path() / "gemm.csv").string()});
  CHECK(minitx::cli::run_bench_gemm(gemm) == 0);
  const std::string csv = minitx::read_file(dir.path() / "gemm.csv");
  CHECK(csv.rfind("n,threads,isa,gflops,max_abs_error,torch_gflops,ratio\n32,1,avx2,", 0) == 0);
  CHECK(csv.find(",2.0,") != std::string::npos);
  Args train("bench train", {"--shapes", "tiny-2L64", "--steps", "1", "--torch-log", (dir.path() / "peer.log").string(),
                             "--output", (dir.path() / "train.csv").string()});
  CHECK(minitx::cli::run_bench_train(train) == 0);
  const std::string train_csv = minitx::read_file(dir.path() / "train.csv");
  CHECK(train_csv.rfind("shape,device,precision,params,batch,seq,threads,step_ms,tokens_per_s,mfu,torch_tokens_per_s,ratio,", 0) == 0);
  CHECK(train_csv.find("\ntiny-2L64,cpu,fp32,136960,8,64,") != std::string::npos);
  CHECK(train_csv.find(",100,") != std::string::npos);  // the peer's figure beside ours
  CHECK(train_csv.find(",dense,1.0000\n") != std::string::npos);
  // --config: the config's own model, its attention pattern and that pattern's density at T.
  minitx::write_file_atomic(dir.path() / "sparse.toml", R"([corpus]
name = "x"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
bytes = 1
[[corpus.sources]]
url = "npm:x@1.0.0"
paths = ["x.txt"]
[tokenizer]
vocab_size = 300
[model]
n_layer = 1
n_embd = 32
n_head = 2
context = 64
[model.attention]
pattern = "local"
block = 16
window = 1
[train]
batch_size = 2
steps = 10
learning_rate = 0.001
)");
  Args sparse("bench train", {"--config", (dir.path() / "sparse.toml").string(), "--steps", "1", "--output",
                              (dir.path() / "sparse.csv").string()});
  CHECK(minitx::cli::run_bench_train(sparse) == 0);
  const std::string sparse_csv = minitx::read_file(dir.path() / "sparse.csv");
  // 4 diagonal blocks of the 10 causal ones; 300 tokens of vocabulary from [tokenizer].
  CHECK(sparse_csv.find("\nsparse,cpu,fp32,") != std::string::npos);
  CHECK(sparse_csv.find(",2,64,") != std::string::npos);
  CHECK(sparse_csv.find(",local,0.4000\n") != std::string::npos);
  Args both("bench train", {"--config", (dir.path() / "sparse.toml").string(), "--shapes", "tiny-2L64"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_train(both), "--shapes and --config exclude each other");
  // torch_peers.py's JSON: eager and compile figures by shape name; a row with an error is skipped.
  minitx::write_file_atomic(dir.path() / "peers.json",
                            R"({"train": [{"model": "tiny-2L64", "mode": "eager", "tok_s": 50},
                                          {"model": "tiny-2L64", "mode": "compile", "tok_s": 80},
                                          {"model": "tiny-2L64", "mode": "x", "error": "no GPU"}]})");
  Args json("bench train", {"--shapes", "tiny-2L64", "--steps", "1", "--torch-json", (dir.path() / "peers.json").string(),
                            "--output", (dir.path() / "train2.csv").string()});
  CHECK(minitx::cli::run_bench_train(json) == 0);
  const std::string json_csv = minitx::read_file(dir.path() / "train2.csv");
  CHECK(json_csv.find(",50,") != std::string::npos);
  CHECK(json_csv.find(",80,") != std::string::npos);
  minitx::write_file_atomic(dir.path() / "bad.json", R"({"train": [{"model": "tiny-2L64", "mode": "eager", "tok_s": "fast"}]})");
  Args bad_json("bench train", {"--shapes", "tiny-2L64", "--steps", "1", "--torch-json", (dir.path() / "bad.json").string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_train(bad_json),
                       (dir.path() / "bad.json").string() + ": a train row needs model and mode (strings) and tok_s (a number)");
  Args bad_device("bench train", {"--device", "tpu"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_train(bad_device), "--device tpu: expected auto, cpu or cuda");
  minitx::write_file_atomic(dir.path() / "bad.log", "sgemm n=32\ntrain tiny-2L64 params=1 tok_s=fast\n");
  Args bad_log("bench train", {"--shapes", "tiny-2L64", "--steps", "1", "--torch-log", (dir.path() / "bad.log").string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_train(bad_log),
                       (dir.path() / "bad.log").string() + ":2: tok_s= expects a number of tokens per second, got 'fast'");
  Args bad("bench gemm", {"--sizes", "0"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_gemm(bad), "--sizes expects numbers");
  Args bad_isa("bench gemm", {"--isa", "sse2"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_gemm(bad_isa), "--isa expects avx2 and/or avx512");
}

TEST_CASE("model commands on a toy config: train, eval, bench generate, bench decode, errors") {
  minitx::TempDir dir;
  const fs::path config = dir.path() / "toy.toml", out = dir.path() / "out";
  minitx::write_file_atomic(config, kConfig);
  fs::create_directories(out);
  const minitx::CounterRng rng(1, 0);
  std::vector<std::uint32_t> ids(600);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::uint32_t>(rng.below(i, 300));
  const std::string sha(64, 'a');
  minitx::write_token_file(out / "train.bin", {300, sha, ids});
  minitx::write_token_file(out / "val.bin", {300, sha, std::vector<std::uint32_t>(ids.begin(), ids.begin() + 200)});
  const std::string c = config.string(), o = out.string();

  Args train("train", {"--config", c, "--out", o, "--quiet"});
  CHECK(minitx::cli::run_train(train) == 0);
  CHECK(minitx::read_checkpoint(out / "model.ckpt").step == 4);
  CHECK(minitx::read_file(out / "train_log.csv").find("\n4,") != std::string::npos);
  // Resuming a finished run runs no step: the checkpoint and the log stay byte for byte.
  const std::string checkpoint_bytes = minitx::read_file(out / "model.ckpt"), log_bytes = minitx::read_file(out / "train_log.csv");
  Args resume("train", {"--config", c, "--out", o, "--quiet", "--resume"});
  CHECK(minitx::cli::run_train(resume) == 0);
  CHECK(minitx::read_file(out / "model.ckpt") == checkpoint_bytes);
  CHECK(minitx::read_file(out / "train_log.csv") == log_bytes);
  // Simulated ranks share a step's micro-batches; --gpus are GPUs, never the cpu.
  Args ranks("train", {"--config", c, "--out", o, "--quiet", "--restart", "--simulate-ranks", "2"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(ranks), "2 ranks do not divide [train] micro_batches = 1");
  Args gpus_on_cpu("train", {"--config", c, "--out", o, "--quiet", "--restart", "--device", "cpu", "--gpus", "2"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(gpus_on_cpu), "--gpus 2 trains on GPUs, not on the cpu");
  CHECK(minitx::read_file(out / "model.ckpt") == checkpoint_bytes);
  // With two micro-batches, two simulated ranks write one rank's checkpoint.
  const fs::path micro = dir.path() / "micro.toml";
  std::string micro_text = kConfig;
  micro_text.replace(micro_text.find("batch_size = 2\n"), 15, "batch_size = 2\nmicro_batches = 2\n");
  minitx::write_file_atomic(micro, micro_text);
  for (const char* n : {"1", "2"}) {
    const fs::path o_n = dir.path() / (std::string("ranks") + n);
    fs::create_directories(o_n);
    fs::copy_file(out / "train.bin", o_n / "train.bin");
    fs::copy_file(out / "val.bin", o_n / "val.bin");
    Args with_ranks("train", {"--config", micro.string(), "--out", o_n.string(), "--quiet", "--simulate-ranks", n});
    CHECK(minitx::cli::run_train(with_ranks) == 0);
  }
  CHECK(minitx::read_file(dir.path() / "ranks1" / "model.ckpt") == minitx::read_file(dir.path() / "ranks2" / "model.ckpt"));
  CHECK(minitx::read_file(dir.path() / "ranks1" / "model.ckpt") != checkpoint_bytes);  // another [train], another hash
  // --resume-from names the file it was given, whatever is wrong with it.
  const fs::path other = dir.path() / "elsewhere" / "other.ckpt";
  Args missing_from("train", {"--config", c, "--out", o, "--quiet", "--resume-from", other.string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(missing_from), other.string() + ": cannot open");
  minitx::Checkpoint wider = minitx::read_checkpoint(out / "model.ckpt");
  wider.tokenizer_sha256 = std::string(64, 'c');
  minitx::write_checkpoint(other, wider);
  Args mismatched_from("train", {"--config", c, "--out", o, "--quiet", "--resume-from", other.string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(mismatched_from),
                       other.string() + ": trained with tokenizer " + std::string(64, 'c') + ", but the token files come from tokenizer " + sha);
  CHECK(minitx::read_file(out / "model.ckpt") == checkpoint_bytes);
  // Token files of one tokenizer hash but two vocabulary sizes: said so, not the same hash twice.
  const fs::path split = dir.path() / "split";
  fs::create_directories(split);
  minitx::write_token_file(split / "train.bin", {300, sha, ids});
  minitx::write_token_file(split / "val.bin", {301, sha, ids});
  Args split_vocab("train", {"--config", c, "--out", split.string(), "--quiet"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(split_vocab),
                       (split / "train.bin").string() + " and " + (split / "val.bin").string() + " name the same tokenizer (" +
                           sha + ") but different vocabulary sizes (300 and 301)");
  minitx::write_token_file(split / "val.bin", {300, std::string(64, 'd'), ids});
  Args split_tokenizer("train", {"--config", c, "--out", split.string(), "--quiet"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_train(split_tokenizer), "come from different tokenizers (SHA-256 " + sha + " and " + std::string(64, 'd') + ")");
  CHECK_FALSE(fs::exists(split / "model.ckpt"));

  Args eval("eval", {"--config", c, "--out", o, "--batch-size", "3"});
  CHECK(minitx::cli::run_eval(eval) == 0);
  const std::string json = minitx::read_file(out / "eval.json");
  CHECK(json.find("\"tokens\": 199") != std::string::npos);
  CHECK(json.find("\"checkpoint_step\": 4") != std::string::npos);
  CHECK(json.find("\"window\": 40,\n  \"windows\": 5,\n") != std::string::npos);
  // The CPU's file keeps the fields of earlier releases; only a GPU's names its device.
  CHECK(json.find("device") == std::string::npos);
  const std::size_t loss_at = json.find("\"val_loss\": ");
  REQUIRE(loss_at != std::string::npos);
  const double loss = std::stod(json.substr(loss_at + 12));
  CHECK(loss == doctest::Approx(std::log(300.0)).epsilon(0.1));  // 4 steps from a near-uniform start

  // Weights holding NaN, or so large that exp(loss) overflows: an error, never `nan` or `inf` in the JSON.
  minitx::Checkpoint broken = minitx::read_checkpoint(out / "model.ckpt");
  broken.params[broken.params.size() / 2] = std::numeric_limits<float>::quiet_NaN();
  minitx::write_checkpoint(out / "nan.ckpt", broken);
  Args nan_eval("eval", {"--config", c, "--out", o, "--model", (out / "nan.ckpt").string(), "--output", (out / "nan.json").string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_eval(nan_eval),
                       (out / "nan.ckpt").string() + ": the validation loss over 199 tokens of " + (out / "val.bin").string() +
                           " is nan: the model's weights hold NaN or infinite values");
  CHECK_FALSE(fs::exists(out / "nan.json"));
  broken = minitx::read_checkpoint(out / "model.ckpt");
  for (float& p : broken.params) p *= 1000.0f;
  minitx::write_checkpoint(out / "huge.ckpt", broken);
  Args huge_eval("eval", {"--config", c, "--out", o, "--model", (out / "huge.ckpt").string(), "--output", (out / "huge.json").string()});
  CHECK_ERROR_CONTAINS(minitx::cli::run_eval(huge_eval), (out / "huge.json").string() + ": perplexity is inf, which JSON cannot hold");
  CHECK_FALSE(fs::exists(out / "huge.json"));

  Args bench("bench generate", {"--config", c, "--out", o, "--quiet"});
  CHECK(minitx::cli::run_bench_generate(bench) == 0);
  // --device defaults to cpu: the CPU's rows only, each led by its device.
  const std::string table = minitx::read_file(out / "bench.csv");
  CHECK(table.rfind("device,length,cached_ms_per_token,", 0) == 0);
  CHECK(table.find("\ncpu,32,") != std::string::npos);
  CHECK(table.find("\ncpu,40,") != std::string::npos);
  CHECK(table.find("\ncuda,") == std::string::npos);
  const std::string positions = minitx::read_file(out / "bench_positions.csv");
  CHECK(positions.rfind("device,position,cached_ms,recompute_ms\ncpu,1,", 0) == 0);

  Args decode("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--reps", "1", "--output",
                               (out / "decode.csv").string()});
  CHECK(minitx::cli::run_bench_decode(decode) == 0);
  const std::string decode_csv = minitx::read_file(out / "decode.csv");
  CHECK(decode_csv.rfind("test,tokens,threads,gemm_kernel,tokens_per_s,read_gb_per_s,ceiling_tokens_per_s,depth,"
                         "attention,kv_cache_bytes\npp,8,", 0) == 0);
  CHECK(decode_csv.find("\ntg,8,") != std::string::npos);
  // After a 20-token prompt; the dense cache holds the whole context: 2 (k, v) · 1 layer · 40 · 16 · 4 bytes.
  Args deep("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--depth", "20", "--reps", "1", "--output",
                             (out / "deep.csv").string()});
  CHECK(minitx::cli::run_bench_decode(deep) == 0);
  CHECK(minitx::read_file(out / "deep.csv").find(",20,dense,5120\n") != std::string::npos);
  Args too_deep("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--depth", "35"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_decode(too_deep), "--depth 35 + --gen 8 exceed the context of 40");
  // The prompt test and the decode test are separate runs: each must fit the context alone.
  Args too_long("bench decode", {"--config", c, "--prompt", "41", "--gen", "30"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_decode(too_long), "--prompt 41 exceeds the context of 40");
  Args cuda_only("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--quant", "q8_0"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_decode(cuda_only), "--quant q8_0 is for --device cuda");
  Args batch_cpu("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--batch", "2"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_decode(batch_cpu), "--batch 2 is for --device cuda");
  Args batch_17("bench decode", {"--config", c, "--prompt", "8", "--gen", "8", "--batch", "17"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_decode(batch_17), "--batch expects an integer from 1 to 16, got '17'");

  // The token files' tokenizer is not the checkpoint's: eval refuses, nothing is written.
  fs::remove(out / "eval.json");
  minitx::write_token_file(out / "val.bin", {300, std::string(64, 'b'), ids});
  Args mismatch("eval", {"--config", c, "--out", o});
  CHECK_ERROR_CONTAINS(minitx::cli::run_eval(mismatch), "with the tokenizer whose SHA-256 is");
  CHECK_FALSE(fs::exists(out / "eval.json"));
  Args missing_tokenizer("generate", {"--config", c, "--out", o, "--prompt", "hi"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_generate(missing_tokenizer), "tokenizer.json");
}

TEST_CASE("train refuses at once a model that needs more memory than the machine has, and writes nothing") {
  minitx::TempDir dir;
  const fs::path config = dir.path() / "huge.toml", out = dir.path() / "out";
  std::string text = kConfig;
  const std::string small = "n_layer = 1\nn_embd = 16\nn_head = 2\n";
  REQUIRE(text.find(small) != std::string::npos);
  text.replace(text.find(small), small.size(), "n_layer = 256\nn_embd = 16384\nn_head = 128\n");
  minitx::write_file_atomic(config, text);
  fs::create_directories(out);
  const std::vector<std::uint32_t> ids(600, 7);
  minitx::write_token_file(out / "train.bin", {300, std::string(64, 'a'), ids});
  minitx::write_token_file(out / "val.bin", {300, std::string(64, 'a'), ids});
  Args train("train", {"--config", config.string(), "--out", out.string(), "--quiet"});
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    minitx::cli::run_train(train);
  } catch (const minitx::Error& e) {
    message = e.what();
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  minitx::ModelConfig huge;
  huge.n_layer = 256;
  huge.n_embd = 16384;
  huge.n_head = 128;
  huge.context = 40;
  huge.vocab_size = 300;
  // About 12 TiB for the parameters, their gradients and the AdamW moments alone.
  CHECK_MESSAGE(message.rfind("train: training this model on the cpu needs 2", 0) == 0, message);
  CHECK_MESSAGE(message.find(" GiB are available (12288.9 GiB for its " + std::to_string(minitx::param_count(huge)) +
                             " parameters with their gradients and AdamW moments") != std::string::npos,
                message);
  std::vector<std::string> left;
  for (const auto& entry : fs::recursive_directory_iterator(out)) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"train.bin", "val.bin"});
}
