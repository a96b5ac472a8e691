// A byte-level BPE tokenizer: vocabulary, ranked merges, added (special) tokens and the split
// pattern; encoding, decoding, and Hugging Face tokenizer.json in and out.
//
// Encoding follows Hugging Face's BPE model exactly: within each pre-token, repeatedly merge the
// adjacent pair of lowest rank (leftmost first). Frequent pre-tokens are cached per thread. Long
// texts are encoded in parallel over chunks cut at pre-token boundaries, so the ids are the same
// for any thread count.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "minitx/tokenizer/pretokenizer.h"

namespace minitx {

struct AddedToken {
  std::uint32_t id = 0;
  std::string content;   // matched in text as these bytes
  bool special = true;   // special tokens are matched only when the caller allows them
};

struct TokenizerModel {
  SplitPattern pattern = SplitPattern::gpt2;
  bool add_prefix_space = false;                 // imported GPT-2-family files only
  // Normalizer NFC (GPT-NeoX / Pythia): the text is NFC-normalized before it is split.
  bool nfc = false;
  std::vector<std::string> vocab;                // id -> bytes (an added token's content)
  std::vector<AddedToken> added_tokens;          // in id order
  std::vector<std::pair<std::uint32_t, std::uint32_t>> merges;  // by rank
};

class Tokenizer {
 public:
  // Checks the model (every byte has a token, merges refer to known ids and their result is in
  // the vocabulary, ids are dense) and builds the lookup tables.
  explicit Tokenizer(TokenizerModel model);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  const TokenizerModel& model() const { return model_; }
  std::uint32_t vocab_size() const { return static_cast<std::uint32_t>(model_.vocab.size()); }
  std::size_t merge_count() const { return model_.merges.size(); }
  // The id of a token given by its bytes (added tokens by content), if any.
  std::optional<std::uint32_t> token_id(std::string_view bytes) const;

  // Ids of `text` (any bytes). With `allow_special`, special tokens' contents in the text become
  // their ids; non-special added tokens always do (as in Hugging Face). With `nfc`, the ids
  // are those of the text's NFC normalization, as Hugging Face's normalizer gives.
  std::vector<std::uint32_t> encode(std::string_view text, bool allow_special = false) const;
  // One thread, no chunking: the reference the parallel encoder must equal.
  void encode_serial(std::string_view text, bool allow_special, std::vector<std::uint32_t>& out) const;
  // The BPE of one pre-token (no added-token matching), appended to `out`.
  void encode_word(std::string_view word, std::vector<std::uint32_t>& out) const;

  // The bytes of the ids; throws naming the first id out of range.
  std::string decode(std::span<const std::uint32_t> ids) const;

  // tokenizer.json as Hugging Face writes it (same keys, order and layout).
  std::string to_json() const;
  // Parses a tokenizer.json; `name` (the file) prefixes every error.
  static Tokenizer from_json(std::string_view json, const std::string& name);
  static Tokenizer load(const std::filesystem::path& path);
  void save(const std::filesystem::path& path) const;  // atomic

  struct Tables;  // opaque: lookup tables built from the model

 private:
  void encode_word_cached(std::string_view word, std::vector<std::uint32_t>& out, void* cache) const;
  void bpe(std::string_view word, std::vector<std::uint32_t>& out) const;

  TokenizerModel model_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace minitx
