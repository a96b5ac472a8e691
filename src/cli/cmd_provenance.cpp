#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/io.h"
#include "minitx/release/provenance.h"

namespace minitx::cli {

int run_provenance(Args& args) {
  const Experiment experiment = experiment_from_args(args);
  const fs::path output = args.required("--output");
  const bool gpu = args.flag("--gpu");
  std::vector<StageRecord> stages;
  for (const auto& stage : args.repeated("--stage")) stages.push_back(parse_stage_record(stage));
  args.done();
  write_file_atomic(output, provenance_json(experiment, stages, source_state(), gpu));
  fmt::print("provenance: wrote {} ({} stages)\n", output.string(), stages.size());
  return 0;
}

}  // namespace minitx::cli
