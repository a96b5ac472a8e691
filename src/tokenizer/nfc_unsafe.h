// Code points that NFC normalization may change (see scripts/gen_nfc_unsafe.py).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace minitx::detail {

struct CodePointRange {
  std::uint32_t first, last;
};
extern const CodePointRange kNfcUnsafe[];
extern const std::size_t kNfcUnsafeCount;

// The byte offset of the first code point that NFC may change, or npos: a text without one is
// already in NFC. Invalid UTF-8 is left alone (NFC is defined on code points only).
std::size_t first_nfc_unsafe(std::string_view text, std::uint32_t* cp);

}  // namespace minitx::detail
