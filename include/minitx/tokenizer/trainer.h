// BPE training that reproduces Hugging Face tokenizers' BpeTrainer entry for entry.
//
// Layout: special tokens, then the 256 byte-level symbols in code-point order of their
// characters, then one token per merge. Each step merges the pair of highest count, ties going
// to the smallest (left id, right id); counts are kept exactly as the reference keeps them,
// including its bookkeeping quirks (a merged pair's own count is not decremented), so that the
// same pairs win in the same order. Pre-tokens are counted once, in parallel; the merge loop
// keeps a max-heap with lazy invalidation and touches only the words that hold the pair.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "minitx/tokenizer/tokenizer.h"

namespace minitx {

struct TrainerOptions {
  std::uint32_t vocab_size = 2048;
  std::uint64_t min_frequency = 0;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  SplitPattern pattern = SplitPattern::gpt2;
  bool progress = false;  // report through minitx::Progress
};

// Unique pre-tokens with their counts, sorted by bytes.
std::vector<std::pair<std::string, std::uint64_t>> count_pretokens(std::string_view text, SplitPattern pattern);

struct TrainStats {
  double count_seconds = 0, merge_seconds = 0;
  std::size_t unique_words = 0;
};

// Throws for an empty text or a vocab_size below 256 + the special tokens.
Tokenizer train_bpe(std::string_view text, const TrainerOptions& options, TrainStats* stats = nullptr);

}  // namespace minitx
