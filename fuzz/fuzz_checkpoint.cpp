// read_checkpoint on arbitrary bytes. Leading mode byte: bit 0 recomputes the SHA-256 at offset H
// (the header size at byte 12) over [0, H) and the payload, so mutations get past the checksum.
// A checkpoint that reads must have consistent sizes and must write back and read back the same.
#include <cstring>

#include "fuzz_common.h"
#include "minitx/core/sha256.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/params.h"

namespace {

void fix_checksum(std::string& bytes) {
  if (bytes.size() < 16) return;
  std::uint32_t header = 0;
  std::memcpy(&header, bytes.data() + 12, 4);
  if (header > bytes.size() || bytes.size() - header < 32) return;
  minitx::Sha256 hash;
  hash.update(bytes.data(), header);
  hash.update(bytes.data() + header + 32, bytes.size() - header - 32);
  const minitx::Digest digest = hash.finish();
  std::memcpy(bytes.data() + header, digest.data(), digest.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string bytes(fuzz::as_view(data + 1, size - 1));
  if (data[0] & 1) fix_checksum(bytes);
  fuzz::InputFile file("model.ckpt", bytes);
  minitx::Checkpoint ck;
  if (!fuzz::expect_errors([&] { ck = minitx::read_checkpoint(file.path()); })) return 0;

  FUZZ_ASSERT(ck.params.size() == minitx::param_count(ck.config), "parameter count");
  FUZZ_ASSERT(ck.m.size() == ck.v.size() && (ck.m.empty() || ck.m.size() == ck.params.size()), "optimizer state size");
  fuzz::expect_success("a checkpoint that reads does not write back", [&] {
    fuzz::InputFile copy("copy.ckpt", "");
    minitx::write_checkpoint(copy.path(), ck);
    const minitx::Checkpoint back = minitx::read_checkpoint(copy.path());
    FUZZ_ASSERT(back.step == ck.step && back.tokenizer_sha256 == ck.tokenizer_sha256 &&
                    back.train_sha256 == ck.train_sha256 && back.device == ck.device && back.precision == ck.precision,
                "header fields differ after a write and a read");
    FUZZ_ASSERT(minitx::same_architecture(back.config, ck.config), "architecture differs after a write and a read");
    FUZZ_ASSERT(back.params.size() == ck.params.size() &&
                    std::memcmp(back.params.data(), ck.params.data(), ck.params.size() * sizeof(float)) == 0,
                "parameters differ after a write and a read");
  });
  return 0;
}
