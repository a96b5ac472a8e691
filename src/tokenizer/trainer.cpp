#include "minitx/tokenizer/trainer.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <queue>
#include <unordered_map>

#include "flat_map.h"
#include "minitx/core/error.h"
#include "minitx/core/progress.h"
#include "minitx/core/threads.h"
#include "minitx/tokenizer/byte_level.h"

namespace minitx {

std::vector<std::pair<std::string, std::uint64_t>> count_pretokens(std::string_view text, SplitPattern pattern) {
  using Counts = std::unordered_map<std::string_view, std::uint64_t>;
  const auto cuts = chunk_boundaries(text, std::size_t{1} << 18);
  const std::size_t n_chunks = cuts.size() - 1;
  // One map per worker's range of chunks (indexed by its first chunk).
  std::vector<Counts> parts(n_chunks);
  parallel_for(n_chunks, [&](std::size_t lo, std::size_t hi) {
    Counts& counts = parts[lo];
    counts.reserve(1 << 15);
    for (std::size_t i = lo; i < hi; ++i)
      for_each_pretoken(text.substr(cuts[i], cuts[i + 1] - cuts[i]), pattern, [&](std::string_view w) { ++counts[w]; });
  });
  // Sums are exact whatever the grouping; the result is sorted, so the thread count never shows.
  Counts total = std::move(parts[0]);
  for (std::size_t i = 1; i < parts.size(); ++i)
    for (const auto& [w, c] : parts[i]) total[w] += c;
  std::vector<std::pair<std::string, std::uint64_t>> out;
  out.reserve(total.size());
  for (const auto& [w, c] : total) out.emplace_back(std::string(w), c);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

using detail::pair_key;

struct Change {
  std::uint64_t pair;
  std::int32_t delta;
  std::uint32_t word;
};

// Hugging Face's Word::merge: replace each non-overlapping (a, b), left to right, and report the
// pair changes it makes around each replacement, in the same order and with the same quirks.
void merge_word(std::vector<std::uint32_t>& s, std::uint32_t a, std::uint32_t b, std::uint32_t replacement, std::uint32_t word,
                std::vector<Change>& changes) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != a || i + 1 >= s.size() || s[i + 1] != b) continue;
    if (i > 0) {
      changes.push_back({pair_key(s[i - 1], a), -1, word});
      changes.push_back({pair_key(s[i - 1], replacement), 1, word});
    }
    s[i] = replacement;
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    if (i + 1 < s.size()) {
      changes.push_back({pair_key(b, s[i + 1]), -1, word});
      changes.push_back({pair_key(replacement, s[i + 1]), 1, word});
    }
  }
}

struct Entry {
  std::uint64_t count;
  std::uint64_t pair;
  std::uint32_t where;  // index of its word list in the pool
};

// Highest count first; equal counts: the smaller (left, right) pair first.
struct EntryLess {
  bool operator()(const Entry& x, const Entry& y) const { return x.count != y.count ? x.count < y.count : x.pair > y.pair; }
};

class ListPool {
 public:
  std::uint32_t make(std::vector<std::uint32_t> words) {
    if (!free_.empty()) {
      const std::uint32_t i = free_.back();
      free_.pop_back();
      lists_[i] = std::move(words);
      return i;
    }
    lists_.push_back(std::move(words));
    return static_cast<std::uint32_t>(lists_.size() - 1);
  }
  std::vector<std::uint32_t>& operator[](std::uint32_t i) { return lists_[i]; }
  void release(std::uint32_t i) {
    lists_[i] = {};
    free_.push_back(i);
  }

 private:
  std::vector<std::vector<std::uint32_t>> lists_;
  std::vector<std::uint32_t> free_;
};

}  // namespace

Tokenizer train_bpe(std::string_view text, const TrainerOptions& options, TrainStats* stats) {
  if (text.empty()) fail("tokenizer train: the corpus is empty");
  const std::size_t floor = 256 + options.special_tokens.size();
  if (options.vocab_size < floor)
    fail("tokenizer train: vocab_size {} is below 256 byte symbols + {} special tokens = {}", options.vocab_size, options.special_tokens.size(),
         floor);
  for (const auto& s : options.special_tokens)
    if (s.empty()) fail("tokenizer train: a special token is empty");

  const auto t0 = std::chrono::steady_clock::now();
  const auto word_counts = count_pretokens(text, options.pattern);
  const auto t1 = std::chrono::steady_clock::now();

  // The vocabulary, keyed as the reference keys it: by the token's string in tokenizer.json.
  std::unordered_map<std::string, std::uint32_t> w2id;
  std::vector<std::string> id2bytes;
  std::vector<AddedToken> specials;
  for (const auto& s : options.special_tokens) {
    if (w2id.count(s) != 0) continue;
    const auto id = static_cast<std::uint32_t>(id2bytes.size());
    w2id.emplace(s, id);
    id2bytes.push_back(s);
    specials.push_back({id, s, true});
  }
  std::vector<std::pair<std::uint32_t, std::uint8_t>> alphabet;  // (code point, byte)
  for (int b = 0; b < 256; ++b) alphabet.emplace_back(byte_to_unicode(static_cast<std::uint8_t>(b)), static_cast<std::uint8_t>(b));
  std::sort(alphabet.begin(), alphabet.end());
  std::array<std::uint32_t, 256> byte_id{};
  for (const auto& [cp, b] : alphabet) {
    std::string key;
    append_utf8(key, cp);
    const auto [it, fresh] = w2id.emplace(key, static_cast<std::uint32_t>(id2bytes.size()));
    if (fresh) id2bytes.push_back(std::string(1, static_cast<char>(b)));
    byte_id[b] = it->second;
  }

  // Words as symbol ids, and the initial pair counts with the words holding each pair.
  const std::size_t n_words = word_counts.size();
  std::vector<std::vector<std::uint32_t>> words(n_words);
  std::vector<std::int64_t> counts(n_words);
  detail::FlatMap<std::int64_t> pair_counts(1 << 16);
  detail::FlatMap<std::uint32_t> first_list(1 << 16);  // pair -> 1 + its list during setup
  ListPool pool;
  std::vector<std::uint64_t> setup_pairs;
  for (std::size_t w = 0; w < n_words; ++w) {
    const auto& [bytes, count] = word_counts[w];
    counts[w] = static_cast<std::int64_t>(count);
    auto& s = words[w];
    s.reserve(bytes.size());
    for (const char c : bytes) s.push_back(byte_id[static_cast<std::uint8_t>(c)]);
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      const std::uint64_t p = pair_key(s[i], s[i + 1]);
      pair_counts[p] += counts[w];
      std::uint32_t& list = first_list[p];
      if (list == 0) {
        list = pool.make({}) + 1;
        setup_pairs.push_back(p);
      }
      auto& v = pool[list - 1];
      if (v.empty() || v.back() != w) v.push_back(static_cast<std::uint32_t>(w));
    }
  }
  std::priority_queue<Entry, std::vector<Entry>, EntryLess> queue;
  std::sort(setup_pairs.begin(), setup_pairs.end());
  for (const std::uint64_t p : setup_pairs) {
    const std::uint32_t list = *first_list.find(p) - 1;
    const std::int64_t c = *pair_counts.find(p);
    if (c > 0) queue.push({static_cast<std::uint64_t>(c), p, list});
    else pool.release(list);
  }

  std::optional<Progress> progress;
  if (options.progress) progress.emplace("tokenizer train", options.vocab_size, "tokens");
  std::vector<std::pair<std::uint64_t, std::uint32_t>> merges;  // (pair, new id), repeats included
  std::vector<Change> changes;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> grown;   // (pair, word) with a positive change
  while (w2id.size() < options.vocab_size && !queue.empty()) {
    Entry top = queue.top();
    queue.pop();
    const auto current = static_cast<std::uint64_t>(*pair_counts.find(top.pair));
    if (top.count != current) {
      top.count = current;
      queue.push(top);
      continue;
    }
    if (top.count < 1 || options.min_frequency > top.count) break;

    const auto a = static_cast<std::uint32_t>(top.pair >> 32), b = static_cast<std::uint32_t>(top.pair);
    std::string bytes = id2bytes[a] + id2bytes[b];
    const auto [it, fresh] = w2id.emplace(bytes_to_byte_level(bytes), static_cast<std::uint32_t>(id2bytes.size()));
    if (fresh) id2bytes.push_back(std::move(bytes));
    const std::uint32_t new_id = it->second;
    merges.emplace_back(top.pair, new_id);

    changes.clear();
    for (const std::uint32_t w : pool[top.where]) merge_word(words[w], a, b, new_id, w, changes);
    pool.release(top.where);
    grown.clear();
    for (const Change& c : changes) {
      pair_counts[c.pair] += c.delta * counts[c.word];
      if (c.delta > 0) grown.emplace_back(c.pair, c.word);
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (std::size_t i = 0; i < grown.size();) {
      std::size_t j = i;
      std::vector<std::uint32_t> list;
      while (j < grown.size() && grown[j].first == grown[i].first) list.push_back(grown[j++].second);
      const std::int64_t c = *pair_counts.find(grown[i].first);
      if (c > 0) queue.push({static_cast<std::uint64_t>(c), grown[i].first, pool.make(std::move(list))});
      i = j;
    }
    if (progress && merges.size() % 256 == 0) progress->update(w2id.size());
  }
  if (progress) progress->finish(fmt::format("{} merges", merges.size()));
  const auto t2 = std::chrono::steady_clock::now();

  // A pair merged twice keeps its last rank, as the reference's merge map does when saved.
  TokenizerModel model;
  model.pattern = options.pattern;
  model.vocab = std::move(id2bytes);
  model.added_tokens = std::move(specials);
  detail::FlatMap<std::uint32_t> last(merges.size() + 16);
  for (std::uint32_t r = 0; r < merges.size(); ++r) last[merges[r].first] = r + 1;
  for (std::uint32_t r = 0; r < merges.size(); ++r)
    if (*last.find(merges[r].first) == r + 1)
      model.merges.emplace_back(static_cast<std::uint32_t>(merges[r].first >> 32), static_cast<std::uint32_t>(merges[r].first));
  if (stats != nullptr) {
    stats->count_seconds = std::chrono::duration<double>(t1 - t0).count();
    stats->merge_seconds = std::chrono::duration<double>(t2 - t1).count();
    stats->unique_words = n_words;
  }
  return Tokenizer(std::move(model));
}

}  // namespace minitx
