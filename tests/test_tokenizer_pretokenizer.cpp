// The hand-written splitters against two references: PCRE2 running the same patterns with
// Unicode properties, and splits made by Hugging Face tokenizers itself (tests/fixtures/hf).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/tokenizer/byte_level.h"
#include "minitx/tokenizer/pretokenizer.h"

using namespace minitx;

namespace {

const std::string kFixtures = "tests/fixtures/hf/";

// PCRE2's UCP \s also matches U+180E, which neither Unicode's White_Space nor Oniguruma (the
// engine behind Hugging Face) counts as space: spell the property out.
std::string for_pcre2(std::string_view pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size() && (pattern[i + 1] == 's' || pattern[i + 1] == 'S')) {
      out += pattern[i + 1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

class Pcre2 {
 public:
  explicit Pcre2(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    REQUIRE_MESSAGE(code_ != nullptr, "pcre2 cannot compile " << pattern);
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~Pcre2() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  Pcre2(const Pcre2&) = delete;
  Pcre2& operator=(const Pcre2&) = delete;

  // Pre-token lengths as a regex findall gives them; the patterns match at every position.
  std::vector<std::size_t> split(std::string_view text) {
    std::vector<std::size_t> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      // The subject's UTF-8 is checked on the first call only; checking it at every offset is quadratic.
      const std::uint32_t options = PCRE2_ANCHORED | (pos > 0 ? PCRE2_NO_UTF_CHECK : 0);
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, options, data_, nullptr);
      if (rc <= 0) FAIL("pcre2 found no match at byte " << pos);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
      if (ov[1] <= pos) FAIL("pcre2 matched nothing at byte " << pos);
      out.push_back(ov[1] - pos);
      pos = ov[1];
    }
    return out;
  }
  bool matches(std::uint32_t cp) {
    std::string s;
    append_utf8(s, cp);
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, PCRE2_ANCHORED, data_, nullptr) > 0;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

std::vector<std::size_t> ours(std::string_view text, SplitPattern pattern) {
  std::vector<std::size_t> out;
  for (const auto piece : pretokenize(text, pattern)) out.push_back(piece.size());
  return out;
}

bool is_surrogate(std::uint32_t cp) { return cp >= 0xD800 && cp < 0xE000; }

// Code points PCRE2 (Unicode 14) knows as assigned and classes as we do. Newer Unicode
// versions (Hugging Face's Oniguruma) assign more; those are checked against its fixture.
std::vector<std::uint32_t> shared_assigned_code_points(std::size_t* disagreements) {
  Pcre2 unassigned("^\\p{Cn}$"), letter("^\\p{L}$"), number("^\\p{N}$"), space("^\\p{White_Space}$");
  std::vector<std::uint32_t> out;
  *disagreements = 0;
  for (std::uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (is_surrogate(cp) || unassigned.matches(cp)) continue;
    const CharClass expected = letter.matches(cp) ? CharClass::letter
                               : number.matches(cp) ? CharClass::number
                               : space.matches(cp)  ? CharClass::space
                                                    : CharClass::other;
    if (char_class(cp) == expected) out.push_back(cp);
    else ++*disagreements;
  }
  return out;
}

std::string random_text(std::mt19937_64& rng, const std::vector<std::uint32_t>& any_cp, std::size_t length) {
  static const std::vector<std::string> pieces = {
      "a", "Z", "e", "t", "s", "ll", "0", "7", " ", " ", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "'", "'s", "'t", "'re", "'ve",
      "'m", "'ll", "'d", "'S", "'LL", "'Re", "!", ".", ",", "-", "\"", "é", "ß", "Ж", "中", "ひ", "²", "½", "Ⅻ", "٣", "\u00a0", "\u3000",
      "\u2028", "\u0085", "\u180e", "\u200b", "\u0301", "😀", "—", "’", "ſ"};
  std::string out;
  while (out.size() < length) {
    const auto r = rng() % 100;
    if (r < 80) out += pieces[rng() % pieces.size()];
    else append_utf8(out, any_cp[rng() % any_cp.size()]);
  }
  return out;
}

}  // namespace

TEST_CASE("pretokenizer: byte-level alphabet is GPT-2's and round-trips") {
  CHECK(byte_to_unicode(' ') == 0x120);  // 'Ġ'
  CHECK(byte_to_unicode('\n') == 0x10A);  // 'Ċ'
  CHECK(byte_to_unicode('A') == 'A');
  CHECK(byte_to_unicode(0xAD) == 0x143);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string level = bytes_to_byte_level(all);
  CHECK(byte_level_to_bytes(level) == all);
  CHECK(bytes_to_byte_level(" the") == "\xC4\xA0the");
  CHECK_FALSE(byte_level_to_bytes("\xC4").has_value());        // truncated UTF-8
  CHECK_FALSE(byte_level_to_bytes(" ").has_value());           // a space is not a byte-level character
  CHECK_FALSE(unicode_to_byte(0x200).has_value());
}

TEST_CASE("pretokenizer: known splits") {
  const auto split = [](std::string_view text, SplitPattern p) {
    std::vector<std::string> out;
    for (const auto piece : pretokenize(text, p)) out.emplace_back(piece);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(split("Hello world's  end!!\n\n  x", SplitPattern::gpt2) == V{"Hello", " world", "'s", " ", " end", "!!", "\n\n ", " x"});
  CHECK(split("I'LL 12345 \t\tz", SplitPattern::gpt2) == V{"I", "'", "LL", " 12345", " \t", "\t", "z"});
  CHECK(split("I'LL 12345 \t\tz", SplitPattern::gpt4) == V{"I", "'LL", " ", "123", "45", " \t", "\tz"});
  CHECK(split("(hello)\r\n\r\n world", SplitPattern::gpt4) == V{"(hello", ")\r\n\r\n", " world"});
  CHECK(split("a \n b", SplitPattern::gpt4) == V{"a", " \n", " b"});
  CHECK(split("", SplitPattern::gpt2).empty());
  CHECK(parse_split_pattern("gpt4") == SplitPattern::gpt4);
  CHECK(split_pattern_name(SplitPattern::gpt2) == "gpt2");
  CHECK_ERROR_CONTAINS(parse_split_pattern("bert"), "expected gpt2 or gpt4");
}

TEST_CASE("pretokenizer: invalid UTF-8 is split losslessly, one 'other' character per bad byte") {
  const std::string text = "ab\xff\xfe cd\xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80!";
  for (const SplitPattern p : {SplitPattern::gpt2, SplitPattern::gpt4}) {
    std::string joined;
    for (const auto piece : pretokenize(text, p)) {
      CHECK(!piece.empty());
      joined += piece;
    }
    CHECK(joined == text);
  }
  std::size_t len = 0;
  CHECK(decode_utf8("\xed\xa0\x80", 0, &len) == kInvalidCodePoint);  // a surrogate
  CHECK(decode_utf8("\xe0\x80\x80", 0, &len) == kInvalidCodePoint);  // overlong
  CHECK(decode_utf8("\xf0\x9f\x98\x80", 0, &len) == 0x1F600);
  CHECK(len == 4);
}

TEST_CASE("pretokenizer: character classes equal Hugging Face's for every code point") {
  std::istringstream in(read_file(kFixtures + "classes.txt"));
  std::string line;
  std::uint32_t expected_next = 0;
  std::size_t wrong = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string first, last, cls;
    fields >> first >> last >> cls;
    const auto lo = static_cast<std::uint32_t>(std::stoul(first, nullptr, 16));
    const auto hi = static_cast<std::uint32_t>(std::stoul(last, nullptr, 16));
    REQUIRE(lo == expected_next);
    const CharClass want = cls == "L" ? CharClass::letter : cls == "N" ? CharClass::number : cls == "S" ? CharClass::space : CharClass::other;
    for (std::uint32_t cp = lo; cp <= hi; ++cp)
      if (!is_surrogate(cp) && char_class(cp) != want) ++wrong;
    expected_next = hi + 1;
  }
  CHECK(expected_next == 0x110000);
  CHECK(wrong == 0);
}

TEST_CASE("pretokenizer: equal to Hugging Face's splits on its random texts (GPT-2 and GPT-4 patterns)") {
  const auto fixture = nlohmann::json::parse(read_file(kFixtures + "splits.json"));
  CHECK(fixture["gpt4_pattern"].get<std::string>() == split_pattern_regex(SplitPattern::gpt4));
  std::size_t cases = 0;
  for (const auto& c : fixture["cases"]) {
    const std::string text = c["text"].get<std::string>();
    CHECK_MESSAGE(ours(text, SplitPattern::gpt2) == c["gpt2"].get<std::vector<std::size_t>>(), "gpt2: " << nlohmann::json(text).dump());
    CHECK_MESSAGE(ours(text, SplitPattern::gpt4) == c["gpt4"].get<std::vector<std::size_t>>(), "gpt4: " << nlohmann::json(text).dump());
    ++cases;
  }
  CHECK(cases >= 1000);
}

TEST_CASE("pretokenizer: equal to PCRE2 on every shared code point, random texts and the corpus") {
  std::size_t disagreements = 0;
  const auto assigned = shared_assigned_code_points(&disagreements);
  // The classes come from a newer Unicode than PCRE2's 14.0; the versions agree on almost all
  // code points that 14.0 assigns.
  MESSAGE("code points assigned in PCRE2's Unicode and classed alike: " << assigned.size() << ", classed differently: " << disagreements);
  CHECK(assigned.size() > 280000);
  CHECK(disagreements == 0);
  for (const SplitPattern p : {SplitPattern::gpt2, SplitPattern::gpt4}) {
    Pcre2 re(for_pcre2(split_pattern_regex(p)));
    std::mt19937_64 rng(p == SplitPattern::gpt2 ? 1 : 2);
    std::size_t bytes = 0;
    for (int i = 0; i < 3000; ++i) {
      const std::string text = random_text(rng, assigned, 1 + rng() % 300);
      bytes += text.size();
      const auto a = ours(text, p);
      const auto b = re.split(text);
      if (a != b) {
        FAIL_CHECK("pattern " << split_pattern_name(p) << " differs on " << nlohmann::json(text).dump());
        break;
      }
    }
    CHECK(bytes > 300000);
    std::vector<std::string> real = {read_file(kFixtures + "moby_slice.txt")};
    for (const char* corpus : {"corpus/moby-dick.txt", "corpus/sotu.txt"})
      if (std::filesystem::exists(corpus)) real.push_back(read_file(corpus));
    for (const std::string& text : real) CHECK(ours(text, p) == re.split(text));
  }
}

TEST_CASE("pretokenizer: chunk boundaries are pre-token boundaries, independent of the thread count") {
  const std::string text = read_file(kFixtures + "moby_slice.txt");
  for (const SplitPattern p : {SplitPattern::gpt2, SplitPattern::gpt4}) {
    const auto whole = pretokenize(text, p);
    const auto cuts = chunk_boundaries(text, 4096);
    REQUIRE(cuts.size() > 20);
    CHECK(cuts.front() == 0);
    CHECK(cuts.back() == text.size());
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
      for (const auto piece : pretokenize(std::string_view(text).substr(cuts[i], cuts[i + 1] - cuts[i]), p)) pieces.push_back(piece);
    CHECK(pieces == whole);
  }
  CHECK(chunk_boundaries("short", 64) == std::vector<std::size_t>{0, 5});
  CHECK(chunk_boundaries(std::string(500, 'x'), 64) == std::vector<std::size_t>{0, 500});  // no safe cut: one piece
}
