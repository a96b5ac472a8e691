// Helpers shared by the subcommands.
#pragma once
#include "args.h"
#include "minitx/experiment.h"

namespace minitx::cli {

// --config FILE (required) and --out DIR (overrides the config's output directory).
Experiment experiment_from_args(Args& args);
// --corpus-dir DIR (default corpus/).
CorpusPaths corpus_paths_from_args(Args& args);

}  // namespace minitx::cli
