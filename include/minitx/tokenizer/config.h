// [tokenizer]: the BPE trainer's settings.
//   vocab_size = 2048                      # 256 byte symbols + specials + merges
//   min_frequency = 0                      # stop when the best pair is rarer
//   special_tokens = ["<|endoftext|>"]     # ids 0.. in this order
//   pattern = "gpt2"                       # or "gpt4" (cl100k split)
#pragma once
#include "minitx/tokenizer/trainer.h"

namespace minitx {

class ConfigSection;

struct TokenizerConfig {
  TrainerOptions trainer;
};

TokenizerConfig parse_tokenizer_config(const ConfigSection& section);

}  // namespace minitx
