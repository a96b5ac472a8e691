// Training: overfitting, exact resume, thread-count independence, the NaN stop, checkpoints
// and their error paths, the learning-rate schedule.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/sha256.h"
#include "minitx/core/threads.h"
#include "minitx/model/block.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"
#include "minitx/model/load.h"
#include "minitx/model/params.h"
#include "minitx/model/train.h"
#include "minitx/model/train_engine.h"

using namespace minitx;

namespace {

const std::string kTokHash(64, 'a');

ModelConfig small_model(std::size_t vocab) {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 32;
  m.n_head = 2;
  m.context = 16;
  m.vocab_size = vocab;
  return m;
}

TrainConfig small_train(std::size_t steps) {
  TrainConfig t;
  t.batch_size = 4;
  t.steps = steps;
  t.learning_rate = 3e-3;
  t.warmup_steps = 3;
  t.eval_every = 4;
  t.eval_batches = 2;
  t.checkpoint_every = 5;
  t.seed = 7;
  return t;
}

std::vector<std::uint32_t> random_stream(std::size_t n, std::uint32_t vocab, std::uint64_t stream) {
  const CounterRng rng(3, stream);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

struct Run {
  std::string checkpoint, log;
  TrainSummary summary;
};

Run run_training(const fs::path& dir, const ModelConfig& m, const TrainConfig& t, const std::vector<std::uint32_t>& data,
                 TrainOptions options = {}) {
  TrainInputs in{&data, &data, kTokHash, std::string(64, 'b')};
  TrainOutputs out{dir / "model.ckpt", dir / "train_log.csv", dir / "train_times.csv", dir / "train_device.json",
                   dir / "resume"};
  options.progress = false;
  Run r;
  r.summary = train_model(m, t, in, out, options);
  // A run stopped early leaves no outputs, only its resume state.
  if (fs::exists(out.checkpoint)) r.checkpoint = read_file(out.checkpoint);
  if (fs::exists(out.log)) r.log = read_file(out.log);
  return r;
}

}  // namespace

TEST_CASE("learning rate: warmup, cosine, floor") {
  TrainConfig t;
  t.learning_rate = 1.0;
  t.min_lr_fraction = 0.1;
  t.warmup_steps = 10;
  t.steps = 110;
  CHECK(learning_rate_at(t, 0) == doctest::Approx(0.1));
  CHECK(learning_rate_at(t, 9) == doctest::Approx(1.0));
  CHECK(learning_rate_at(t, 10) == doctest::Approx(1.0));
  CHECK(learning_rate_at(t, 109) == doctest::Approx(0.1));
  CHECK(learning_rate_at(t, 59) == doctest::Approx(0.55).epsilon(0.02));
}

TEST_CASE("a tiny model overfits a short repeated sequence") {
  TempDir dir;
  // every token has one successor, so even the first position of a window is predictable
  const std::vector<std::uint32_t> pattern = {1, 5, 2, 7, 3, 0, 6, 4};
  std::vector<std::uint32_t> data;
  for (int i = 0; i < 40; ++i) data.insert(data.end(), pattern.begin(), pattern.end());
  TrainConfig t = small_train(150);
  t.learning_rate = 1e-2;
  t.weight_decay = 0.0;
  t.eval_every = 50;
  t.checkpoint_every = 1000;
  const Run r = run_training(dir.path(), small_model(8), t, data);
  CHECK(r.summary.train_loss < 0.05);
  CHECK(r.summary.val_loss < 0.05);
  CHECK(read_file(dir.path() / "train_device.json") == "{\n  \"device\": \"cpu\",\n  \"precision\": \"fp32\"\n}\n");
}

TEST_CASE("train refuses an unknown device or a precision the device lacks, naming it, and writes nothing") {
  TempDir dir;
  const auto data = random_stream(3000, 40, 4);
  TrainOptions tpu;
  tpu.device = "tpu";
  CHECK_ERROR_CONTAINS(run_training(dir.path(), small_model(40), small_train(2), data, tpu),
                       "device 'tpu' is not one of cpu, cuda");
  TrainOptions bf16;
  bf16.precision = "bf16";
  CHECK_ERROR_CONTAINS(run_training(dir.path(), small_model(40), small_train(2), data, bf16),
                       "precision 'bf16' on the cpu; the cpu trains in fp32 only");
  CHECK_FALSE(fs::exists(dir.path() / "model.ckpt"));
  CHECK_FALSE(fs::exists(dir.path() / "train_device.json"));
}

TEST_CASE("resuming from a checkpoint reproduces the uninterrupted run bit for bit") {
  TempDir a, b;
  const auto data = random_stream(3000, 40, 1);
  const ModelConfig m = small_model(40);
  const TrainConfig t = small_train(12);
  const Run full = run_training(a.path(), m, t, data);
  TrainOptions stop;
  stop.stop_after = 7;
  const Run part = run_training(b.path(), m, t, data, stop);
  CHECK(part.checkpoint.empty());  // stopped early: no output, only the resume state
  CHECK(read_checkpoint(b.path() / "resume" / "model.ckpt").step == 7);
  CHECK_FALSE(fs::exists(b.path() / "model.ckpt"));
  TrainOptions resume;
  resume.resume = b.path() / "resume" / "model.ckpt";
  const Run rest = run_training(b.path(), m, t, data, resume);
  CHECK(rest.checkpoint == full.checkpoint);
  CHECK(rest.log == full.log);
  CHECK_FALSE(fs::exists(b.path() / "resume"));  // the finished run leaves no resume state
  CHECK(full.log.rfind("step,lr,train_loss,val_loss\n", 0) == 0);
}

TEST_CASE("a resume whose log is corrupt is a named error with the file and line, not 'internal error: stoull'") {
  TempDir dir;
  const auto data = random_stream(3000, 40, 1);
  TrainOptions stop;
  stop.stop_after = 3;
  run_training(dir.path(), small_model(40), small_train(6), data, stop);
  const fs::path log = dir.path() / "resume" / "train_log.csv";
  REQUIRE(fs::exists(log));
  TrainOptions resume;
  resume.resume = dir.path() / "resume" / "model.ckpt";
  for (const std::string& bad : {std::string("seven"), std::string(""), std::string("3x"), std::string(200, '9')}) {
    CAPTURE(bad);
    write_file_atomic(log, "step,lr,train_loss,val_loss\n1,0.1,2.0,\n\n" + bad + ",0.1,2.0,\n");
    CHECK_ERROR_CONTAINS(run_training(dir.path(), small_model(40), small_train(6), data, resume),
                         log.string() + ":4: the step '" + excerpt(bad) + "' is not a whole number, so the file is corrupt");
  }
  CHECK_FALSE(fs::exists(dir.path() / "model.ckpt"));
}

TEST_CASE("training is bit-identical for 1 and 2 threads") {
  TempDir a, b;
  const auto data = random_stream(3000, 40, 2);
  const int saved = thread_count();
  set_thread_count(1);
  const Run one = run_training(a.path(), small_model(40), small_train(4), data);
  set_thread_count(2);
  const Run two = run_training(b.path(), small_model(40), small_train(4), data);
  set_thread_count(saved);
  CHECK(one.checkpoint == two.checkpoint);
  CHECK(one.log == two.log);
}

TEST_CASE("a loss that stops being finite stops training, keeps the last checkpoint and writes no output") {
  TempDir dir;
  const auto data = random_stream(3000, 40, 3);
  TrainConfig t = small_train(10);
  t.learning_rate = 1e38;  // the first update overflows the parameters
  t.warmup_steps = 0;
  t.checkpoint_every = 1;
  t.grad_clip = 0;
  CHECK_ERROR_CONTAINS(run_training(dir.path(), small_model(40), t, data), "The last checkpoint, of step 1, is");
  CHECK(read_checkpoint(dir.path() / "resume" / "model.ckpt").step == 1);
  for (const char* output : {"model.ckpt", "train_log.csv", "train_times.csv", "train_device.json"})
    CHECK_FALSE(fs::exists(dir.path() / output));
}

TEST_CASE("checkpoint round trip and rejected files") {
  TempDir dir;
  const ModelConfig m = small_model(40);
  Checkpoint ck{m, kTokHash, std::string(64, 'c'), 42, "cpu", "fp32", std::vector<float>(param_count(m)), {}, {}};
  for (std::size_t i = 0; i < ck.params.size(); ++i) ck.params[i] = static_cast<float>(i) * 0.5f;
  const fs::path path = dir.path() / "model.ckpt";
  write_checkpoint(path, ck);
  const Checkpoint back = read_checkpoint(path);
  CHECK(back.step == 42);
  CHECK(back.params == ck.params);
  CHECK(back.tokenizer_sha256 == kTokHash);
  CHECK(back.train_sha256 == std::string(64, 'c'));
  CHECK(back.m.empty());
  const std::string good = read_file(path);
  // `resign` recomputes the checksum over the changed header, as a deliberate forger would: the
  // field checks behind the checksum must still hold.
  const std::size_t header = static_cast<unsigned char>(good[12]) | static_cast<std::size_t>(static_cast<unsigned char>(good[13])) << 8;
  auto write_bad = [&](std::string bad, bool resign) {
    if (resign) {
      Sha256 hash;
      hash.update(bad.data(), header);
      hash.update(bad.data() + header + 32, bad.size() - header - 32);
      const Digest d = hash.finish();
      std::copy(d.begin(), d.end(), bad.begin() + static_cast<std::ptrdiff_t>(header));
    }
    write_file_atomic(dir.path() / "bad.ckpt", bad);
    return dir.path() / "bad.ckpt";
  };
  auto corrupt = [&](std::size_t at, char value, bool resign = false) {
    std::string bad = good;
    bad[at] = value;
    return write_bad(bad, resign);
  };
  auto edit = [&](const std::string& from, const std::string& to, bool resign = true) {
    std::string bad = good;
    REQUIRE(bad.find(from) != std::string::npos);
    bad.replace(bad.find(from), from.size(), to);
    return write_bad(bad, resign);
  };
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(0, 'X')), "wrong magic");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(8, 9)), "version 9");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(8, 1)), "format version 1 (GPT-2 only");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(good.size() - 1, 'Z')), "checksum");
  // Every header field is under the checksum: a changed step, hash or architecture is caught.
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(16, 43)), "checksum mismatch");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(60, 'f')), "checksum mismatch");
  CHECK_ERROR_CONTAINS(read_checkpoint(edit("rotary_fraction 1\n", "rotary_fraction 0\n", false)), "checksum mismatch");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(24, 1, true)), "parameters");
  CHECK_ERROR_CONTAINS(read_checkpoint(edit("n_head 2\n", "n_head 3\n")), "not a multiple");
  CHECK_ERROR_CONTAINS(read_checkpoint(edit("device cpu", "device gpu")), "device 'gpu' in the header");
  CHECK_ERROR_CONTAINS(read_checkpoint(edit("bias 1", "bias 7")), "bias = '7': expected 0 or 1");
  CHECK_ERROR_CONTAINS(read_checkpoint(corrupt(12, 100, true)), "header size");
  write_file_atomic(dir.path() / "short.ckpt", good.substr(0, good.size() - 4));
  CHECK_ERROR_CONTAINS(read_checkpoint(dir.path() / "short.ckpt"), "truncated");
  write_file_atomic(dir.path() / "tiny.ckpt", good.substr(0, 10));
  CHECK_ERROR_CONTAINS(read_checkpoint(dir.path() / "tiny.ckpt"), "too short");
  CHECK_ERROR_CONTAINS(read_checkpoint(dir.path() / "missing.ckpt"), "missing.ckpt");
}

TEST_CASE("resume refuses a checkpoint that does not fit") {
  TempDir dir;
  const auto data = random_stream(3000, 40, 4);
  TrainOptions stop;
  stop.stop_after = 2;
  run_training(dir.path(), small_model(40), small_train(4), data, stop);
  TrainOptions resume;
  resume.resume = dir.path() / "resume" / "model.ckpt";
  ModelConfig wider = small_model(40);
  wider.n_embd = 64;
  CHECK_ERROR_CONTAINS(run_training(dir.path(), wider, small_train(4), data, resume), "does not fit the config");
  TrainInputs in{&data, &data, std::string(64, 'e'), std::string(64, 'b')};
  TrainOutputs out{dir.path() / "x.ckpt", dir.path() / "x.csv", {}, {}, {}};
  TrainOptions quiet = resume;
  quiet.progress = false;
  CHECK_ERROR_CONTAINS(train_model(small_model(40), small_train(4), in, out, quiet), "tokenizer");
  // What make's reruns ask for: a resume state of another configuration is set aside, and the
  // run starts over and finishes.
  TrainOptions if_fits = resume;
  if_fits.resume_if_fits = true;
  const Run over = run_training(dir.path(), wider, small_train(4), data, if_fits);
  CHECK(read_checkpoint(dir.path() / "model.ckpt").step == 4);
  CHECK(read_checkpoint(dir.path() / "model.ckpt").config.n_embd == 64);
  CHECK_FALSE(over.log.empty());
}

TEST_CASE("a checkpoint must fit the config and the tokenizer it is used with") {
  TempDir dir;
  const ModelConfig m = small_model(40);
  const Checkpoint ck{m, kTokHash, {}, 3, "cpu", "fp32", std::vector<float>(param_count(m), 0.5f), {}, {}};
  write_checkpoint(dir.path() / "model.ckpt", ck);
  Checkpoint header;
  const auto model = load_model(dir.path() / "model.ckpt", m, "x.toml", &header);
  CHECK(model->storage == ck.params);
  CHECK(header.step == 3);
  CHECK(header.params.empty());
  ModelConfig deeper = m;
  deeper.n_layer = 3;
  CHECK_ERROR_CONTAINS(load_model(dir.path() / "model.ckpt", deeper, "x.toml"), "does not fit [model] in x.toml");
  CHECK_NOTHROW(check_tokenizer_fits(header, dir.path() / "model.ckpt", 40, kTokHash, "val.bin"));
  CHECK_ERROR_CONTAINS(check_tokenizer_fits(header, dir.path() / "model.ckpt", 41, kTokHash, "val.bin"),
                       "vocabulary of 40 tokens, but val.bin has 41");
  CHECK_ERROR_CONTAINS(check_tokenizer_fits(header, dir.path() / "model.ckpt", 40, std::string(64, 'f'), "val.bin"),
                       "trained with the tokenizer");
}

namespace {

// The bytes of a checkpoint `good` with its description edited and its parameter count set, the
// checksum recomputed: what someone who knows the format could write.
std::string forge_checkpoint(const std::string& good, const std::vector<std::pair<std::string, std::string>>& edits,
                             std::uint64_t count) {
  std::uint32_t header = 0, text_bytes = 0;
  std::memcpy(&header, good.data() + 12, 4);
  std::memcpy(&text_bytes, good.data() + 44, 4);
  std::string text = good.substr(160, text_bytes);
  for (const auto& [from, to] : edits) {
    REQUIRE(text.find(from) != std::string::npos);
    text.replace(text.find(from), from.size(), to);
  }
  std::string head = good.substr(0, 160) + text;
  head.resize((head.size() + 7) / 8 * 8, '\0');
  const auto new_header = static_cast<std::uint32_t>(head.size()), new_text = static_cast<std::uint32_t>(text.size());
  std::memcpy(head.data() + 12, &new_header, 4);
  std::memcpy(head.data() + 24, &count, 8);
  std::memcpy(head.data() + 44, &new_text, 4);
  const std::string payload = good.substr(header + 32);
  Sha256 hash;
  hash.update(head.data(), head.size());
  hash.update(payload.data(), payload.size());
  const Digest digest = hash.finish();
  return head + std::string(reinterpret_cast<const char*>(digest.data()), digest.size()) + payload;
}

}  // namespace

TEST_CASE("a checkpoint whose header claims a model bigger than its payload is refused before allocating") {
  TempDir dir;
  const ModelConfig m = small_model(40);
  write_checkpoint(dir.path() / "good.ckpt", {m, kTokHash, {}, 1, "cpu", "fp32", std::vector<float>(param_count(m)), {}, {}});
  const std::string good = read_file(dir.path() / "good.ckpt");
  const auto forged = [&](const std::vector<std::pair<std::string, std::string>>& edits, std::uint64_t count) {
    write_file_atomic(dir.path() / "forged.ckpt", forge_checkpoint(good, edits, count));
    return dir.path() / "forged.ckpt";
  };
  REQUIRE(read_checkpoint(forged({}, param_count(m))).params.size() == param_count(m));  // the forger's bytes are valid
  // 4096 layers of width 65536: 211 trillion parameters claimed, with 109,056 bytes of payload.
  ModelConfig huge = m;
  huge.n_layer = 4096;
  huge.n_embd = 65536;
  huge.ffn = 262144;
  const std::vector<std::pair<std::string, std::string>> to_huge = {
      {"n_layer 2\n", "n_layer 4096\n"}, {"n_embd 32\n", "n_embd 65536\n"}, {"ffn 128\n", "ffn 262144\n"}};
  CHECK_ERROR_CONTAINS(read_checkpoint(forged(to_huge, param_count(huge))),
                       fmt::format("payload of {} bytes does not match {} parameters", param_count(m) * 4, param_count(huge)));
  CHECK_ERROR_CONTAINS(read_checkpoint(forged(to_huge, param_count(m))),
                       fmt::format("header says {} parameters, the model shape needs {}", param_count(m), param_count(huge)));
  CHECK_ERROR_CONTAINS(read_checkpoint(forged({{"n_layer 2\n", "n_layer 4097\n"}}, param_count(m))),
                       "is beyond the sizes minitx accepts");
  CHECK_ERROR_CONTAINS(read_checkpoint(forged({{"n_layer 2\n", "n_layer 2147483648\n"}}, param_count(m))),
                       "n_layer = '2147483648': expected a whole number up to 2^30");
}

namespace {
// What the GPU engine allocates besides its scratch, with Act of the precision's size
// (std::uint16_t stands for bf16: block.h's layout only needs its size).
template <class Act>
double gpu_engine_bytes(const ModelConfig& m, std::size_t B, std::size_t T, bool bf16) {
  BlockActivations<Act> acts;
  BlockGradients<Act> grads;
  const double P = static_cast<double>(param_count(m)), BT = static_cast<double>(B * T);
  const double rows = static_cast<double>(std::min<std::size_t>(B * T, m.vocab_size));
  return 16 * P + (bf16 ? 2 * P : 0) + static_cast<double>(bind_activations(acts, nullptr, m, B, T, true, B * m.n_head * T)) +
         static_cast<double>(bind_gradients(grads, nullptr, m, B, T)) +
         BT * static_cast<double>(m.vocab_size) * sizeof(Act) +  // the logits
         BT * 4 * 3 +                                              // losses, ids, targets
         (rows * 2 + 1 + BT) * 4;                                  // embed_backward's token rows
}
}  // namespace

TEST_CASE("the gpu trainer's memory estimate is what it allocates, and a run that does not fit is refused") {
  ModelConfig dense = small_model(40);
  ModelConfig neox = small_model(40);
  neox.parallel_residual = true;
  neox.tied_head = false;
  neox.position = ModelConfig::Position::rotary;
  neox.ffn = 96;
  for (const ModelConfig& m : {dense, neox}) {
    const std::size_t B = 4, T = 16;  // B·T a multiple of 64: no buffer is rounded up
    const TrainingMemory fp32 = cuda_training_memory(m, "fp32", B, T, 1000.0);
    CHECK(fp32.total() == gpu_engine_bytes<float>(m, B, T, false) + 1000.0);
    CHECK(fp32.state == 16.0 * static_cast<double>(param_count(m)));
    CHECK(fp32.occasional == 0.0);
    const TrainingMemory bf16 = cuda_training_memory(m, "bf16", B, T, 0.0);
    CHECK(bf16.total() == gpu_engine_bytes<std::uint16_t>(m, B, T, true));
    CHECK(bf16.state == 18.0 * static_cast<double>(param_count(m)));
  }
  // A figure, not an overflow, far past any GPU.
  ModelConfig huge = small_model(50304);
  huge.n_layer = 256;
  huge.n_embd = 16384;
  huge.n_head = 128;
  huge.context = 1024;
  const TrainingMemory need = cuda_training_memory(huge, "bf16", 8, 1024, 0.0);
  CHECK(need.state == 18.0 * static_cast<double>(param_count(huge)));
  CHECK(need.total() > 1e13);

  const TrainingMemory small = cuda_training_memory(dense, "fp32", 4, 16, 0.0);
  const auto fits = static_cast<std::uint64_t>(small.total());
  check_gpu_memory(small, fits, fits * 2, "GPU 0 (test)", dense, "fp32", 4, 16);  // exactly enough
  const std::uint64_t gib = std::uint64_t{1} << 30;
  CHECK_ERROR_CONTAINS(check_gpu_memory(need, 139 * gib, 140 * gib, "GPU 0 (NVIDIA H200)", huge, "bf16", 8, 1024),
                       fmt::format("train: training this model on GPU 0 (NVIDIA H200) in bf16 needs {:.1f} GiB of GPU "
                                   "memory, and 139.0 GiB of its 140.0 GiB are free ({:.1f} GiB for its {} parameters "
                                   "with their gradients and AdamW moments and their bf16 copy, {:.1f} GiB for the "
                                   "activations, logits and scratch of a batch of 8 × 1024); make [model] smaller",
                                   need.total() / gib, need.state / gib, param_count(huge), need.step / gib));
  CHECK_ERROR_CONTAINS(check_gpu_memory(small, fits - 1, fits * 2, "GPU 1 (test)", dense, "fp32", 4, 16),
                       "train: training this model on GPU 1 (test) in fp32 needs 0.0 GiB of GPU memory");
}

TEST_CASE("the cpu trainer's memory estimate is what it allocates") {
  ModelConfig dense = small_model(40);
  ModelConfig neox = small_model(40);
  neox.parallel_residual = true;
  neox.tied_head = false;
  neox.position = ModelConfig::Position::rotary;
  neox.ffn = 96;
  for (const ModelConfig& m : {dense, neox}) {
    // B·T a multiple of 64, so that no buffer is rounded up to 256 bytes and the sums are exact.
    const std::size_t B = 4, T = 16;
    const TrainingMemory need = cpu_training_memory(m, B, T);
    const GptActivations acts(m, B, T, true);
    const BackwardBuffers backward(m, B, T);
    const double floats = static_cast<double>(acts.storage.size() + backward.storage.size() + backward.datt.size() +
                                              B * T * m.vocab_size + B * T);
    CHECK(need.step == (floats + 3.0 * B * T) * 4);  // and three id buffers of B·T
    CHECK(need.state == 16.0 * static_cast<double>(param_count(m)));
    CHECK(need.occasional == 12.0 * static_cast<double>(param_count(m)));  // the checkpoint's copy
    CHECK(need.total() == need.state + need.step + need.occasional);
  }
}
