// Unicode NFC normalization, for tokenizer.json files whose normalizer is NFC (GPT-NeoX /
// Pythia): canonical decomposition, canonical ordering of combining marks, canonical
// composition (UAX #15), Hangul included. Bytes that are not valid UTF-8 pass through
// unchanged and block composition across them, since NFC is defined on code points only.
#pragma once
#include <string>
#include <string_view>

namespace minitx::detail {

std::string nfc_normalize(std::string_view text);

// `text` itself when it is already NFC (the common case, found by a quick scan), else its
// normalization, kept in `storage`.
std::string_view nfc(std::string_view text, std::string& storage);

}  // namespace minitx::detail
