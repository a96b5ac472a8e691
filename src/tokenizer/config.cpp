#include "minitx/tokenizer/config.h"

#include <fmt/format.h>

#include "minitx/core/config.h"

namespace minitx {

TokenizerConfig parse_tokenizer_config(const ConfigSection& section) {
  TokenizerConfig config;
  TrainerOptions& t = config.trainer;
  t.vocab_size = static_cast<std::uint32_t>(section.integer("vocab_size", 256, 1 << 20));
  t.min_frequency = static_cast<std::uint64_t>(section.integer("min_frequency", 0, std::int64_t{1} << 62, 0));
  t.special_tokens = section.strings("special_tokens", {"<|endoftext|>"});
  for (const auto& s : t.special_tokens)
    if (s.empty()) section.error("special_tokens", "a special token is empty");
  t.pattern = parse_split_pattern(section.choice("pattern", {"gpt2", "gpt4"}, "gpt2"));
  if (t.vocab_size < 256 + t.special_tokens.size())
    section.error("vocab_size", fmt::format("{} is below 256 byte symbols + {} special tokens", t.vocab_size, t.special_tokens.size()));
  section.finish();
  return config;
}

}  // namespace minitx
