#include "minitx/model/train.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/build_info.h"
#include "minitx/core/error.h"
#include "minitx/core/fault.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"
#include "minitx/core/progress.h"
#include "minitx/core/rng.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/data_parallel.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#include "minitx/model/train_engine.h"

namespace minitx {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kBatchStream = 0x62617463680000ULL;  // "batch"
const char* const kLogHeader = "step,lr,train_loss,val_loss\n";
const char* const kTimesHeader = "step,elapsed_s,tokens_per_s\n";

// Lines of a CSV we wrote earlier whose first field (the step) is at most `last`. A step that is
// not a whole number (a corrupt or foreign file) is a named error, with its line.
std::string csv_rows_up_to(const std::filesystem::path& path, const char* header, std::size_t last) {
  if (!std::filesystem::exists(path)) return header;
  const std::string text = read_file(path);
  std::string out = header;
  std::size_t at = text.find('\n'), line_number = 1;
  while (at != std::string::npos && at + 1 < text.size()) {
    const std::size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    ++line_number;
    if (!line.empty()) {
      const std::string_view field = std::string_view(line).substr(0, line.find(','));
      std::uint64_t step = 0;
      const auto [stop, error] = std::from_chars(field.data(), field.data() + field.size(), step);
      if (field.empty() || error != std::errc() || stop != field.data() + field.size())
        fail("{}:{}: the step '{}' is not a whole number, so the file is corrupt and the run cannot continue from it; "
             "train with --restart to start over",
             path.string(), line_number, excerpt(field));
      if (step <= last) out += line + "\n";
    }
    at = end;
  }
  return out;
}

// What trained the model: deterministic for one machine model and toolkit, so it is an artifact.
std::string device_json(const TrainEngine& engine) {
  nlohmann::json doc = {{"device", engine.device()}, {"precision", engine.precision()}};
  if (!engine.hardware().empty()) doc["gpu"] = engine.hardware();
  if (engine.device() == "cuda") doc["cublaslt_algorithms"] = engine.kernels();
  return doc.dump(2) + "\n";
}

// Why a checkpoint cannot continue this run, or nothing when it can.
std::optional<std::string> resume_mismatch(const Checkpoint& ck, const ModelConfig& config, const TrainConfig& tc,
                                           const TrainInputs& in) {
  if (!same_architecture(ck.config, config))
    return fmt::format("the checkpoint's model ({}) does not fit the config ({})", summarize_architecture(ck.config),
                       summarize_architecture(config));
  if (ck.tokenizer_sha256 != in.tokenizer_sha256)
    return fmt::format("trained with tokenizer {}, but the token files come from tokenizer {}", ck.tokenizer_sha256,
                       in.tokenizer_sha256);
  if (ck.train_sha256 != in.train_sha256)
    return std::string("the [train] section changed since this checkpoint was written; resuming would not reproduce the run");
  if (ck.m.empty()) return std::string("holds no optimizer state, so training can't resume from it");
  if (ck.step > tc.steps) return fmt::format("at step {}, beyond the {} steps configured", ck.step, tc.steps);
  return std::nullopt;
}

// Refuses, before anything big is allocated, a run that could not fit: Linux would grant the
// allocations and then kill the process part way, with no message. `held` bytes of the need are
// already in memory (a resumed checkpoint's state).
void check_cpu_memory(const ModelConfig& config, std::size_t B, std::size_t T, double held, std::size_t micro_batches,
                      std::size_t ranks) {
  TrainingMemory need = cpu_training_memory(config, B / micro_batches, T);
  if (micro_batches > 1 || ranks > 1) {
    // Every simulated rank holds a replica with its gradient and a micro-batch's activations,
    // and its tree of gradient sums (a buffer a level, and the shards it receives); the moments
    // are counted whole for each, which overstates them by the sharding.
    const double P = static_cast<double>(param_count(config)) * sizeof(float);
    need.step += static_cast<double>(std::bit_width(micro_batches / ranks) + 1) * P;
    need.state *= static_cast<double>(ranks);
    need.step *= static_cast<double>(ranks);
  }
  const auto available = available_memory();
  if (!available || need.total() - held <= static_cast<double>(*available)) return;
  const auto gib = [](double bytes) { return fmt::format("{:.1f} GiB", bytes / (1024.0 * 1024.0 * 1024.0)); };
  fail("train: training this model on the cpu needs {} of memory{}, and {} are available ({} for its {} parameters "
       "with their gradients and AdamW moments, {} for the activations of a batch of {} × {}{}, {} for checkpoints "
       "and evaluation); make [model] smaller, or [train] batch_size or seq_len",
       gib(need.total()), held > 0 ? fmt::format(" ({} of it already held by the checkpoint)", gib(held)) : "",
       gib(static_cast<double>(*available)), gib(need.state), param_count(config), gib(need.step), B / micro_batches,
       T, ranks > 1 ? fmt::format(" on each of {} simulated ranks", ranks) : "", gib(need.occasional));
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

  std::optional<Checkpoint> ck;
  if (options.resume) {
    ck = read_checkpoint(*options.resume);
    if (const auto why = resume_mismatch(*ck, config, tc, in)) {
      if (!options.resume_if_fits) fail("{}: {}", options.resume->string(), *why);
      fmt::print(stderr, "train: not resuming from {}: {}; starting over\n", options.resume->string(), *why);
      ck.reset();
    }
  }
  // Unless asked otherwise, a resumed run continues where and how the checkpoint was trained.
  const std::string device = !options.device.empty() ? options.device
                             : options.gpus > 0      ? "cuda"
                             : ck                    ? ck->device
                                                     : "cpu";
  const std::string precision = !options.precision.empty()           ? options.precision
                                : ck && ck->device == device         ? ck->precision
                                                                     : default_precision(config, device);
  MINITX_CHECK(device == "cpu" || device == "cuda", "train: device '{}' is not one of cpu, cuda", device);
  MINITX_CHECK(device == "cuda" || precision == "fp32", "train: precision '{}' on the cpu; the cpu trains in fp32 only",
               precision);
  MINITX_CHECK(options.gpus == 0 || device == "cuda", "train: --gpus {} trains on GPUs, not on the {}", options.gpus,
               device);
  MINITX_CHECK(options.gpus == 0 || options.simulated_ranks == 1,
               "train: --gpus {} and --simulate-ranks {}: ranks are either GPUs or simulated, not both", options.gpus,
               options.simulated_ranks);
  const std::size_t ranks = options.gpus > 0 ? options.gpus : options.simulated_ranks;
  check_data_parallel(B, tc.micro_batches, ranks);
  const GpuParallel parallel{tc.micro_batches, ranks, options.gpus > 0};
  const std::size_t P = param_count(config);
  if (device == "cpu")
    check_cpu_memory(config, B, T, ck ? 3.0 * static_cast<double>(P) * sizeof(float) : 0.0, tc.micro_batches,
                     options.simulated_ranks);
  // The GPUs' memory before the host's copy of the state is allocated (nothing without CUDA).
  if (device == "cuda") check_cuda_memory(config, precision, B, T, parallel);
  TrainState state;
  std::size_t step = 0;
  std::string log = kLogHeader, times = kTimesHeader;
  if (ck) {
    const std::string name = options.resume->string();
    if (ck->device != device || ck->precision != precision)
      fmt::print(stderr, "train: {} was trained on {} in {}; continuing on {} in {}, so the result will not have "
                           "the bits of an uninterrupted run on either\n",
                 name, ck->device, ck->precision, device, precision);
    state = {std::move(ck->params), std::move(ck->m), std::move(ck->v)};
    step = ck->step;
    // The log and times written with that checkpoint, beside it; else the outputs' own.
    const fs::path dir = options.resume->parent_path();
    const auto beside = [&](const fs::path& output) {
      return fs::exists(dir / output.filename()) ? dir / output.filename() : output;
    };
    log = csv_rows_up_to(beside(out.log), kLogHeader, step);
    if (!out.times.empty()) times = csv_rows_up_to(beside(out.times), kTimesHeader, step);
  } else {
    state = {zeros<float>(P, "train: the parameters"), zeros<float>(P, "train: the AdamW moments"),
             zeros<float>(P, "train: the AdamW moments")};
    init_params(state.params.data(), config, tc.seed);
  }
  double peak = 0.0;  // for the progress line's MFU
  if (device == "cuda" && !cuda_devices().empty())  // --gpus N: N of them (of one model: checked)
    peak = peak_flops(cuda_devices().front(), precision) * static_cast<double>(std::max<std::size_t>(options.gpus, 1));
  // One rank taking the whole batch is today's engine, at its speed.
  std::unique_ptr<TrainEngine> engine =
      device == "cuda" ? make_cuda_engine(config, precision, B, T, std::move(state), parallel)
      : tc.micro_batches == 1 && options.simulated_ranks == 1
          ? make_cpu_engine(config, B, T, std::move(state))
          : make_cpu_data_parallel_engine(config, B, T, tc.micro_batches, options.simulated_ranks, std::move(state));

  const auto snapshot = [&](std::size_t at_step) {
    TrainState now = engine->state();
    return Checkpoint{config,           in.tokenizer_sha256, in.train_sha256,
                      at_step,          engine->device(),    engine->precision(),
                      std::move(now.params), std::move(now.m), std::move(now.v)};
  };
  // An unfinished run: the log first, the checkpoint (whose step says how much of the log
  // counts) last.
  const auto save_resume = [&](std::size_t at_step) {
    if (out.resume_dir.empty()) return;
    fs::create_directories(out.resume_dir);
    write_file_atomic(out.resume_dir / out.log.filename(), log);
    if (!out.times.empty()) write_file_atomic(out.resume_dir / out.times.filename(), times);
    fault_point("train.resume.after-log");
    write_checkpoint(out.resume_dir / out.checkpoint.filename(), snapshot(at_step));
    fault_point("train.resume.after-checkpoint");
  };
  // The finished run: every output, the checkpoint last, so that until it is in place Make sees
  // the outputs as unfinished; the resume state goes first, so none is left behind.
  const auto save_final = [&](std::size_t at_step) {
    if (!out.times.empty()) write_file_atomic(out.times, times);
    if (!out.device.empty()) write_file_atomic(out.device, device_json(*engine));
    write_file_atomic(out.log, log);
    fault_point("train.final.after-log");
    if (!out.resume_dir.empty()) {
      for (const fs::path& f : {out.checkpoint, out.log, out.times})
        if (!f.empty()) fs::remove(out.resume_dir / f.filename());
      std::error_code ignored;  // a resume folder holding anything else stays, empty or not
      fs::remove(out.resume_dir, ignored);
    }
    write_checkpoint(out.checkpoint, snapshot(at_step));
    fault_point("train.final.after-checkpoint");
  };
  std::size_t last_saved = step;
  const std::size_t end = options.stop_after != 0 ? std::min(options.stop_after, tc.steps) : tc.steps;

  if (options.progress)
    fmt::print(stderr, "train: on {} ({})\n", engine->device() == "cuda" ? engine->hardware() : "the cpu",
               engine->precision());
  std::vector<std::uint32_t> ids(B * T), targets(B * T);
  TrainSummary summary;
  std::optional<Progress> progress;
  if (options.progress) progress.emplace("train", tc.steps, "steps");
  const double flops_per_token = model_flops_per_token(config, T);
  const auto start = std::chrono::steady_clock::now();
  std::size_t tokens = 0;
  for (; step < end; ++step) {
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t s0 = batch_start(tc, step, b, data.size(), T);
      std::copy(data.begin() + static_cast<std::ptrdiff_t>(s0), data.begin() + static_cast<std::ptrdiff_t>(s0 + T), ids.begin() + static_cast<std::ptrdiff_t>(b * T));
      std::copy(data.begin() + static_cast<std::ptrdiff_t>(s0 + 1), data.begin() + static_cast<std::ptrdiff_t>(s0 + T + 1), targets.begin() + static_cast<std::ptrdiff_t>(b * T));
    }
    const StepStats stats = engine->forward_backward(ids.data(), targets.data());
    if (!std::isfinite(stats.loss) || !std::isfinite(stats.norm)) {
      // The log up to here goes beside the last checkpoint, for the diagnosis; no output is written.
      if (!out.resume_dir.empty() && last_saved > 0) write_file_atomic(out.resume_dir / out.log.filename(), log);
      fail("train: the {} became {} at step {}; stopping. {}", std::isfinite(stats.loss) ? "gradient norm" : "loss",
           std::isfinite(stats.loss) ? stats.norm : stats.loss, step + 1,
           last_saved > 0 && !out.resume_dir.empty()
               ? fmt::format("The last checkpoint, of step {}, is {}", last_saved,
                             (out.resume_dir / out.checkpoint.filename()).string())
               : std::string("No checkpoint was written"));
    }
    const double lr = learning_rate_at(tc, step);
    engine->update(tc, lr, stats, step + 1);
    tokens += B * T;
    const std::size_t done = step + 1;
    std::string val_field;
    if (done % tc.eval_every == 0 || done == tc.steps) {
      summary.val_loss = engine->evaluate(*in.val, T, B, tc.eval_batches * B);
      val_field = fmt::format("{:.6f}", summary.val_loss);
    }
    summary.train_loss = stats.loss;
    log += fmt::format("{},{:.6e},{:.6f},{}\n", done, lr, stats.loss, val_field);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    summary.tokens_per_second = static_cast<double>(tokens) / elapsed;
    times += fmt::format("{},{:.3f},{:.1f}\n", done, elapsed, summary.tokens_per_second);
    if (progress) {
      std::string rate = fmt::format("{:.0f} tok/s", summary.tokens_per_second);
      if (peak > 0) rate += fmt::format(" | MFU {:.1f}%", 100.0 * summary.tokens_per_second * flops_per_token / peak);
      progress->update(done, fmt::format("loss {:.4f}{} | {}", stats.loss, val_field.empty() ? "" : " val " + val_field,
                                        rate));
    }
    if (done == tc.steps) {
      save_final(done);
      last_saved = done;
    } else if (done % tc.checkpoint_every == 0 || done == end) {
      save_resume(done);
      last_saved = done;
    }
  }
  if (progress) progress->finish(fmt::format("loss {:.4f} val {:.4f}", summary.train_loss, summary.val_loss));
  summary.step = step;
  return summary;
}

}  // namespace minitx
