// Exactness against Hugging Face tokenizers 0.23.2 (fixtures made by scripts/make_hf_fixtures.py):
// the trained tokenizer.json byte for byte, vocab and merges entry for entry, and ids.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/threads.h"
#include "minitx/tokenizer/byte_level.h"
#include "minitx/tokenizer/trainer.h"

using namespace minitx;

namespace {

const std::string kFixtures = "tests/fixtures/hf/";

std::string ids_sha(const std::vector<std::uint32_t>& ids) {
  std::string bytes;
  for (const std::uint32_t id : ids)
    for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>(id >> (8 * b)));
  return sha256_hex(bytes);
}

Tokenizer train_slice(std::uint32_t vocab) {
  TrainerOptions options;
  options.vocab_size = vocab;
  return train_bpe(read_file(kFixtures + "moby_slice.txt"), options);
}

}  // namespace

TEST_CASE("hf: trained vocab and merges equal BpeTrainer's, entry for entry and byte for byte") {
  for (const std::uint32_t vocab : {512u, 1024u}) {
    CAPTURE(vocab);
    const std::string path = kFixtures + "hf_" + std::to_string(vocab) + ".json";
    const Tokenizer hf = Tokenizer::load(path);
    const Tokenizer ours = train_slice(vocab);
    REQUIRE(ours.vocab_size() == hf.vocab_size());
    REQUIRE(ours.merge_count() == hf.merge_count());
    for (std::uint32_t id = 0; id < hf.vocab_size(); ++id) {
      if (ours.model().vocab[id] != hf.model().vocab[id]) {
        FAIL_CHECK("id " << id << ": ours " << bytes_to_byte_level(ours.model().vocab[id]) << ", hf " << bytes_to_byte_level(hf.model().vocab[id]));
        break;
      }
    }
    for (std::size_t r = 0; r < hf.merge_count(); ++r) {
      if (ours.model().merges[r] != hf.model().merges[r]) {
        FAIL_CHECK("merge " << r << " differs");
        break;
      }
    }
    CHECK(ours.model().added_tokens.size() == 1);
    CHECK(ours.to_json() == read_file(path));
    // Reading and writing their file changes nothing.
    CHECK(hf.to_json() == read_file(path));
  }
}

TEST_CASE("hf: with the GPT-4 split pattern too, training gives BpeTrainer's file byte for byte") {
  TrainerOptions options;
  options.vocab_size = 1000;
  options.pattern = SplitPattern::gpt4;
  const std::string expected = read_file(kFixtures + "hf_gpt4_1000.json");
  CHECK(train_bpe(read_file(kFixtures + "moby_slice.txt"), options).to_json() == expected);
  CHECK(Tokenizer::from_json(expected, "hf_gpt4_1000.json").model().pattern == SplitPattern::gpt4);
}

TEST_CASE("hf: ids equal Hugging Face's for sample texts and the whole slice") {
  const auto fixture = nlohmann::json::parse(read_file(kFixtures + "ids.json"));
  const auto texts = fixture["texts"].get<std::vector<std::string>>();
  REQUIRE(texts.size() >= 5);
  const std::string slice = read_file(kFixtures + "moby_slice.txt");
  for (const std::uint32_t vocab : {512u, 1024u}) {
    CAPTURE(vocab);
    const std::string key = std::to_string(vocab);
    const Tokenizer hf = Tokenizer::load(kFixtures + "hf_" + key + ".json");
    const auto expected = fixture["ids_" + key].get<std::vector<std::vector<std::uint32_t>>>();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      CAPTURE(i);
      CHECK(hf.encode(texts[i]) == expected[i]);
      CHECK(hf.decode(expected[i]) == texts[i]);
    }
    const auto ids = hf.encode(slice);
    CHECK(ids.size() == fixture["slice_tokens_" + key].get<std::size_t>());
    CHECK(ids_sha(ids) == fixture["slice_sha_ids_" + key].get<std::string>());
  }
}

TEST_CASE("hf: training and encoding do not depend on the thread count") {
  const std::string text = read_file(kFixtures + "moby_slice.txt");
  std::string big;
  for (int i = 0; i < 6; ++i) big += text;  // > 2 chunks of the parallel encoder
  const int before = thread_count();
  std::string json_sha, id_sha;
  for (const int threads : {1, 2, 3, 8}) {
    CAPTURE(threads);
    set_thread_count(threads);
    TrainerOptions options;
    options.vocab_size = 700;
    const Tokenizer tok = train_bpe(big, options);
    const std::string j = sha256_hex(tok.to_json());
    const std::string s = ids_sha(tok.encode(big));
    if (json_sha.empty()) json_sha = j, id_sha = s;
    CHECK(j == json_sha);
    CHECK(s == id_sha);
  }
  set_thread_count(before);
}

TEST_CASE("hf: whole corpora give Hugging Face's exact tokenizer.json (when corpus/ has them)") {
  // SHA-256 of the files BpeTrainer (tokenizers 0.23.2, 16 threads) wrote on the H100 machine
  // for the whole corpus as one text; ours were identical there (docs/BENCHMARKS.md).
  struct Case {
    const char* corpus;
    std::uint32_t vocab;
    const char* sha256;
  };
  for (const Case& c : {Case{"corpus/moby-dick.txt", 2048, "ec85ba5a16707e67b0930037eb36b162b41a54d0edb88b8910c47d3e5f3b73b5"},
                        Case{"corpus/sotu.txt", 8192, "c252889f7937dd9649e772808adcec8a62fb7f08778891883d4a153aad4ff3a1"}}) {
    if (!std::filesystem::exists(c.corpus)) {
      MESSAGE("skipped: no " << c.corpus << " (make corpus CONFIG=...)");
      continue;
    }
    TrainerOptions options;
    options.vocab_size = c.vocab;
    CHECK_MESSAGE(sha256_hex(train_bpe(read_file(c.corpus), options).to_json()) == c.sha256, c.corpus);
  }
}
