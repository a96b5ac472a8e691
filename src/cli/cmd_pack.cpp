#include <fmt/format.h>

#include <cstdlib>

#include "commands.h"
#include "minitx/core/error.h"
#include "minitx/release/release.h"

namespace minitx::cli {

int run_pack(Args& args) {
  PackOptions options;
  options.output = args.required("--output");
  options.prefix = args.required("--prefix");
  if (auto results = args.option("--results")) options.results_dir = *results;
  options.exclude = args.repeated("--exclude");
  options.files = args.positionals();
  args.done();
  const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
  if (epoch == nullptr || *epoch == '\0')
    fail("pack: SOURCE_DATE_EPOCH is not set (make sets it to the last commit's time; outside git, set it yourself)");
  options.source_date_epoch = parse_source_date_epoch(epoch);
  const PackResult result = pack_release(options);
  fmt::print("pack: wrote {} ({} files, {} bytes)\n      sha256 {}\n", options.output.string(), result.files, result.bytes, result.sha256);
  return 0;
}

}  // namespace minitx::cli
