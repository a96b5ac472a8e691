// read_token_file on arbitrary bytes. A file that reads holds ids below its vocabulary and writes
// back to a file that reads the same.
#include "fuzz_common.h"
#include "minitx/core/sha256.h"
#include "minitx/data/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::InputFile file("tokens.bin", fuzz::as_view(data, size));
  minitx::TokenFile tokens;
  if (!fuzz::expect_errors([&] { tokens = minitx::read_token_file(file.path()); })) return 0;

  FUZZ_ASSERT(minitx::is_sha256_hex(tokens.tokenizer_sha256), "tokenizer hash");
  for (std::uint32_t id : tokens.ids) FUZZ_ASSERT(id < tokens.vocab_size, "id " + std::to_string(id) + " past the vocabulary");
  fuzz::expect_success("a token file that reads does not write back", [&] {
    fuzz::InputFile copy("copy.bin", "");
    minitx::write_token_file(copy.path(), tokens);
    const minitx::TokenFile back = minitx::read_token_file(copy.path());
    FUZZ_ASSERT(back.vocab_size == tokens.vocab_size && back.tokenizer_sha256 == tokens.tokenizer_sha256 &&
                    back.ids == tokens.ids,
                "token file differs after a write and a read");
  });
  return 0;
}
