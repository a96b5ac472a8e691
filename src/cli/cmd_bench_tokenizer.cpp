// minitx bench tokenizer: training and encoding speed on one corpus, as CSV; optionally with the
// Hugging Face baseline's lines (scripts/hf_tokenizer_peer.py output) parsed into the same table.
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <optional>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "common.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/threads.h"
#include "minitx/tokenizer/trainer.h"

namespace minitx::cli {
namespace {

struct Row {
  std::string tool, corpus;
  std::uint64_t bytes;
  std::uint32_t vocab;
  int threads;
  std::string phase;
  double seconds;
  std::uint64_t tokens;
};

std::string csv_line(const Row& r) {
  const double mbps = r.seconds > 0 ? static_cast<double>(r.bytes) / r.seconds / 1e6 : 0.0;
  return fmt::format("{},{},{},{},{},{},{:.4f},{:.2f},{}\n", r.tool, r.corpus, r.bytes, r.vocab, r.threads, r.phase, r.seconds, mbps, r.tokens);
}

template <class F>
double best_of(int repeat, F&& fn) {
  double best = 1e300;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// "hf_tokenizers corpus=sotu bytes=... vocab=8192 threads=16 train_s=4.3 encode_s=8.1 tokens=..."
std::vector<Row> parse_hf_log(const std::string& path) {
  std::vector<Row> rows;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("hf_tokenizers ", 0) != 0) continue;
    std::map<std::string, std::string> kv;
    std::istringstream words(line.substr(14));
    std::string word;
    while (words >> word)
      if (const auto eq = word.find('='); eq != std::string::npos) kv[word.substr(0, eq)] = word.substr(eq + 1);
    for (const char* key : {"corpus", "bytes", "vocab", "threads", "train_s", "encode_s", "tokens"})
      if (kv.count(key) == 0) fail("{}: line lacks {}=: {}", path, key, excerpt(line));
    try {
      Row base{"hf_tokenizers", kv["corpus"], std::stoull(kv["bytes"]), static_cast<std::uint32_t>(std::stoul(kv["vocab"])),
               std::stoi(kv["threads"]), "", 0, std::stoull(kv["tokens"])};
      Row train = base, encode = base;
      train.phase = "train";
      train.seconds = std::stod(kv["train_s"]);
      encode.phase = "encode";
      encode.seconds = std::stod(kv["encode_s"]);
      rows.push_back(train);
      rows.push_back(encode);
    } catch (const std::exception&) {
      fail("{}: cannot parse the numbers of: {}", path, excerpt(line));
    }
  }
  return rows;
}

}  // namespace

int run_bench_tokenizer(Args& args) {
  const auto input = args.required("--input");
  const auto vocab = static_cast<std::uint32_t>(args.integer("--vocab-size", 257, 1 << 20, 8192));
  const int repeat = static_cast<int>(args.integer("--repeat", 1, 100, 3));
  const auto output = args.option("--output");
  const auto hf_log = args.option("--hf-log");
  std::string name = args.option("--name").value_or(fs::path(input).stem().string());
  const auto save = args.option("--save");
  args.done();

  const std::string text = read_file(input);
  if (text.empty()) fail("bench tokenizer: {}: the input is empty", input);
  const int threads = thread_count();
  TrainerOptions options;
  options.vocab_size = vocab;
  std::vector<Row> rows;
  if (hf_log) rows = parse_hf_log(*hf_log);

  std::optional<Tokenizer> tokenizer;
  TrainStats stats;
  const double train_s = best_of(repeat, [&] { tokenizer.emplace(train_bpe(text, options, &stats)); });
  rows.push_back({"minitx", name, text.size(), vocab, threads, "train", train_s, tokenizer->vocab_size()});
  if (save) tokenizer->save(*save);
  rows.push_back({"minitx", name, text.size(), vocab, threads, "train_count", stats.count_seconds, stats.unique_words});
  rows.push_back({"minitx", name, text.size(), vocab, threads, "train_merge", stats.merge_seconds, tokenizer->merge_count()});

  // Each timed encode uses a fresh copy of the tokenizer, so its word cache starts cold, as a
  // just-trained tokenizer's does.
  std::vector<std::uint32_t> ids;
  const auto time_encode = [&](int n_threads, const char* phase) {
    set_thread_count(n_threads);
    double best = 1e300;
    for (int i = 0; i < repeat; ++i) {
      const Tokenizer fresh(tokenizer->model());
      const auto start = std::chrono::steady_clock::now();
      ids = fresh.encode(text);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    rows.push_back({"minitx", name, text.size(), vocab, n_threads, phase, best, ids.size()});
  };
  time_encode(1, "encode");
  time_encode(threads, "encode");
  set_thread_count(threads);
  std::string back;
  const double decode_s = best_of(repeat, [&] { back = tokenizer->decode(ids); });
  if (back != text) fail("bench tokenizer: decode(encode(text)) differs from the text");
  rows.push_back({"minitx", name, text.size(), vocab, threads, "decode", decode_s, ids.size()});

  std::string csv = "tool,corpus,bytes,vocab,threads,phase,seconds,mb_per_s,tokens\n";
  for (const Row& r : rows) csv += csv_line(r);
  if (output) {
    write_file_atomic(*output, csv);
    fmt::print("bench tokenizer: wrote {}\n", *output);
  }
  fmt::print("{}", csv);
  return 0;
}

}  // namespace minitx::cli
