// Tokenizer::load on an arbitrary tokenizer.json. A tokenizer that loads must encode and decode a
// fixed text (every byte has a token, so neither may fail), give the text back when nothing
// rewrites it (no prefix space; the text is NFC already), and write JSON that loads again.
#include "fuzz_common.h"
#include "minitx/tokenizer/tokenizer.h"

namespace {
constexpr std::string_view kText =
    "Call me Ishmael. Some years ago\xe2\x80\x94never mind how long precisely<|endoftext|> it's 1851!\n\t  x";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::InputFile file("tokenizer.json", fuzz::as_view(data, size));
  std::optional<minitx::Tokenizer> tok;
  if (!fuzz::expect_errors([&] { tok.emplace(minitx::Tokenizer::load(file.path())); })) return 0;

  fuzz::expect_success("a tokenizer that loads cannot encode or decode", [&] {
    for (bool allow_special : {false, true}) {
      const std::vector<std::uint32_t> ids = tok->encode(kText, allow_special);
      for (std::uint32_t id : ids) FUZZ_ASSERT(id < tok->vocab_size(), "encode gave id " + std::to_string(id));
      std::vector<std::uint32_t> serial;
      tok->encode_serial(kText, allow_special, serial);
      FUZZ_ASSERT(serial == ids, "encode and encode_serial differ");
      const std::string text = tok->decode(ids);
      if (!tok->model().add_prefix_space)
        FUZZ_ASSERT(text == kText, "decode(encode(text)) is not the text: '" + minitx::excerpt(text, 200) + "'");
    }
  });
  fuzz::expect_success("a tokenizer that loads does not load from its own JSON", [&] {
    const std::string json = tok->to_json();
    const minitx::Tokenizer again = minitx::Tokenizer::from_json(json, "to_json");
    FUZZ_ASSERT(again.to_json() == json, "to_json differs after a from_json");
  });
  return 0;
}
