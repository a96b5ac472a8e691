// verify_release on an arbitrary tarball, in a fresh directory per input with the .sha256 that
// verify requires (the input's true hash, so that verification goes on to the archive). Leading
// mode byte: bit 0 clear, the rest is the .tar.gz; set, the rest is a tar that the harness
// compresses first, so mutations reach the tar reader, the extractor and the manifest checks.
#include "fuzz_common.h"
#include "minitx/core/gzip.h"
#include "minitx/core/sha256.h"
#include "minitx/release/release.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest = fuzz::as_view(data + 1, size - 1);
  const std::string tarball = (data[0] & 1) ? minitx::gzip_compress(rest) : std::string(rest);
  const std::string hash = minitx::sha256_hex(tarball);
  fuzz::ScratchDir dir;
  fuzz::InputFile file("minitx-fuzz.tar.gz", tarball, dir.path());
  fuzz::InputFile sum("minitx-fuzz.tar.gz.sha256", hash + "  minitx-fuzz.tar.gz\n", dir.path());
  minitx::ReleaseReport report;
  if (!fuzz::expect_errors([&] { report = minitx::verify_release(file.path()); })) return 0;
  FUZZ_ASSERT(report.sha256 == hash, "report's SHA-256");
  return 0;
}
