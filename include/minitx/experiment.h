// One experiment = one TOML config. Each module parses its own section; this ties them together
// and rejects sections nobody knows.
#pragma once
#include <filesystem>
#include <string>

#include "minitx/data/corpus.h"
#include "minitx/data/token_file.h"
#include "minitx/infer/latency_bench.h"
#include "minitx/model/config.h"
#include "minitx/tokenizer/config.h"

namespace minitx {

struct Experiment {
  std::string name;                   // the config's file name without .toml
  std::filesystem::path config_path;
  std::filesystem::path out_dir;      // out/ for "default", out/<name>/ otherwise
  CorpusConfig corpus;
  TokenizerConfig tokenizer;          // [tokenizer]; defaults when absent
  DataConfig data;                    // [data]: the train/val split; defaults when absent
  ModelConfig model;                  // [model]; vocab_size comes from the token files
  TrainConfig train;                  // [train]
  BenchConfig bench;                  // [bench]: generation latency with and without the KV cache
};

Experiment load_experiment(const std::filesystem::path& config_path);

// The top-level sections of a config, in the order stages use them.
const std::vector<std::string>& experiment_sections();

}  // namespace minitx
