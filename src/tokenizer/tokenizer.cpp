#include "minitx/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <string>
#include <unordered_map>

#include "flat_map.h"
#include "nfc.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/threads.h"
#include "minitx/tokenizer/byte_level.h"
#include "tokenizer_tables.h"

namespace minitx {

namespace {

std::atomic<std::uint64_t> g_next_serial{1};

// Per-thread cache of pre-token -> ids, tied to one tokenizer instance by its serial number.
// Open addressing over arenas: the lookup is the hot path of encoding (most pre-tokens repeat).
class WordCache {
 public:
  std::uint64_t owner = 0;

  void reset(std::uint64_t serial) {
    owner = serial;
    slots_.assign(1 << 12, Slot{});
    keys_.clear();
    ids_.clear();
    size_ = 0;
  }
  bool full() const { return size_ > (1u << 20) || keys_.size() > (std::size_t{64} << 20); }

  static std::uint64_t hash(std::string_view w) {
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ w.size();
    std::size_t i = 0;
    for (; i + 8 <= w.size(); i += 8) {
      std::uint64_t v;
      std::memcpy(&v, w.data() + i, 8);
      h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, w.data() + i, w.size() - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
  }

  // Appends the cached ids of `w` and returns true, or returns false.
  bool get(std::string_view w, std::uint64_t h, std::vector<std::uint32_t>& out) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key_len == 0) return false;
      if (s.hash == h && s.key_len == w.size() && std::memcmp(keys_.data() + s.key_off, w.data(), w.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.ids_len);
        return true;
      }
    }
  }

  void put(std::string_view w, std::uint64_t h, const std::uint32_t* ids, std::size_t n) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Slot s{h, static_cast<std::uint32_t>(keys_.size()), static_cast<std::uint32_t>(w.size()), static_cast<std::uint32_t>(ids_.size()),
           static_cast<std::uint32_t>(n)};
    keys_.append(w);
    ids_.insert(ids_.end(), ids, ids + n);
    insert(s);
    ++size_;
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  void insert(const Slot& s) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = s.hash & mask;
    while (slots_[i].key_len != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old)
      if (s.key_len != 0) insert(s);
  }

  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<std::uint32_t> ids_;
  std::size_t size_ = 0;
};
thread_local WordCache t_cache;

struct MergeItem {
  std::uint32_t rank, pos, new_id;
};

struct WordScratch {
  std::vector<std::uint32_t> c, len;
  std::vector<std::int64_t> prev, next;
  std::vector<MergeItem> heap;
};
thread_local WordScratch t_scratch;

// Min-heap order on (rank, pos), as Hugging Face's BPE pops its merge queue.
inline bool heap_less(const MergeItem& a, const MergeItem& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerModel model) : model_(std::move(model)), tables_(std::make_unique<Tables>()) {
  Tables& t = *tables_;
  t.serial = g_next_serial.fetch_add(1);
  const std::size_t n = model_.vocab.size();
  MINITX_CHECK(n > 0 && n <= (1u << 31), "tokenizer: vocabulary size {} is out of range", n);
  t.is_added.assign(n, false);
  for (const AddedToken& a : model_.added_tokens) {
    MINITX_CHECK(a.id < n, "tokenizer: added token '{}' has id {} beyond the vocabulary ({} tokens)", a.content, a.id, n);
    MINITX_CHECK(!a.content.empty(), "tokenizer: added token {} is empty", a.id);
    MINITX_CHECK(model_.vocab[a.id] == a.content, "tokenizer: added token {} is '{}' but the vocabulary has '{}'", a.id, a.content,
                 model_.vocab[a.id]);
    t.is_added[a.id] = true;
  }
  t.index.reserve(n);
  for (std::uint32_t id = 0; id < n; ++id) {
    if (t.is_added[id]) continue;
    MINITX_CHECK(!model_.vocab[id].empty(), "tokenizer: token {} is empty", id);
    t.index.emplace(model_.vocab[id], id);  // the first id wins for duplicated strings
  }
  for (const AddedToken& a : model_.added_tokens) t.index.emplace(a.content, a.id);
  for (int b = 0; b < 256; ++b) {
    const auto it = t.index.find(std::string(1, static_cast<char>(b)));
    MINITX_CHECK(it != t.index.end() && !t.is_added[it->second], "tokenizer: no token for byte 0x{:02X} (a byte-level BPE needs all 256)", b);
    t.byte_id[static_cast<std::size_t>(b)] = it->second;
  }
  t.merges = detail::FlatMap<detail::MergeValue>(model_.merges.size() + 16);
  for (std::size_t r = 0; r < model_.merges.size(); ++r) {
    const auto [a, b] = model_.merges[r];
    MINITX_CHECK(a < n && b < n, "tokenizer: merge {} refers to id {} beyond the vocabulary ({} tokens)", r, std::max(a, b), n);
    const std::string joined = model_.vocab[a] + model_.vocab[b];
    const auto it = t.index.find(joined);
    MINITX_CHECK(it != t.index.end(), "tokenizer: merge {} ('{}' + '{}') makes a token that is not in the vocabulary", r,
                 bytes_to_byte_level(model_.vocab[a]), bytes_to_byte_level(model_.vocab[b]));
    // A repeated pair keeps its last rank, as a map filled in list order does.
    t.merges[detail::pair_key(a, b)] = detail::MergeValue{static_cast<std::uint32_t>(r), it->second};
  }
  for (const AddedToken& a : model_.added_tokens) {
    (a.special ? t.special_first : t.plain_first)[static_cast<std::uint8_t>(a.content[0])] = true;
    t.any_plain = t.any_plain || !a.special;
  }
  std::vector<AddedToken> sorted = model_.added_tokens;
  std::stable_sort(sorted.begin(), sorted.end(), [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  t.added_by_length = std::move(sorted);
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::optional<std::uint32_t> Tokenizer::token_id(std::string_view bytes) const {
  const auto it = tables_->index.find(bytes);
  if (it == tables_->index.end()) return std::nullopt;
  return it->second;
}

void Tokenizer::encode_word(std::string_view word, std::vector<std::uint32_t>& out) const {
  WordCache& cache = t_cache;
  if (cache.owner != tables_->serial || cache.full()) cache.reset(tables_->serial);
  encode_word_cached(word, out, &cache);
}

void Tokenizer::encode_word_cached(std::string_view word, std::vector<std::uint32_t>& out, void* cache_ptr) const {
  const Tables& t = *tables_;
  const std::size_t n = word.size();
  if (n == 0) return;
  if (n == 1) {
    out.push_back(t.byte_id[static_cast<std::uint8_t>(word[0])]);
    return;
  }
  WordCache& cache = *static_cast<WordCache*>(cache_ptr);
  const std::uint64_t h = WordCache::hash(word);
  if (cache.get(word, h, out)) return;
  const std::size_t start = out.size();
  bpe(word, out);
  cache.put(word, h, out.data() + start, out.size() - start);
}

void Tokenizer::bpe(std::string_view word, std::vector<std::uint32_t>& out) const {
  const Tables& t = *tables_;
  const std::size_t n = word.size();
  constexpr std::uint32_t kNone = ~std::uint32_t{0};
  if (n <= 64) {
    // Short words: keep each adjacent pair's rank beside it and merge the (rank, position)
    // minimum until none is left. This is the order in which Hugging Face's queue pops valid
    // entries: its stale entries are skipped, and one can never pass for a live pair (a
    // token's string fixes the span it covers, and symbols only grow rightwards).
    std::uint32_t sym[64], rank[64], next_id[64];
    std::size_t m = n;
    for (std::size_t i = 0; i < n; ++i) sym[i] = t.byte_id[static_cast<std::uint8_t>(word[i])];
    const auto look = [&](std::size_t i) {
      if (const auto* mv = t.merges.find(detail::pair_key(sym[i], sym[i + 1]))) {
        rank[i] = mv->rank;
        next_id[i] = mv->new_id;
      } else {
        rank[i] = kNone;
      }
    };
    for (std::size_t i = 0; i + 1 < m; ++i) look(i);
    while (m > 1) {
      std::size_t best = 0;
      for (std::size_t i = 1; i + 1 < m; ++i)
        if (rank[i] < rank[best]) best = i;
      if (rank[best] == kNone) break;
      sym[best] = next_id[best];
      for (std::size_t i = best + 1; i + 1 < m; ++i) {
        sym[i] = sym[i + 1];
        rank[i] = rank[i + 1];
        next_id[i] = next_id[i + 1];
      }
      --m;
      if (best + 1 < m) look(best);
      if (best > 0) look(best - 1);
    }
    out.insert(out.end(), sym, sym + m);
    return;
  }
  WordScratch& s = t_scratch;
  s.c.resize(n);
  s.len.assign(n, 1);
  s.prev.resize(n);
  s.next.resize(n);
  s.heap.clear();
  for (std::size_t i = 0; i < n; ++i) {
    s.c[i] = t.byte_id[static_cast<std::uint8_t>(word[i])];
    s.prev[i] = static_cast<std::int64_t>(i) - 1;
    s.next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
  }
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (const auto* m = t.merges.find(detail::pair_key(s.c[i], s.c[i + 1])))
      s.heap.push_back({m->rank, static_cast<std::uint32_t>(i), m->new_id});
  std::make_heap(s.heap.begin(), s.heap.end(), heap_less);
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end(), heap_less);
    const MergeItem top = s.heap.back();
    s.heap.pop_back();
    const std::size_t pos = top.pos;
    if (s.len[pos] == 0 || s.next[pos] < 0) continue;
    const auto right = static_cast<std::size_t>(s.next[pos]);
    // A stale entry: the pair at `pos` changed since it was queued.
    const auto* m = t.merges.find(detail::pair_key(s.c[pos], s.c[right]));
    if (m == nullptr || m->new_id != top.new_id) continue;
    s.c[pos] = top.new_id;
    s.len[pos] += s.len[right];
    s.next[pos] = s.next[right];
    s.len[right] = 0;
    if (s.next[pos] >= 0) s.prev[static_cast<std::size_t>(s.next[pos])] = static_cast<std::int64_t>(pos);
    if (s.prev[pos] >= 0) {
      const auto p = static_cast<std::size_t>(s.prev[pos]);
      if (const auto* pm = t.merges.find(detail::pair_key(s.c[p], s.c[pos]))) {
        s.heap.push_back({pm->rank, static_cast<std::uint32_t>(p), pm->new_id});
        std::push_heap(s.heap.begin(), s.heap.end(), heap_less);
      }
    }
    if (s.next[pos] >= 0) {
      const auto q = static_cast<std::size_t>(s.next[pos]);
      if (const auto* nm = t.merges.find(detail::pair_key(s.c[pos], s.c[q]))) {
        s.heap.push_back({nm->rank, static_cast<std::uint32_t>(pos), nm->new_id});
        std::push_heap(s.heap.begin(), s.heap.end(), heap_less);
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    if (s.len[i] != 0) out.push_back(s.c[i]);
}

// Splits `text` at added tokens: plain runs go to `plain(begin, end)`, matches to `token(id)`.
// Leftmost match, longest first, like Hugging Face's added vocabulary.
template <class Plain, class Token>
static void split_added(const Tokenizer::Tables& t, std::string_view text, bool allow_special, Plain&& plain, Token&& token) {
  if (!t.any_plain && (!allow_special || t.added_by_length.empty())) {
    plain(std::size_t{0}, text.size());
    return;
  }
  std::size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const auto b = static_cast<std::uint8_t>(text[pos]);
    const AddedToken* hit = nullptr;
    if (t.plain_first[b] || (allow_special && t.special_first[b])) {
      for (const AddedToken& a : t.added_by_length) {
        if ((a.special && !allow_special) || text.compare(pos, a.content.size(), a.content) != 0) continue;
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    if (pos > start) plain(start, pos);
    token(hit->id);
    pos += hit->content.size();
    start = pos;
  }
  if (start < text.size()) plain(start, text.size());
}

void Tokenizer::encode_serial(std::string_view text, bool allow_special, std::vector<std::uint32_t>& out) const {
  std::string normalized;
  if (model_.nfc) text = detail::nfc(text, normalized);
  const SplitPattern pattern = model_.pattern;
  WordCache& cache = t_cache;
  if (cache.owner != tables_->serial || cache.full()) cache.reset(tables_->serial);
  std::string prefixed;
  split_added(
      *tables_, text, allow_special,
      [&](std::size_t begin, std::size_t end) {
        std::string_view piece = text.substr(begin, end - begin);
        if (model_.add_prefix_space && piece[0] != ' ') {
          prefixed = " ";
          prefixed += piece;
          piece = prefixed;
        }
        for_each_pretoken(piece, pattern, [&](std::string_view word) {
          if (cache.full()) cache.reset(tables_->serial);
          encode_word_cached(word, out, &cache);
        });
      },
      [&](std::uint32_t id) { out.push_back(id); });
}

std::vector<std::uint32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<std::uint32_t> out;
  std::string normalized;
  if (model_.nfc) text = detail::nfc(text, normalized);
  constexpr std::size_t kChunk = 1 << 18;
  if (text.size() < 2 * kChunk || thread_count() == 1) {
    out.reserve(text.size() / 3);
    encode_serial(text, allow_special, out);
    return out;
  }
  // Tasks: plain pieces cut at pre-token boundaries, or one added token each. The cuts depend
  // on the text alone, so the concatenated result equals the serial one for any thread count.
  struct Task {
    std::size_t begin, end;
    std::uint32_t id;  // for added tokens (begin == end)
  };
  std::vector<Task> tasks;
  split_added(
      *tables_, text, allow_special,
      [&](std::size_t begin, std::size_t end) {
        if (model_.add_prefix_space) {
          tasks.push_back({begin, end, 0});  // the prefix space belongs to the piece's start: keep it whole
          return;
        }
        const auto cuts = chunk_boundaries(text.substr(begin, end - begin), kChunk);
        for (std::size_t i = 0; i + 1 < cuts.size(); ++i) tasks.push_back({begin + cuts[i], begin + cuts[i + 1], 0});
      },
      [&](std::uint32_t id) { tasks.push_back({0, 0, id}); });
  std::vector<std::vector<std::uint32_t>> parts(tasks.size());
  parallel_for(tasks.size(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const Task& task = tasks[i];
      if (task.begin == task.end) {
        parts[i].push_back(task.id);
        continue;
      }
      parts[i].reserve((task.end - task.begin) / 3);
      // Added tokens were already taken out: encode the piece with none to match.
      const std::string_view piece = text.substr(task.begin, task.end - task.begin);
      std::string prefixed;
      std::string_view words = piece;
      if (model_.add_prefix_space && piece[0] != ' ') {
        prefixed = " " + std::string(piece);
        words = prefixed;
      }
      WordCache& cache = t_cache;
      if (cache.owner != tables_->serial) cache.reset(tables_->serial);
      for_each_pretoken(words, model_.pattern, [&](std::string_view word) {
        if (cache.full()) cache.reset(tables_->serial);
        encode_word_cached(word, parts[i], &cache);
      });
    }
  });
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  out.reserve(total);
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string Tokenizer::decode(std::span<const std::uint32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  const std::size_t n = model_.vocab.size();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= n) fail("decode: token id {} at position {} is out of range (the vocabulary has {} tokens)", ids[i], i, n);
    out += model_.vocab[ids[i]];
  }
  return out;
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) { return from_json(read_file(path), path.string()); }

void Tokenizer::save(const std::filesystem::path& path) const { write_file_atomic(path, to_json()); }

}  // namespace minitx
