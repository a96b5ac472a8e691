#include <fmt/format.h>

#include "commands.h"
#include "minitx/core/error.h"
#include "minitx/release/release.h"

namespace minitx::cli {

int run_verify(Args& args) {
  const std::vector<std::string> files = args.positionals();
  args.done();
  if (files.size() != 1) fail("verify: expected one tarball, got {}", files.size());
  const ReleaseReport report = verify_release(files[0]);
  fmt::print("verify: {} ok: sha256 {}, {} files match {}\n", files[0], report.sha256, report.files, manifest_name());
  return 0;
}

}  // namespace minitx::cli
