// read_token_file on arbitrary bytes. Leading mode byte: bit 0 recomputes the SHA-256 at offset
// 64 over the fields [0, 64) and the ids [96, end), so mutations get past the checksum. A file that
// reads holds ids below its vocabulary and writes back to a file that reads the same.
#include <cstring>

#include "fuzz_common.h"
#include "minitx/core/sha256.h"
#include "minitx/data/token_file.h"

namespace {

void fix_checksum(std::string& bytes) {
  if (bytes.size() < 96) return;
  minitx::Sha256 hash;
  hash.update(bytes.data(), 64);
  hash.update(bytes.data() + 96, bytes.size() - 96);
  const minitx::Digest digest = hash.finish();
  std::memcpy(bytes.data() + 64, digest.data(), digest.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string bytes(fuzz::as_view(data + 1, size - 1));
  if (data[0] & 1) fix_checksum(bytes);
  fuzz::InputFile file("tokens.bin", bytes);
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
