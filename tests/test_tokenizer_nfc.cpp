#include <doctest/doctest.h>

#include <sstream>

#include "../src/tokenizer/nfc.h"
#include "helpers.h"
#include "minitx/core/io.h"
#include "minitx/tokenizer/byte_level.h"

using namespace minitx;

namespace {

std::string utf8_of(const std::string& hex_list) {
  std::istringstream in(hex_list);
  std::string out, word;
  while (in >> word) append_utf8(out, static_cast<std::uint32_t>(std::stoul(word, nullptr, 16)));
  return out;
}

}  // namespace

TEST_CASE("nfc: equal to Python's unicodedata on every decomposable code point, composite and mixed sequence") {
  const std::string text = read_file("tests/fixtures/nfc/cases.txt");
  std::istringstream lines(text);
  std::size_t cases = 0, wrong = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t semi = line.find(';');
    REQUIRE(semi != std::string::npos);
    const std::string input = utf8_of(line.substr(0, semi)), expected = utf8_of(line.substr(semi + 1));
    const std::string actual = detail::nfc_normalize(input);
    ++cases;
    if (actual != expected) {
      if (++wrong <= 5) FAIL_CHECK("case '" << line << "'");
      continue;
    }
    CHECK(detail::nfc_normalize(actual) == actual);  // idempotent
  }
  CHECK(cases > 15000);
  CHECK(wrong == 0);
}

TEST_CASE("nfc: text already in NFC is returned as it is, without a copy") {
  std::string storage;
  const std::string_view plain = "Call me Ishmael. caf\xc3\xa9 \xea\xb0\x80";
  CHECK(detail::nfc(plain, storage).data() == plain.data());
  CHECK(storage.empty());
  const std::string_view decomposed = "cafe\xcc\x81";
  CHECK(detail::nfc(decomposed, storage) == "caf\xc3\xa9");
  CHECK(detail::nfc(decomposed, storage).data() == storage.data());
}

TEST_CASE("nfc: bytes that are not UTF-8 pass through and block composition") {
  CHECK(detail::nfc_normalize("\xff" "e\xcc\x81") == "\xff" "\xc3\xa9");       // composes after the bad byte
  CHECK(detail::nfc_normalize("e\xff\xcc\x81") == "e\xff\xcc\x81");            // not across it
  CHECK(detail::nfc_normalize("\xc3") == "\xc3");                               // truncated sequence
  CHECK(detail::nfc_normalize("\xed\xa0\x80\xcc\x81") == "\xed\xa0\x80\xcc\x81");  // a surrogate is not UTF-8
  CHECK(detail::nfc_normalize("\xc0\xaf") == "\xc0\xaf");                       // overlong
  CHECK(detail::nfc_normalize("") == "");
}
