// read_quant_file on arbitrary bytes, then make_quant_model (what evaluation and generation do
// with it). Leading mode byte: bit 0 recomputes the SHA-256 at offset 32 over everything after the
// 64-byte header, so mutations get past the checksum. A file that reads must encode again and
// decode to the same tensors.
#include <cstring>

#include "fuzz_common.h"
#include "minitx/core/sha256.h"
#include "minitx/infer/quant_model.h"
#include "minitx/quant/file.h"

namespace {

void fix_checksum(std::string& bytes) {
  namespace q = minitx::quant::qfile;
  if (bytes.size() < q::kHeaderBytes) return;
  const minitx::Digest digest =
      [&] { minitx::Sha256 h; h.update(bytes.data() + q::kHeaderBytes, bytes.size() - q::kHeaderBytes); return h.finish(); }();
  std::memcpy(bytes.data() + q::kChecksumOffset, digest.data(), digest.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string bytes(fuzz::as_view(data + 1, size - 1));
  if (data[0] & 1) fix_checksum(bytes);
  fuzz::InputFile file("model.mtq", bytes);
  minitx::quant::QuantFile qf;
  if (!fuzz::expect_errors([&] { qf = minitx::quant::read_quant_file(file.path()); })) return 0;

  fuzz::expect_success("a quantized file that reads does not encode and decode again", [&] {
    const std::string again = minitx::quant::encode_quant_file(qf);
    const minitx::quant::QuantFile back = minitx::quant::decode_quant_file(again, "re-encoded");
    FUZZ_ASSERT(back.metadata == qf.metadata && back.tensors.size() == qf.tensors.size(), "file differs after a round trip");
    for (std::size_t i = 0; i < qf.tensors.size(); ++i) {
      const auto& a = qf.tensors[i];
      const auto& b = back.tensors[i];
      FUZZ_ASSERT(a.name == b.name && a.format == b.format && a.shape == b.shape && a.data == b.data,
                  "tensor " + a.name + " differs after a round trip");
    }
  });
  fuzz::expect_errors([&] { (void)minitx::make_quant_model(std::move(qf), file.path().string()); });
  return 0;
}
