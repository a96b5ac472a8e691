#include "minitx/model/train.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/progress.h"
#include "minitx/core/rng.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"

namespace minitx {
namespace {

constexpr std::uint64_t kBatchStream = 0x62617463680000ULL;  // "batch"
const char* const kLogHeader = "step,lr,train_loss,val_loss\n";
const char* const kTimesHeader = "step,elapsed_s,tokens_per_s\n";

// Lines of a CSV we wrote earlier whose first field (the step) is at most `last`.
std::string csv_rows_up_to(const std::filesystem::path& path, const char* header, std::size_t last) {
  if (!std::filesystem::exists(path)) return header;
  const std::string text = read_file(path);
  std::string out = header;
  std::size_t at = text.find('\n');
  while (at != std::string::npos && at + 1 < text.size()) {
    const std::size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    if (!line.empty() && std::stoull(line.substr(0, line.find(','))) <= last) out += line + "\n";
    at = end;
  }
  return out;
}

}  // namespace

std::size_t batch_start(const TrainConfig& train, std::size_t step, std::size_t row, std::size_t n_tokens,
                        std::size_t T) {
  const CounterRng rng(train.seed, kBatchStream);
  return static_cast<std::size_t>(rng.below(step * train.batch_size + row, n_tokens - T));
}

TrainSummary train_model(const ModelConfig& config, const TrainConfig& tc, const TrainInputs& in,
                         const TrainOutputs& out, const TrainOptions& options) {
  config.validate("[model]");
  const std::size_t B = tc.batch_size, T = tc.seq_len == 0 ? config.context : tc.seq_len;
  MINITX_CHECK(T <= config.context, "[train] seq_len = {} exceeds the model's context of {}", T, config.context);
  const std::vector<std::uint32_t>& data = *in.train;
  MINITX_CHECK(data.size() > T + 1, "train: the training stream has {} tokens, fewer than one window of {}", data.size(),
               T + 1);
  MINITX_CHECK(in.val->size() > T + 1, "train: the validation stream has {} tokens, fewer than one window of {}",
               in.val->size(), T + 1);

  GptModel model(config);
  const std::size_t P = model.size();
  std::vector<float> grads(P), m(P, 0.0f), v(P, 0.0f);
  std::size_t step = 0;
  std::string log = kLogHeader, times = kTimesHeader;
  if (options.resume) {
    Checkpoint ck = read_checkpoint(*options.resume);
    const std::string name = options.resume->string();
    MINITX_CHECK(same_architecture(ck.config, config), "{}: the checkpoint's model ({}) does not fit the config ({})", name,
                 summarize_architecture(ck.config), summarize_architecture(config));
    MINITX_CHECK(ck.tokenizer_sha256 == in.tokenizer_sha256, "{}: trained with tokenizer {}, but the token files come from tokenizer {}",
                 name, ck.tokenizer_sha256, in.tokenizer_sha256);
    MINITX_CHECK(ck.train_sha256 == in.train_sha256, "{}: the [train] section changed since this checkpoint was written; resuming would not reproduce the run",
                 name);
    MINITX_CHECK(!ck.m.empty(), "{}: holds no optimizer state, so training can't resume from it", name);
    MINITX_CHECK(ck.step <= tc.steps, "{}: at step {}, beyond the {} steps configured", name, ck.step, tc.steps);
    model.storage = std::move(ck.params);
    m = std::move(ck.m);
    v = std::move(ck.v);
    step = ck.step;
    log = csv_rows_up_to(out.log, kLogHeader, step);
    times = csv_rows_up_to(out.times, kTimesHeader, step);
  } else {
    init_params(model.data(), config, tc.seed);
  }
  model.params = bind_params(model.data(), config);

  auto save = [&](std::size_t at_step) {
    Checkpoint ck{config, in.tokenizer_sha256, in.train_sha256, at_step, "cpu", "fp32", model.storage, m, v};
    write_checkpoint(out.checkpoint, ck);
    write_file_atomic(out.log, log);
    if (!out.times.empty()) write_file_atomic(out.times, times);
  };
  std::size_t last_saved = options.resume ? step : 0;
  const std::size_t end = options.stop_after != 0 ? std::min(options.stop_after, tc.steps) : tc.steps;

  GptTrainer trainer(model, B, T);
  std::vector<std::uint32_t> ids(B * T), targets(B * T);
  const auto tensors = param_tensors(config);
  TrainSummary summary;
  std::optional<Progress> progress;
  if (options.progress) progress.emplace("train", tc.steps, "steps");
  const auto start = std::chrono::steady_clock::now();
  std::size_t tokens = 0;
  for (; step < end; ++step) {
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t s0 = batch_start(tc, step, b, data.size(), T);
      std::copy(data.begin() + static_cast<std::ptrdiff_t>(s0), data.begin() + static_cast<std::ptrdiff_t>(s0 + T), ids.begin() + static_cast<std::ptrdiff_t>(b * T));
      std::copy(data.begin() + static_cast<std::ptrdiff_t>(s0 + 1), data.begin() + static_cast<std::ptrdiff_t>(s0 + T + 1), targets.begin() + static_cast<std::ptrdiff_t>(b * T));
    }
    const double loss = trainer.forward(ids.data(), targets.data());
    trainer.backward(grads.data());
    const double norm = std::sqrt(cpu::sum_of_squares(grads.data(), P));
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      write_file_atomic(out.log, log);
      fail("train: the {} became {} at step {}; stopping. {} was left as it was (step {})",
           std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? norm : loss, step + 1,
           out.checkpoint.string(), last_saved);
    }
    if (tc.grad_clip > 0 && norm > tc.grad_clip)
      cpu::scale_in_place(grads.data(), P, static_cast<float>(tc.grad_clip / norm));
    const double lr = learning_rate_at(tc, step);
    std::size_t off = 0;
    for (const ParamTensor& t : tensors) {
      const cpu::AdamWStep s{static_cast<float>(lr), static_cast<float>(tc.beta1), static_cast<float>(tc.beta2),
                             static_cast<float>(tc.eps), t.decay ? static_cast<float>(tc.weight_decay) : 0.0f,
                             step + 1};
      const std::size_t n = t.size(config.n_layer);
      cpu::adamw_update(model.data() + off, grads.data() + off, m.data() + off, v.data() + off, n, s);
      off += n;
    }
    tokens += B * T;
    const std::size_t done = step + 1;
    std::string val_field;
    if (done % tc.eval_every == 0 || done == tc.steps) {
      summary.val_loss = evaluate_loss(model, *in.val, T, B, tc.eval_batches * B).mean_loss();
      val_field = fmt::format("{:.6f}", summary.val_loss);
    }
    summary.train_loss = loss;
    log += fmt::format("{},{:.6e},{:.6f},{}\n", done, lr, loss, val_field);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.tokens_per_second = static_cast<double>(tokens) / elapsed;
    times += fmt::format("{},{:.3f},{:.1f}\n", done, elapsed, summary.tokens_per_second);
    if (progress)
      progress->update(done, fmt::format("loss {:.4f}{} | {:.0f} tok/s", loss,
                                        val_field.empty() ? "" : " val " + val_field, summary.tokens_per_second));
    if (done % tc.checkpoint_every == 0 || done == end) {
      save(done);
      last_saved = done;
    }
  }
  if (progress) progress->finish(fmt::format("loss {:.4f} val {:.4f}", summary.train_loss, summary.val_loss));
  summary.step = step;
  return summary;
}

}  // namespace minitx
