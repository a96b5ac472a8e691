// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable Unicode
// character, so that any byte string is a string of "characters" that BPE can merge and that
// tokenizer.json can store. Printable Latin-1 bytes map to themselves; the other 68 to U+0100….
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace minitx {

// The code point that stands for `byte`.
std::uint32_t byte_to_unicode(std::uint8_t byte);
// The byte that `cp` stands for, if it is one of the 256.
std::optional<std::uint8_t> unicode_to_byte(std::uint32_t cp);

// Raw bytes -> the UTF-8 text of their byte-level characters ("Ġthe" for " the").
std::string bytes_to_byte_level(std::string_view bytes);
// The inverse; nullopt when `text` is not valid UTF-8 made only of byte-level characters.
std::optional<std::string> byte_level_to_bytes(std::string_view text);

void append_utf8(std::string& out, std::uint32_t cp);

}  // namespace minitx
