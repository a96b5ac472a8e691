// minitx train: OUT/train.bin + OUT/val.bin -> OUT/model.ckpt, OUT/train_log.csv, OUT/train_times.csv,
// OUT/train_device.json
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/build_info.h"
#include "minitx/core/config.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/data/token_file.h"
#include "minitx/model/params.h"
#include "minitx/model/train.h"
#include "minitx/model/train_engine.h"

namespace minitx::cli {

int run_train(Args& args) {
  Experiment ex = experiment_from_args(args);
  const bool resume = args.flag("--resume");
  const bool restart = args.flag("--restart");
  const auto resume_from = args.option("--resume-from");
  const auto stop_after = static_cast<std::size_t>(args.integer("--stop-after", 0, INT64_MAX, 0));
  const bool quiet = args.flag("--quiet");
  const auto asked_device = args.option("--device");
  const auto simulated_ranks = static_cast<std::size_t>(args.integer("--simulate-ranks", 1, 1024, 1));
  const auto gpus = static_cast<std::size_t>(args.integer("--gpus", 1, 1024, 0));
  // --gpus means the GPUs; their count is checked against the visible ones before anything is
  // allocated (check_cuda_memory), naming both.
  const std::string device = asked_device ? resolve_device(*asked_device) : gpus > 0 ? "cuda" : "";
  const std::string precision = args.option("--precision").value_or("");
  args.done();

  const fs::path train_path = ex.out_dir / "train.bin", val_path = ex.out_dir / "val.bin";
  const TokenFile train = read_token_file(train_path), val = read_token_file(val_path);
  if (train.tokenizer_sha256 != val.tokenizer_sha256)
    fail("{} and {} come from different tokenizers (SHA-256 {} and {})", train_path.string(), val_path.string(),
         train.tokenizer_sha256, val.tokenizer_sha256);
  if (train.vocab_size != val.vocab_size)
    fail("{} and {} name the same tokenizer ({}) but different vocabulary sizes ({} and {})", train_path.string(),
         val_path.string(), train.tokenizer_sha256, train.vocab_size, val.vocab_size);
  ex.model.vocab_size = train.vocab_size;
  ex.model.validate(ex.config_path.string() + ": [model]");
  const ConfigFile file = ConfigFile::load(ex.config_path);

  TrainInputs inputs{&train.ids, &val.ids, train.tokenizer_sha256, sha256_hex(file.canonical_section("train"))};
  TrainOutputs outputs{ex.out_dir / "model.ckpt", ex.out_dir / "train_log.csv", ex.out_dir / "train_times.csv",
                       ex.out_dir / "train_device.json", ex.out_dir / "resume"};
  const fs::path unfinished = outputs.resume_dir / "model.ckpt";
  MINITX_CHECK(!restart || (!resume && !resume_from), "--restart starts over: it cannot be given with --resume or --resume-from");
  TrainOptions options;
  if (resume_from) {
    options.resume = fs::path(*resume_from);
  } else if (resume) {  // the unfinished run, else the finished one (then there is nothing to do)
    options.resume = fs::exists(unfinished) ? unfinished : outputs.checkpoint;
    MINITX_CHECK(fs::exists(*options.resume), "--resume: neither {} nor {} exists; nothing to resume", unfinished.string(),
                 outputs.checkpoint.string());
  } else if (!restart && fs::exists(unfinished)) {  // an interrupted run (make's rerun): continue it if it fits
    options.resume = unfinished;
    options.resume_if_fits = true;
    fmt::print(stderr, "train: continuing the unfinished run in {} (--restart starts over)\n", outputs.resume_dir.string());
  }
  options.stop_after = stop_after;
  options.progress = !quiet;
  options.device = device;
  options.precision = precision;
  options.simulated_ranks = simulated_ranks;
  options.gpus = gpus;
  fs::create_directories(ex.out_dir);
  const std::size_t T = ex.train.seq_len == 0 ? ex.model.context : ex.train.seq_len;
  fmt::print(stderr, "train: {} parameters (layers {}, width {}, heads {}, context {}, vocab {}); {} steps of {}x{} tokens\n",
             param_count(ex.model), ex.model.n_layer, ex.model.n_embd, ex.model.n_head, ex.model.context,
             ex.model.vocab_size, ex.train.steps, ex.train.batch_size, T);
  const TrainSummary s = train_model(ex.model, ex.train, inputs, outputs, options);
  if (s.tokens_per_second == 0.0) {  // resumed from the last step: no step ran
    fmt::print("train: {} is already at step {}; nothing to do\n", outputs.checkpoint.string(), s.step);
    return 0;
  }
  const bool finished = s.step >= ex.train.steps;
  fmt::print("train: step {}: train loss {:.4f}, val loss {:.4f}, {:.0f} tokens/s -> {}\n", s.step, s.train_loss,
             s.val_loss, s.tokens_per_second,
             finished ? outputs.checkpoint.string() : unfinished.string() + " (unfinished: run again to continue)");
  return 0;
}

}  // namespace minitx::cli
