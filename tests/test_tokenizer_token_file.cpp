// Token files, and the tokenizer commands end to end (through their run_* functions).
#include <fmt/format.h>

#include <fstream>
#include <utility>
#include <vector>

#include "../src/cli/commands.h"
#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/data/token_file.h"
#include "minitx/experiment.h"
#include "minitx/tokenizer/tokenizer.h"

using namespace minitx;
using minitx::cli::Args;

namespace {

const std::string kSha(64, 'a');

std::string slurp(const fs::path& p) { return read_file(p); }

void patch(const fs::path& p, std::size_t offset, std::string_view bytes) {
  std::string data = read_file(p);
  data.replace(offset, bytes.size(), bytes);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

// As patch, then the checksum at 64 made right again (SHA-256 of the fields [0, 64) and the ids),
// so that the reader goes on to check the field itself.
void patch_and_sum(const fs::path& p, std::size_t offset, std::string_view bytes) {
  patch(p, offset, bytes);
  const std::string data = read_file(p);
  Sha256 hash;
  hash.update(std::string_view(data).substr(0, 64));
  hash.update(std::string_view(data).substr(96));
  const Digest digest = hash.finish();
  patch(p, 64, std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace

TEST_CASE("token file: round trip with 2- and 4-byte ids") {
  TempDir dir;
  for (const std::uint32_t vocab : {512u, 65536u, 100000u}) {
    const TokenFile file{vocab, kSha, {0, 1, vocab - 1, 7}};
    const fs::path p = dir.path() / "t.bin";
    write_token_file(p, file);
    CHECK(fs::file_size(p) == 96 + 4 * (vocab <= 65536 ? 2 : 4));
    const TokenFile back = read_token_file(p);
    CHECK(back.vocab_size == vocab);
    CHECK(back.tokenizer_sha256 == kSha);
    CHECK(back.ids == file.ids);
  }
  write_token_file(dir.path() / "empty.bin", TokenFile{300, kSha, {}});
  CHECK(read_token_file(dir.path() / "empty.bin").ids.empty());
}

TEST_CASE("token file: every bad header or payload is a clear error") {
  TempDir dir;
  const fs::path p = dir.path() / "t.bin";
  const auto fresh = [&] { write_token_file(p, TokenFile{1000, kSha, {1, 2, 3}}); };
  CHECK_ERROR_CONTAINS(write_token_file(p, TokenFile{10, kSha, {10}}), "token 10 at position 0 is not below the vocab size 10");
  CHECK_FALSE(fs::exists(p));  // nothing written
  CHECK_ERROR_CONTAINS(write_token_file(p, TokenFile{10, "xyz", {}}), "is not 64 lowercase hex digits");
  CHECK_ERROR_CONTAINS(read_token_file(dir.path() / "missing.bin"), "missing.bin: cannot open");
  fresh();
  std::string data = slurp(p);
  CHECK(data.size() == 96 + 3 * 2);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data.substr(0, data.size() - 1);
  CHECK_ERROR_CONTAINS(read_token_file(p), "truncated or padded");
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data.substr(0, 10);
  CHECK_ERROR_CONTAINS(read_token_file(p), "10 bytes, shorter than its 96-byte header");
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data.substr(0, 64);
  CHECK_ERROR_CONTAINS(read_token_file(p), "64 bytes, shorter than its 96-byte header");
  fresh();
  patch(p, 0, "X");
  CHECK_ERROR_CONTAINS(read_token_file(p), "bad magic");
  fresh();
  patch(p, 8, std::string("\x03\0\0\0", 4));
  CHECK_ERROR_CONTAINS(read_token_file(p), "version 3 is not supported (expected 2)");
  // A version 1 file (64-byte header, no checksum) is refused by name.
  fresh();
  patch(p, 8, std::string("\x01\0\0\0", 4));
  CHECK_ERROR_CONTAINS(read_token_file(p), "t.bin: token file format version 1 (its header and ids not covered by a "
                                           "checksum) is no longer read: encode the corpus again");
  // The checksum covers every field of the header and every id: a change to any is refused.
  for (const auto& [offset, bytes] : std::vector<std::pair<std::size_t, std::string>>{
           {12, std::string("\x02\0\0\0", 4)},  // vocab 2: ids 2 and 3 would be out of range
           {12, std::string("\xe9\x03\0\0", 4)},  // vocab 1001: more than the tokenizer has
           {20, std::string("\1", 1)},
           {32, std::string("b")},                  // another tokenizer
           {64, std::string()},                     // the checksum itself (a bit of it flipped)
           {96, std::string("\2")}}) {             // an id
    CAPTURE(offset);
    fresh();
    patch(p, offset, bytes.empty() ? std::string(1, static_cast<char>(slurp(p)[offset] ^ 1)) : bytes);
    CHECK_ERROR_CONTAINS(read_token_file(p), "t.bin: checksum mismatch: the file is corrupt");
  }
  // Fields that are wrong under a right checksum are refused one by one.
  fresh();
  patch_and_sum(p, 16, std::string("\x03\0\0\0", 4));
  CHECK_ERROR_CONTAINS(read_token_file(p), "id width 3 is not 2 or 4");
  fresh();
  patch_and_sum(p, 12, std::string("\x02\0\0\0", 4));  // vocab 2: id 2 and 3 are out of range
  CHECK_ERROR_CONTAINS(read_token_file(p), "token 2 at position 1 is not below the vocab size 2");
  fresh();
  patch_and_sum(p, 12, std::string("\0\0\0\0", 4));
  CHECK_ERROR_CONTAINS(read_token_file(p), "vocab size is 0");
  fresh();
  patch_and_sum(p, 12, std::string("\0\0\2\0", 4));
  CHECK_ERROR_CONTAINS(read_token_file(p), "id width 2 cannot hold");
  fresh();
  patch_and_sum(p, 20, std::string("\1", 1));
  CHECK_ERROR_CONTAINS(read_token_file(p), "reserved header field");
  fresh();
  patch(p, 24, std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8));
  CHECK_ERROR_CONTAINS(read_token_file(p), "truncated or padded");
  // 2^63 ids of 2 bytes: the size they claim wraps to 0, which is what a header-only file holds.
  write_token_file(p, TokenFile{1000, kSha, {}});
  patch(p, 24, std::string("\0\0\0\0\0\0\0\x80", 8));
  CHECK_ERROR_CONTAINS(read_token_file(p), "header says 9223372036854775808 ids of 2 bytes, but the file has 0 bytes");
}

TEST_CASE("token file: the validation split") {
  CHECK(validation_start(100, 0.1) == 90);
  CHECK(validation_start(3, 0.1) == 2);  // at least one validation token
  CHECK(validation_start(1, 0.1) == 1);
  CHECK(validation_start(0, 0.1) == 0);
  CHECK(validation_start(10, 0.0) == 10);
}

TEST_CASE("tokenizer commands: train, encode, decode, info, bench; bad input fails with no output") {
  TempDir dir;
  const fs::path corpus = dir.path() / "c.txt";
  std::string text = read_file("tests/fixtures/hf/moby_slice.txt").substr(0, 60000);
  write_file_atomic(corpus, text);
  const fs::path tok = dir.path() / "tok.json";
  const auto run = [](int (*fn)(Args&), std::vector<std::string> tokens) {
    Args args("tokenizer", std::move(tokens));
    return fn(args);
  };
  CHECK(run(cli::run_tokenizer_train, {"--input", corpus.string(), "--vocab-size", "400", "--output", tok.string(), "--quiet"}) == 0);
  CHECK(Tokenizer::load(tok).vocab_size() == 400);
  const fs::path bin = dir.path() / "c.bin";
  CHECK(run(cli::run_tokenizer_encode, {"--tokenizer", tok.string(), "--input", corpus.string(), "--output", bin.string()}) == 0);
  const TokenFile file = read_token_file(bin);
  CHECK(file.tokenizer_sha256 == sha256_file_hex(tok));
  const fs::path back = dir.path() / "back.txt";
  CHECK(run(cli::run_tokenizer_decode, {"--tokenizer", tok.string(), "--input", bin.string(), "--output", back.string()}) == 0);
  CHECK(read_file(back) == text);
  CHECK(run(cli::run_tokenizer_decode, {"--tokenizer", tok.string(), "--ids", "40,41", "--output", back.string()}) == 0);
  CHECK(read_file(back) == "HI");  // id 0 is <|endoftext|>, then the bytes from '!'
  CHECK(run(cli::run_tokenizer_info, {"--tokenizer", tok.string(), "--input", corpus.string()}) == 0);
  const fs::path csv = dir.path() / "bench.csv";
  const fs::path hf_log = dir.path() / "hf.log";
  write_file_atomic(hf_log, "noise\nhf_tokenizers corpus=c bytes=60000 vocab=400 threads=16 train_s=0.5 encode_s=0.04 tokens=123 enc_MBps=1.5\n");
  CHECK(run(cli::run_bench_tokenizer, {"--input", corpus.string(), "--vocab-size", "400", "--repeat", "1", "--output", csv.string(), "--hf-log",
                                       hf_log.string()}) == 0);
  const std::string table = read_file(csv);
  CHECK(table.find("hf_tokenizers,c,60000,400,16,train,0.5000") != std::string::npos);
  CHECK(table.find("minitx,c,60000,400,1,encode,") != std::string::npos);

  // Errors: each names the problem and leaves no output behind.
  const fs::path empty = dir.path() / "empty.txt";
  write_file_atomic(empty, "");
  const fs::path out = dir.path() / "never.json";
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_train, {"--input", empty.string(), "--vocab-size", "400", "--output", out.string()}),
                       "empty.txt: the corpus is empty");
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_train, {"--input", corpus.string(), "--vocab-size", "100", "--output", out.string()}),
                       "vocab_size 100 is below");
  CHECK_FALSE(fs::exists(out));
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_train, {"--input", corpus.string(), "--output", out.string()}), "--vocab-size is required");
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_decode, {"--tokenizer", tok.string(), "--ids", "40,999"}), "token id 999 at position 1 is out of range");
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_decode, {"--tokenizer", tok.string(), "--ids", "x"}), "'x' is not a token id");
  const fs::path other = dir.path() / "other.json";
  CHECK(run(cli::run_tokenizer_train, {"--input", corpus.string(), "--vocab-size", "401", "--output", other.string(), "--quiet"}) == 0);
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_decode, {"--tokenizer", other.string(), "--input", bin.string()}),
                       "was encoded by the tokenizer with SHA-256");
  const fs::path broken = dir.path() / "broken.json";
  write_file_atomic(broken, read_file(tok).substr(0, 1000));
  CHECK_ERROR_CONTAINS(run(cli::run_tokenizer_encode, {"--tokenizer", broken.string(), "--input", corpus.string(), "--output", out.string()}),
                       "broken.json: not a valid tokenizer.json");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("tokenizer commands: config-driven train and encode write OUT/tokenizer.json, train.bin, val.bin") {
  TempDir dir;
  const std::string text = read_file("tests/fixtures/hf/moby_slice.txt");
  fs::create_directories(dir.path() / "corpus");
  write_file_atomic(dir.path() / "corpus" / "slice.txt", text);
  const fs::path config = dir.path() / "t.toml";
  write_file_atomic(config, fmt::format("[corpus]\nname = \"slice\"\nsha256 = \"{}\"\n[[corpus.sources]]\nurl = \"file://{}\"\n"
                                        "[tokenizer]\nvocab_size = 512\n[data]\nval_fraction = 0.25\n",
                                        sha256_hex(text), (dir.path() / "corpus" / "slice.txt").string()));
  const Experiment e = load_experiment(config);
  CHECK(e.tokenizer.trainer.vocab_size == 512);
  CHECK(e.data.val_fraction == 0.25);
  const fs::path out = dir.path() / "out";
  const std::string corpus_dir = (dir.path() / "corpus").string();
  Args train("tokenizer train", {"--config", config.string(), "--out", out.string(), "--corpus-dir", corpus_dir, "--quiet"});
  CHECK(cli::run_tokenizer_train(train) == 0);
  CHECK(read_file(out / "tokenizer.json") == read_file("tests/fixtures/hf/hf_512.json"));
  Args encode("tokenizer encode", {"--config", config.string(), "--out", out.string(), "--corpus-dir", corpus_dir});
  CHECK(cli::run_tokenizer_encode(encode) == 0);
  const TokenFile tr = read_token_file(out / "train.bin"), va = read_token_file(out / "val.bin");
  CHECK(tr.ids.size() + va.ids.size() == 71824);  // the slice's length under Hugging Face's tokenizer
  CHECK(va.ids.size() == 17956);
  const Tokenizer tok = Tokenizer::load(out / "tokenizer.json");
  std::vector<std::uint32_t> all = tr.ids;
  all.insert(all.end(), va.ids.begin(), va.ids.end());
  CHECK(tok.decode(all) == text);

  write_file_atomic(config, read_file(config) + "[tokenizer]\n");
  CHECK_ERROR_CONTAINS(load_experiment(config), "tokenizer");
  write_file_atomic(config, fmt::format("[corpus]\nname = \"slice\"\nsha256 = \"{}\"\n[[corpus.sources]]\nurl = \"file://x\"\n"
                                        "[tokenizer]\nvocab_size = 256\n",
                                        sha256_hex(text)));
  CHECK_ERROR_CONTAINS(load_experiment(config), "vocab_size");
  write_file_atomic(config, fmt::format("[corpus]\nname = \"slice\"\nsha256 = \"{}\"\n[[corpus.sources]]\nurl = \"file://x\"\n"
                                        "[tokenizer]\nvocab_size = 300\npattern = \"bert\"\n",
                                        sha256_hex(text)));
  CHECK_ERROR_CONTAINS(load_experiment(config), "pattern");
}
