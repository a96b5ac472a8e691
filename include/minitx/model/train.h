// The training loop: batches drawn by Philox from the training stream, AdamW with warmup and
// cosine decay, global-norm clipping, evaluation every eval_every steps, a log, and atomic
// checkpoints. A run resumed from a checkpoint of step k reaches exactly the bits of an
// uninterrupted run: batch b of step s depends only on (seed, s, b), the schedule only on s,
// and the checkpoint holds everything else (parameters and both moments).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "minitx/model/config.h"

namespace minitx {

struct TrainInputs {
  const std::vector<std::uint32_t>* train = nullptr;
  const std::vector<std::uint32_t>* val = nullptr;
  std::string tokenizer_sha256;
  std::string train_sha256;  // hash of the [train] section; stored in checkpoints, checked on resume
};

struct TrainOutputs {
  std::filesystem::path checkpoint;  // model.ckpt
  std::filesystem::path log;         // train_log.csv: step,lr,train_loss,val_loss (deterministic)
  std::filesystem::path times;       // train_times.csv: step,elapsed_s,tokens_per_s (not deterministic)
  std::filesystem::path device;      // train_device.json: device, precision, GPU, cuBLASLt algorithms (optional)
  // An unfinished run's state (model.ckpt, train_log.csv, train_times.csv), written every
  // checkpoint_every steps and at --stop-after; the outputs above are written only when the last
  // step is done, so an interrupted run never leaves files that look finished. Emptied then.
  // Empty: no periodic checkpoints.
  std::filesystem::path resume_dir;
};

struct TrainOptions {
  std::optional<std::filesystem::path> resume;  // continue from this checkpoint
  // With `resume`: a checkpoint that does not fit this run (another config, tokenizer or [train])
  // is set aside with a note and training starts over, instead of an error (make's reruns).
  bool resume_if_fits = false;
  std::size_t stop_after = 0;                   // stop (with a checkpoint) after this step; 0: run to the end
  bool progress = true;
  std::string device;          // cpu or cuda; empty: the checkpoint's when resuming, else cpu
  std::string precision;       // fp32 or bf16; empty: default_precision (train_engine.h)
  // Data-parallel ranks simulated as threads (data_parallel.h), on the cpu or all on one GPU: a
  // power of two dividing [train] micro_batches. The bits do not depend on it, so a checkpoint
  // resumes with any count.
  std::size_t simulated_ranks = 1;
  // Data-parallel ranks on GPUs 0..gpus-1, one each, over NCCL (0: not asked; the device is then
  // cuda). The same rule: the bits are those of one GPU with the same micro_batches.
  std::size_t gpus = 0;
};

struct TrainSummary {
  std::size_t step = 0;  // steps done
  double train_loss = 0.0, val_loss = 0.0;
  double tokens_per_second = 0.0;
};

TrainSummary train_model(const ModelConfig& model, const TrainConfig& train, const TrainInputs& inputs,
                         const TrainOutputs& outputs, const TrainOptions& options);

// Stream of the training batches: window start of row b at step s.
std::size_t batch_start(const TrainConfig& train, std::size_t step, std::size_t row, std::size_t n_tokens,
                        std::size_t T);

}  // namespace minitx
