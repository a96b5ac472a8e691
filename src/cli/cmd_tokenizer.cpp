// minitx tokenizer train | encode | decode | info
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/memory.h"
#include "minitx/core/sha256.h"
#include "minitx/data/token_file.h"
#include "minitx/tokenizer/trainer.h"

namespace minitx::cli {
namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// --config (with --out, --corpus-dir) when given; nullopt for direct use.
std::optional<Experiment> optional_experiment(Args& args) {
  if (auto config = args.option("--config")) {
    Experiment experiment = load_experiment(*config);
    if (auto out = args.option("--out")) experiment.out_dir = *out;
    return experiment;
  }
  return std::nullopt;
}

// A token file must come from the tokenizer that decodes it.
void check_token_file_matches(const TokenFile& file, const fs::path& file_path, const Tokenizer& tokenizer, const std::string& tokenizer_sha,
                              const fs::path& tokenizer_path) {
  if (file.tokenizer_sha256 != tokenizer_sha)
    fail("{}: was encoded by the tokenizer with SHA-256 {}, but {} has SHA-256 {}", file_path.string(), file.tokenizer_sha256,
         tokenizer_path.string(), tokenizer_sha);
  if (file.vocab_size != tokenizer.vocab_size())
    fail("{}: header says vocab size {}, but {} has {} tokens", file_path.string(), file.vocab_size, tokenizer_path.string(), tokenizer.vocab_size());
}

// The text a command works on: --input FILE, else the config's corpus (checked against its pin).
std::pair<std::string, std::string> read_text(const std::optional<std::string>& input, const std::optional<Experiment>& experiment,
                                              const CorpusPaths& paths) {
  if (input) return {read_file(*input), *input};
  return {load_verified_corpus(experiment->corpus, paths), paths.file(experiment->corpus).string()};
}

}  // namespace

int run_tokenizer_train(Args& args) {
  const auto experiment = optional_experiment(args);
  const CorpusPaths paths = corpus_paths_from_args(args);
  TrainerOptions options = experiment ? experiment->tokenizer.trainer : TrainerOptions{};
  const auto input = args.option("--input");
  auto output = args.option("--output");
  const std::int64_t vocab = args.integer("--vocab-size", 1, 1 << 20, 0);  // 0: not given
  if (vocab > 0) options.vocab_size = static_cast<std::uint32_t>(vocab);
  if (!experiment && !input) fail("tokenizer train: give --config FILE or --input FILE --vocab-size N --output FILE");
  if (!experiment && vocab == 0) fail("tokenizer train: --vocab-size is required with --input");
  options.min_frequency = static_cast<std::uint64_t>(args.integer("--min-frequency", 0, std::int64_t{1} << 62, static_cast<std::int64_t>(options.min_frequency)));
  if (auto specials = args.option("--special-tokens")) options.special_tokens = specials->empty() ? std::vector<std::string>{} : split_commas(*specials);
  if (auto pattern = args.option("--pattern")) options.pattern = parse_split_pattern(*pattern);
  options.progress = !args.flag("--quiet");
  args.done();
  if (!output) {
    if (!experiment) fail("tokenizer train: --output FILE is required with --input");
    output = (experiment->out_dir / "tokenizer.json").string();
  }

  const auto start = std::chrono::steady_clock::now();
  const auto [text, source] = read_text(input, experiment, paths);
  if (text.empty()) fail("tokenizer train: {}: the corpus is empty", source);
  TrainStats stats;
  const Tokenizer tokenizer = train_bpe(text, options, &stats);
  tokenizer.save(*output);
  fmt::print("tokenizer train: {} ({} bytes, {} unique pre-tokens) -> {}: {} tokens, {} merges, {:.2f} s\n", source, text.size(),
             stats.unique_words, *output, tokenizer.vocab_size(), tokenizer.merge_count(), seconds_since(start));
  return 0;
}

int run_tokenizer_encode(Args& args) {
  const auto experiment = optional_experiment(args);
  const CorpusPaths paths = corpus_paths_from_args(args);
  auto tokenizer_path = args.option("--tokenizer");
  const auto input = args.option("--input");
  const auto output = args.option("--output");
  const bool allow_special = args.flag("--allow-special");
  args.done();
  if (!experiment && (!tokenizer_path || !input || !output))
    fail("tokenizer encode: give --config FILE, or --tokenizer FILE --input FILE --output FILE.bin");
  if (!tokenizer_path) tokenizer_path = (experiment->out_dir / "tokenizer.json").string();

  const auto start = std::chrono::steady_clock::now();
  const std::string tokenizer_sha = sha256_file_hex(*tokenizer_path);
  const Tokenizer tokenizer = Tokenizer::load(*tokenizer_path);
  const auto [text, source] = read_text(input, experiment, paths);
  if (text.empty()) fail("tokenizer encode: {}: the input is empty", source);
  // Byte-level BPE leaves about one 4-byte id per 3 to 4 bytes of text: about the text's size again.
  std::vector<std::uint32_t> ids = allocating(fmt::format("tokenizer encode: the token ids of {}", source),
                                              static_cast<double>(text.size()),
                                              [&] { return tokenizer.encode(text, allow_special); });
  if (output) {
    const std::size_t n_tokens = ids.size();
    write_token_file(*output, TokenFile{tokenizer.vocab_size(), tokenizer_sha, std::move(ids)});
    fmt::print("tokenizer encode: {} ({} bytes) -> {}: {} tokens, {:.2f} s\n", source, text.size(), *output, n_tokens, seconds_since(start));
    return 0;
  }
  const std::size_t split = validation_start(ids.size(), experiment->data.val_fraction);
  TokenFile train{tokenizer.vocab_size(), tokenizer_sha, std::vector<std::uint32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(split))};
  TokenFile val{tokenizer.vocab_size(), tokenizer_sha, std::vector<std::uint32_t>(ids.begin() + static_cast<std::ptrdiff_t>(split), ids.end())};
  write_token_file(experiment->out_dir / "train.bin", train);
  write_token_file(experiment->out_dir / "val.bin", val);
  fmt::print("tokenizer encode: {} ({} bytes, {:.3f} bytes/token) -> {}: {} train + {} val tokens, {:.2f} s\n", source, text.size(),
             static_cast<double>(text.size()) / static_cast<double>(ids.size()), experiment->out_dir.string(), train.ids.size(),
             val.ids.size(), seconds_since(start));
  return 0;
}

int run_tokenizer_decode(Args& args) {
  const std::string tokenizer_path = args.required("--tokenizer");
  const auto input = args.option("--input");
  const auto ids_text = args.option("--ids");
  const auto output = args.option("--output");
  args.done();
  if (input.has_value() == ids_text.has_value()) fail("tokenizer decode: give exactly one of --input FILE.bin and --ids N,N,...");
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  std::vector<std::uint32_t> ids;
  if (input) {
    TokenFile file = read_token_file(*input);
    check_token_file_matches(file, *input, tokenizer, sha256_file_hex(tokenizer_path), tokenizer_path);
    ids = std::move(file.ids);
  } else {
    ids = ids_from_text(*ids_text, "tokenizer decode: --ids");
  }
  const std::string text = tokenizer.decode(ids);
  if (output) {
    write_file_atomic(*output, text);
  } else {
    write_stdout(text);
  }
  return 0;
}

int run_tokenizer_info(Args& args) {
  const auto experiment = optional_experiment(args);
  auto tokenizer_path = args.option("--tokenizer");
  const auto input = args.option("--input");
  args.done();
  if (!tokenizer_path && !experiment) fail("tokenizer info: give --tokenizer FILE or --config FILE");
  if (!tokenizer_path) tokenizer_path = (experiment->out_dir / "tokenizer.json").string();
  const Tokenizer tokenizer = Tokenizer::load(*tokenizer_path);
  const auto& model = tokenizer.model();
  fmt::print("tokenizer   {}\nsha256      {}\nvocab size  {}\nmerges      {}\npattern     {}\n", *tokenizer_path, sha256_file_hex(*tokenizer_path),
             tokenizer.vocab_size(), tokenizer.merge_count(), split_pattern_name(model.pattern));
  for (const AddedToken& a : model.added_tokens) fmt::print("added       {} {:?}{}\n", a.id, a.content, a.special ? " (special)" : "");
  if (input) {
    const std::string text = read_file(*input);
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tokenizer.encode(text);
    const double s = seconds_since(start);
    fmt::print("input       {} ({} bytes)\ntokens      {}\nbytes/token {:.3f}\nencode      {:.3f} s ({:.1f} MB/s)\n", *input, text.size(), ids.size(),
               ids.empty() ? 0.0 : static_cast<double>(text.size()) / static_cast<double>(ids.size()), s,
               s > 0 ? static_cast<double>(text.size()) / s / 1e6 : 0.0);
  }
  return 0;
}

}  // namespace minitx::cli
