// The code point classes of the split patterns, as data: ranges of letters (\p{L}), numbers
// (\p{N}) and white space (\s); everything else is "other". Generated from what Hugging Face
// tokenizers' regex engine reports (scripts/gen_unicode_classes.py), so that our splitter and
// theirs agree on every code point, Unicode version included.
#pragma once
#include <cstddef>
#include <cstdint>

#include "minitx/tokenizer/pretokenizer.h"

namespace minitx::detail {

struct UnicodeRange {
  std::uint32_t first, last;
  CharClass cls;
};

extern const UnicodeRange kUnicodeRanges[];
extern const std::size_t kUnicodeRangeCount;

}  // namespace minitx::detail
