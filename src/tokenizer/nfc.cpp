#include "nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "minitx/tokenizer/byte_level.h"
#include "nfc_tables.h"
#include "nfc_unsafe.h"

namespace minitx::detail {
namespace {

// Hangul syllables decompose and compose by arithmetic (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// A byte that is not valid UTF-8 travels as a value above the code-point range: class 0, no
// decomposition, composes with nothing, and is written back as the byte it was.
constexpr char32_t kRawByte = 0x110000;

std::uint8_t combining_class(char32_t cp) {
  const auto* end = kCombiningClasses + kCombiningClassCount;
  const auto* it = std::upper_bound(kCombiningClasses, end, cp, [](char32_t c, const CombiningClassRange& r) { return c < r.lo; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= it->hi ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = kDecompositions + kDecompositionCount;
  const auto* it = std::lower_bound(kDecompositions, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp)
    out.insert(out.end(), kDecompositionPool + it->offset, kDecompositionPool + it->offset + it->length);
  else
    out.push_back(cp);
}

// The primary composite of (a, b), or 0 when there is none.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = kCompositions + kCompositionCount;
  const auto* it = std::lower_bound(kCompositions, end, std::make_pair(a, b), [](const Composition& c, std::pair<char32_t, char32_t> key) {
    return c.first != key.first ? c.first < key.first : c.second < key.second;
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

// One code point (or raw byte) from UTF-8 at text[i]; advances i.
char32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  bool valid = n != 0 && i + n <= text.size();
  for (std::size_t k = 1; valid && k < n; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    valid = (b & 0xC0) == 0x80;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8 either.
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (valid && (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))) valid = false;
  if (!valid) {
    ++i;
    return kRawByte + b0;
  }
  i += n;
  return cp;
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const char32_t cp = next_code_point(text, i);
    if (cp >= kRawByte) cps.push_back(cp);
    else decompose(cp, cps);
  }
  // Canonical ordering: each run of non-starters sorted by combining class, stably.
  for (std::size_t i = 0; i < cps.size();) {
    if (cps[i] >= kRawByte || combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && cps[j] < kRawByte && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless something between them
  // blocks it (a starter, or a mark of the same or a higher class).
  std::vector<char32_t> out;
  out.reserve(cps.size());
  std::size_t starter = SIZE_MAX;
  for (const char32_t cp : cps) {
    const std::uint8_t cc = cp >= kRawByte ? 0 : combining_class(cp);
    if (starter != SIZE_MAX && cp < kRawByte) {
      const bool adjacent = starter + 1 == out.size();
      const std::uint8_t last_cc = adjacent ? 0 : combining_class(out.back());
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        if (const char32_t composite = compose(out[starter], cp)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = cp >= kRawByte ? SIZE_MAX : out.size();
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (const char32_t cp : out) {
    if (cp >= kRawByte) result.push_back(static_cast<char>(cp - kRawByte));
    else append_utf8(result, cp);
  }
  return result;
}

std::string_view nfc(std::string_view text, std::string& storage) {
  std::uint32_t cp = 0;
  if (first_nfc_unsafe(text, &cp) == std::string_view::npos) return text;
  storage = nfc_normalize(text);
  return storage;
}

}  // namespace minitx::detail
