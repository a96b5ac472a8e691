#include "minitx/tokenizer/pretokenizer.h"

#include <algorithm>
#include <array>
#include <memory>

#include "minitx/core/error.h"
#include "unicode_classes.h"

namespace minitx {
namespace {

// Classes of the Basic Multilingual Plane in one table; the rest by binary search.
struct BmpTable {
  std::unique_ptr<CharClass[]> cls{new CharClass[0x10000]};
  BmpTable() {
    std::fill(cls.get(), cls.get() + 0x10000, CharClass::other);
    for (std::size_t i = 0; i < detail::kUnicodeRangeCount; ++i) {
      const auto& r = detail::kUnicodeRanges[i];
      for (std::uint32_t cp = r.first; cp <= r.last && cp < 0x10000; ++cp) cls[cp] = r.cls;
    }
  }
};

const BmpTable& bmp() {
  static const BmpTable table;
  return table;
}

CharClass class_slow(std::uint32_t cp) {
  const auto* begin = detail::kUnicodeRanges;
  const auto* end = begin + detail::kUnicodeRangeCount;
  const auto* it = std::upper_bound(begin, end, cp, [](std::uint32_t v, const detail::UnicodeRange& r) { return v < r.first; });
  if (it == begin) return CharClass::other;
  --it;
  return cp <= it->last ? it->cls : CharClass::other;
}

struct Char {
  std::uint32_t cp;
  std::uint32_t len;
  CharClass cls;
};

// ASCII classes by byte: the hot path never leaves this table for English text.
constexpr std::array<CharClass, 128> make_ascii() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    CharClass k = CharClass::other;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = CharClass::letter;
    else if (c >= '0' && c <= '9') k = CharClass::number;
    else if (c == ' ' || (c >= 9 && c <= 13)) k = CharClass::space;
    t[static_cast<std::size_t>(c)] = k;
  }
  return t;
}
constexpr std::array<CharClass, 128> kAscii = make_ascii();

inline Char char_at(std::string_view text, std::size_t pos) {
  const auto b = static_cast<std::uint8_t>(text[pos]);
  if (b < 0x80) return {b, 1, kAscii[b]};
  std::size_t len = 0;
  const std::uint32_t cp = decode_utf8(text, pos, &len);
  return {cp, static_cast<std::uint32_t>(len), cp == kInvalidCodePoint ? CharClass::other : char_class(cp)};
}

// End of the maximal run of characters of class `cls` starting at `pos`.
inline std::size_t run_end(std::string_view text, std::size_t pos, CharClass cls) {
  const std::size_t n = text.size();
  while (pos < n) {
    const auto b = static_cast<std::uint8_t>(text[pos]);
    if (b < 0x80) {
      if (kAscii[b] != cls) break;
      ++pos;
      continue;
    }
    const Char c = char_at(text, pos);
    if (c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

inline bool is_crlf(std::uint32_t cp) { return cp == '\r' || cp == '\n'; }

// White space from `pos` (a space character): `\s+(?!\S)` then `\s+`. With `newline`, first
// the GPT-4 alternative `\s*[\r\n]`: the run up to its last CR or LF.
std::size_t whitespace(std::string_view text, std::size_t pos, bool newline) {
  const std::size_t n = text.size();
  std::size_t j = pos, last = pos, after_newline = 0;
  while (j < n) {
    const Char c = char_at(text, j);
    if (c.cls != CharClass::space) break;
    last = j;
    j += c.len;
    if (newline && is_crlf(c.cp)) after_newline = j;
  }
  if (after_newline != 0) return after_newline - pos;
  if (j == n) return n - pos;      // the whole run: nothing non-space follows
  if (last > pos) return last - pos;  // leave the last space to the word after it
  return j - pos;                  // a single space before a non-space: `\s+`
}

std::size_t gpt2(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  const Char c0 = char_at(text, pos);
  if (c0.cp == '\'' && pos + 1 < n) {
    const char a = text[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < n) {
      const char b = text[pos + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  if (c0.cp == ' ' && pos + 1 < n) {
    const Char c1 = char_at(text, pos + 1);
    if (c1.cls != CharClass::space) return run_end(text, pos + 1 + c1.len, c1.cls) - pos;
  }
  if (c0.cls != CharClass::space) return run_end(text, pos + c0.len, c0.cls) - pos;
  return whitespace(text, pos, false);
}

inline char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::size_t gpt4(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  const Char c0 = char_at(text, pos);
  // '(?i:[sdmt]|ll|ve|re): case folding also maps U+017F (long s) to 's'.
  if (c0.cp == '\'' && pos + 1 < n) {
    const char a = lower_ascii(text[pos + 1]);
    if (a == 's' || a == 'd' || a == 'm' || a == 't') return 2;
    if (text.substr(pos + 1, 2) == "\xC5\xBF") return 3;
    if (pos + 2 < n) {
      const char b = lower_ascii(text[pos + 2]);
      if ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) return 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?+\p{L}+
  if (c0.cls == CharClass::letter) return run_end(text, pos + c0.len, CharClass::letter) - pos;
  if (c0.cls != CharClass::number && !is_crlf(c0.cp) && pos + c0.len < n) {
    const Char c1 = char_at(text, pos + c0.len);
    if (c1.cls == CharClass::letter) return run_end(text, pos + c0.len + c1.len, CharClass::letter) - pos;
  }
  // \p{N}{1,3}
  if (c0.cls == CharClass::number) {
    std::size_t end = pos + c0.len;
    for (int k = 1; k < 3 && end < n; ++k) {
      const Char c = char_at(text, end);
      if (c.cls != CharClass::number) break;
      end += c.len;
    }
    return end - pos;
  }
  //  ?[^\s\p{L}\p{N}]++[\r\n]*
  std::size_t start = pos;
  if (c0.cp == ' ' && pos + 1 < n && char_at(text, pos + 1).cls == CharClass::other) start = pos + 1;
  if (start != pos || c0.cls == CharClass::other) {
    std::size_t end = run_end(text, start, CharClass::other);
    while (end < n && (text[end] == '\r' || text[end] == '\n')) ++end;
    return end - pos;
  }
  // \s*[\r\n]|\s+(?!\S)|\s+
  return whitespace(text, pos, true);
}

}  // namespace

CharClass char_class(std::uint32_t cp) {
  if (cp < 0x80) return kAscii[cp];
  if (cp < 0x10000) return bmp().cls[cp];
  return class_slow(cp);
}

std::string_view split_pattern_name(SplitPattern pattern) { return pattern == SplitPattern::gpt2 ? "gpt2" : "gpt4"; }

SplitPattern parse_split_pattern(std::string_view name) {
  if (name == "gpt2") return SplitPattern::gpt2;
  if (name == "gpt4") return SplitPattern::gpt4;
  fail("split pattern '{}' is unknown: expected gpt2 or gpt4", name);
}

std::string_view split_pattern_regex(SplitPattern pattern) {
  if (pattern == SplitPattern::gpt2) return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
}

std::uint32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t* length) {
  const std::size_t n = text.size();
  const auto at = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const std::uint8_t b0 = at(pos);
  *length = 1;
  if (b0 < 0x80) return b0;
  const auto cont = [&](std::size_t i) { return i < n && (at(i) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(pos + 1)) return kInvalidCodePoint;
    *length = 2;
    return (static_cast<std::uint32_t>(b0 & 0x1F) << 6) | (at(pos + 1) & 0x3F);
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(pos + 1) || !cont(pos + 2)) return kInvalidCodePoint;
    const std::uint8_t b1 = at(pos + 1);
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F)) return kInvalidCodePoint;  // overlong, surrogate
    *length = 3;
    return (static_cast<std::uint32_t>(b0 & 0x0F) << 12) | (static_cast<std::uint32_t>(b1 & 0x3F) << 6) | (at(pos + 2) & 0x3F);
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(pos + 1) || !cont(pos + 2) || !cont(pos + 3)) return kInvalidCodePoint;
    const std::uint8_t b1 = at(pos + 1);
    if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F)) return kInvalidCodePoint;  // overlong, > U+10FFFF
    *length = 4;
    return (static_cast<std::uint32_t>(b0 & 0x07) << 18) | (static_cast<std::uint32_t>(b1 & 0x3F) << 12) |
           (static_cast<std::uint32_t>(at(pos + 2) & 0x3F) << 6) | (at(pos + 3) & 0x3F);
  }
  return kInvalidCodePoint;
}

std::size_t next_pretoken(std::string_view text, std::size_t pos, SplitPattern pattern) {
  return pattern == SplitPattern::gpt2 ? gpt2(text, pos) : gpt4(text, pos);
}

std::vector<std::string_view> pretokenize(std::string_view text, SplitPattern pattern) {
  std::vector<std::string_view> out;
  for_each_pretoken(text, pattern, [&](std::string_view piece) { out.push_back(piece); });
  return out;
}

std::vector<std::size_t> chunk_boundaries(std::string_view text, std::size_t chunk) {
  std::vector<std::size_t> cuts{0};
  chunk = std::max<std::size_t>(chunk, 64);
  std::size_t target = chunk;
  while (target < text.size()) {
    // A space after a printable, non-space ASCII byte starts a pre-token in both patterns: no
    // alternative puts a space after anything but white space within one match.
    std::size_t p = target;
    while (p < text.size()) {
      const auto prev = static_cast<std::uint8_t>(text[p - 1]);
      if (text[p] == ' ' && prev > 0x20 && prev < 0x7F) break;
      ++p;
    }
    if (p >= text.size()) break;
    cuts.push_back(p);
    target = p + chunk;
  }
  cuts.push_back(text.size());
  return cuts;
}

}  // namespace minitx
