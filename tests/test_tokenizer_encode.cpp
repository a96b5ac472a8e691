// Encoder, decoder, tokenizer.json import and the trainer's errors.
#include <nlohmann/json.hpp>
#include <map>
#include <algorithm>
#include <random>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/threads.h"
#include "minitx/tokenizer/byte_level.h"
#include "minitx/tokenizer/trainer.h"

using namespace minitx;

namespace {

const std::string kFixtures = "tests/fixtures/hf/";

const Tokenizer& hf512() {
  static const Tokenizer t = Tokenizer::load(kFixtures + "hf_512.json");
  return t;
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, "no '" << from << "' in the text");
  return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("encode: decode(encode(x)) == x for arbitrary bytes, invalid UTF-8 included") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string text(rng() % 200, '\0');
    for (auto& c : text) c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : "ab \n'xyz\xc3\xa9"[rng() % 11]);
    for (const SplitPattern p : {SplitPattern::gpt2, SplitPattern::gpt4}) {
      TokenizerModel model = hf512().model();
      model.pattern = p;
      const Tokenizer tok(std::move(model));
      CHECK(tok.decode(tok.encode(text)) == text);
    }
  }
}

TEST_CASE("encode: the parallel encoder equals the serial one") {
  std::string text;
  const std::string slice = read_file(kFixtures + "moby_slice.txt");
  while (text.size() < (1u << 20)) text += slice + "\xff\xfe invalid \xe2\x82 bytes ";
  std::vector<std::uint32_t> serial;
  hf512().encode_serial(text, false, serial);
  const int before = thread_count();
  for (const int threads : {2, 5}) {
    set_thread_count(threads);
    CHECK(hf512().encode(text) == serial);
  }
  set_thread_count(before);
  CHECK(hf512().decode(serial) == text);
}

TEST_CASE("encode: special tokens are recognised only when asked") {
  const Tokenizer& tok = hf512();
  const std::string text = "end<|endoftext|>start";
  const auto plain = tok.encode(text);
  const auto special = tok.encode(text, true);
  CHECK(std::find(plain.begin(), plain.end(), 0u) == plain.end());
  CHECK(std::count(special.begin(), special.end(), 0u) == 1);
  CHECK(tok.decode(plain) == text);
  CHECK(tok.decode(special) == text);
  CHECK(tok.token_id("<|endoftext|>") == 0u);
  CHECK(tok.token_id(" the").has_value());
  CHECK_FALSE(tok.token_id("zzzzzzzz").has_value());
}

TEST_CASE("decode: an id out of range is an error naming it") {
  CHECK_ERROR_CONTAINS(hf512().decode(std::vector<std::uint32_t>{1, 2, 512}), "token id 512 at position 2 is out of range");
}

TEST_CASE("tokenizer.json import: GPT-2-style files, merges as strings, GPT-4 pattern, non-special added tokens") {
  const std::string json = read_file(kFixtures + "hf_512.json");
  // Merges written as "a b" strings (older files, GPT-2's own) mean the same.
  auto parsed = nlohmann::json::parse(json);
  for (auto& merge : parsed["model"]["merges"]) merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  const std::string as_strings = parsed.dump();
  const Tokenizer strings = Tokenizer::from_json(as_strings, "strings.json");
  CHECK(strings.model().merges == hf512().model().merges);

  // The GPT-4 pattern as Hugging Face writes it: Sequence [Split, ByteLevel(use_regex=false)].
  TokenizerModel model = hf512().model();
  model.pattern = SplitPattern::gpt4;
  const Tokenizer gpt4(model);
  const Tokenizer back = Tokenizer::from_json(gpt4.to_json(), "gpt4.json");
  CHECK(back.model().pattern == SplitPattern::gpt4);
  CHECK(back.to_json() == gpt4.to_json());

  // A non-special added token is matched always, like Hugging Face's added vocabulary.
  model = hf512().model();
  model.vocab.push_back("<pad>");
  model.added_tokens.push_back({512, "<pad>", false});
  const Tokenizer added(model);
  const auto ids = added.encode("a<pad>b");
  CHECK(ids.size() == 3);
  CHECK(ids[1] == 512);
  const Tokenizer reread = Tokenizer::from_json(added.to_json(), "added.json");
  CHECK(reread.encode("a<pad>b") == ids);
}

TEST_CASE("tokenizer.json import: malformed, truncated and unsupported files are refused, naming what") {
  const std::string json = read_file(kFixtures + "hf_512.json");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(json.substr(0, json.size() / 2), "t.json"), "t.json: not a valid tokenizer.json");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json("[]", "t.json"), "t.json: (top level): expected a JSON object");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"type\": \"BPE\"", "\"type\": \"WordPiece\""), "t.json"),
                       "model type \"WordPiece\" is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"type\": \"ByteLevel\"", "\"type\": \"Metaspace\""), "t.json"),
                       "pre_tokenizer: type \"Metaspace\" is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}"), "t.json"),
                       "normalizer: type \"Lowercase\" is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"dropout\": null", "\"dropout\": 0.1"), "t.json"), "BPE dropout is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"byte_fallback\": false", "\"byte_fallback\": true"), "t.json"),
                       "model.byte_fallback: true is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"!\": 1,", "\"!\": 1, \"!!x\": 1,"), "t.json"), "id 1 is used twice");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"!\": 1,", ""), "t.json"), "ids are not contiguous");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"!\": 1,", "\"a b\": 1,"), "t.json"), "is not made of byte-level characters");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"use_regex\": true", "\"use_regex\": false"), "t.json"),
                       "use_regex false and no Split");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"Ġ\",\n        \"t\"", "\"Ġ\",\n        \"nope\""), "t.json"),
                       "model.merges[0]: token \"nope\" is not in the vocabulary");
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(replace_once(json, "\"decoder\": {\n    \"type\": \"ByteLevel\"", "\"decoder\": {\n    \"type\": \"WordPiece\""), "t.json"),
                       "decoder: type \"WordPiece\" is not supported");
  CHECK_ERROR_CONTAINS(Tokenizer::load("tests/fixtures/hf/no-such.json"), "no-such.json");
}

TEST_CASE("train: bad inputs are errors") {
  TrainerOptions options;
  options.vocab_size = 256;
  CHECK_ERROR_CONTAINS(train_bpe("some text", options), "vocab_size 256 is below 256 byte symbols + 1 special tokens = 257");
  options.vocab_size = 300;
  CHECK_ERROR_CONTAINS(train_bpe("", options), "the corpus is empty");
  options.special_tokens = {""};
  CHECK_ERROR_CONTAINS(train_bpe("x", options), "special token is empty");
}

TEST_CASE("train: small cases, min_frequency, no specials, GPT-4 pattern, running out of pairs") {
  TrainerOptions options;
  options.vocab_size = 1000;
  options.special_tokens = {};
  const Tokenizer tiny = train_bpe("aaaa aaaa", options);
  // "aaaa" x1 and " aaaa" x1: merges aa, then "aa aa" and " a"… until no pairs are left.
  CHECK(tiny.vocab_size() < 1000);
  CHECK(tiny.model().added_tokens.empty());
  CHECK(tiny.decode(tiny.encode("aaaa aaaa")) == "aaaa aaaa");
  CHECK(tiny.encode("aaaa").size() == 1);
  options.min_frequency = 3;
  const Tokenizer rare = train_bpe("ab ab cd", options);
  CHECK(rare.merge_count() == 0);
  options.min_frequency = 0;
  options.pattern = SplitPattern::gpt4;
  options.special_tokens = {"<s>", "</s>"};
  const Tokenizer g4 = train_bpe(read_file(kFixtures + "moby_slice.txt"), options);
  CHECK(g4.vocab_size() == 1000);
  CHECK(g4.model().vocab[1] == "</s>");
  CHECK(g4.model().pattern == SplitPattern::gpt4);
  CHECK(Tokenizer::from_json(g4.to_json(), "g4").to_json() == g4.to_json());
}

TEST_CASE("encode: long words (the queue path) equal a plain lowest-rank-first reference") {
  const Tokenizer& tok = hf512();
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::pair<std::uint32_t, std::uint32_t>> ranks;  // pair -> (rank, id)
  for (std::uint32_t r = 0; r < tok.model().merges.size(); ++r) {
    const auto [a, b] = tok.model().merges[r];
    ranks[{a, b}] = {r, *tok.token_id(tok.model().vocab[a] + tok.model().vocab[b])};
  }
  const auto reference = [&](std::string_view word) {
    std::vector<std::uint32_t> s;
    for (const char c : word) s.push_back(*tok.token_id(std::string(1, c)));
    while (true) {
      std::size_t best = s.size();
      std::uint32_t best_rank = ~0u;
      for (std::size_t i = 0; i + 1 < s.size(); ++i)
        if (const auto it = ranks.find({s[i], s[i + 1]}); it != ranks.end() && it->second.first < best_rank) best = i, best_rank = it->second.first;
      if (best == s.size()) break;
      s[best] = ranks[{s[best], s[best + 1]}].second;
      s.erase(s.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    return s;
  };
  std::mt19937_64 rng(3);
  const std::string letters = "etaoinshrdlucmfwyp";
  for (int i = 0; i < 200; ++i) {
    std::string word(1 + rng() % 300, 'a');
    for (auto& c : word) c = letters[rng() % letters.size()];
    std::vector<std::uint32_t> ids;
    tok.encode_word(word, ids);
    CHECK(ids == reference(word));
    CHECK(tok.encode(word) == ids);  // one pre-token: the same through the cache
  }
}

TEST_CASE("tokenizer.json import: a GPT-NeoX-style file (NFC, added space tokens, prefix space, post-processor)") {
  auto j = nlohmann::json::parse(read_file(kFixtures + "hf_512.json"));
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}};  // use_regex defaults to true
  j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}};
  j["model"]["vocab"]["\u0120\u0120\u0120"] = 512;  // "ĠĠĠ": the vocab may hold an added token in byte-level form
  j["added_tokens"].push_back({{"id", 512}, {"content", "   "}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                               {"normalized", true}, {"special", false}});
  for (auto& merge : j["model"]["merges"]) merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  const Tokenizer neox = Tokenizer::from_json(j.dump(), "neox.json");
  CHECK(neox.model().nfc);
  const auto ids = neox.encode("a   b café");  // é precomposed is NFC already
  CHECK(std::count(ids.begin(), ids.end(), 512u) == 1);
  CHECK(neox.decode(ids) == "a   b café");
  CHECK(neox.encode("cafe\xcc\x81") == neox.encode("caf\xc3\xa9"));  // e + combining acute: NFC composes é
  CHECK(hf512().encode("cafe\xcc\x81") != hf512().encode("caf\xc3\xa9"));  // no normalizer: bytes as they are
  CHECK(Tokenizer::from_json(neox.to_json(), "again.json").to_json() == neox.to_json());

  j["pre_tokenizer"]["add_prefix_space"] = true;
  const Tokenizer prefixed = Tokenizer::from_json(j.dump(), "prefix.json");
  CHECK(prefixed.encode("hello world") == hf512().encode(" hello world"));
  CHECK(prefixed.encode(" hello") == hf512().encode(" hello"));

  j["normalizer"] = {{"type", "NFKC"}};
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(j.dump(), "nfkc.json"), "normalizer: type \"NFKC\" is not supported (only none or NFC)");
  j["normalizer"] = nullptr;
  j["added_tokens"][1]["lstrip"] = true;
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(j.dump(), "lstrip.json"), "added_tokens[1].lstrip: true is not supported");
  j["added_tokens"][1]["lstrip"] = false;
  j["added_tokens"][1]["content"] = "  ";
  CHECK_ERROR_CONTAINS(Tokenizer::from_json(j.dump(), "mismatch.json"), "id 512 is \"  \" but model.vocab has");
}
