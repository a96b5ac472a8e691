// Pre-tokenization: the byte-level split of text into pre-tokens before BPE, by a hand-written
// matcher for each supported pattern. Each one gives exactly the matches of its regex as run by
// Hugging Face tokenizers (Oniguruma, Unicode classes): see tests/test_tokenizer_pretokenizer.cpp,
// which checks it against PCRE2 and against splits made by Hugging Face.
//
// Input is arbitrary bytes. Invalid UTF-8 never reaches the reference (Python strings are valid
// Unicode), so we define it: every byte that does not start a valid sequence is one character
// of class "other". Splitting is still lossless: pre-tokens always tile the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

enum class CharClass : std::uint8_t { other, letter, number, space };

// The class that the patterns' \p{L}, \p{N} and \s see for one code point.
CharClass char_class(std::uint32_t cp);

enum class SplitPattern : std::uint8_t {
  gpt2,  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  gpt4,  // cl100k: case-insensitive contractions, letters with one leading non-letter, 1-3 digits, ...
};

std::string_view split_pattern_name(SplitPattern pattern);          // "gpt2", "gpt4"
SplitPattern parse_split_pattern(std::string_view name);             // throws naming the choices
std::string_view split_pattern_regex(SplitPattern pattern);          // the regex it implements

// Decodes one UTF-8 character at text[pos] (pos < size): its code point and length; an invalid
// byte gives cp = kInvalidCodePoint and length 1.
inline constexpr std::uint32_t kInvalidCodePoint = 0xFFFFFFFFu;
std::uint32_t decode_utf8(std::string_view text, std::size_t pos, std::size_t* length);

// Length in bytes (> 0) of the pre-token that starts at text[pos], pos < text.size().
std::size_t next_pretoken(std::string_view text, std::size_t pos, SplitPattern pattern);

// All pre-tokens of `text`, in order; they concatenate to `text`.
std::vector<std::string_view> pretokenize(std::string_view text, SplitPattern pattern);

template <class F>
void for_each_pretoken(std::string_view text, SplitPattern pattern, F&& fn) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t len = next_pretoken(text, pos, pattern);
    fn(text.substr(pos, len));
    pos += len;
  }
}

// Cut points for parallel work: 0 = p0 < p1 < ... < pk = text.size(), each (but the ends) a
// pre-token boundary whatever precedes it (a space after a printable ASCII character), chosen
// near multiples of `chunk` bytes. They depend on the text and `chunk` only, never on the
// thread count, and splitting each piece separately gives exactly the pre-tokens of the whole.
std::vector<std::size_t> chunk_boundaries(std::string_view text, std::size_t chunk);

}  // namespace minitx
