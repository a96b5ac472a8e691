// gzip_decompress on arbitrary bytes with a 1 MiB limit; what decompresses must survive a
// compress and decompress round trip.
#include "fuzz_common.h"
#include "minitx/core/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::uint64_t kMax = 1u << 20;
  (void)fuzz::Workspace::get();  // one thread, TMPDIR
  std::string out;
  if (!fuzz::expect_errors([&] { out = minitx::gzip_decompress(fuzz::as_view(data, size), "fuzz input", kMax); })) return 0;
  FUZZ_ASSERT(out.size() <= kMax, "output over max_bytes");
  fuzz::expect_success("gzip round trip", [&] {
    FUZZ_ASSERT(minitx::gzip_decompress(minitx::gzip_compress(out), "round trip", kMax) == out, "round trip differs");
  });
  return 0;
}
