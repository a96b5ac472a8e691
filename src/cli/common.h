// Helpers shared by the subcommands.
#pragma once
#include <string_view>

#include "args.h"
#include "minitx/experiment.h"

namespace minitx::cli {

// --config FILE (required) and --out DIR (overrides the config's output directory).
Experiment experiment_from_args(Args& args);
// --model FILE: a checkpoint or a quantized model file (minitx quantize); --checkpoint, the name
// the fp32-only commands use, is accepted too. Default: OUT/model.ckpt.
std::filesystem::path model_path_from_args(Args& args, const Experiment& experiment);
// --corpus-dir DIR (default corpus/).
CorpusPaths corpus_paths_from_args(Args& args);

// Flushes standard output and throws an Error when anything written to it was lost (a full
// disk, a closed pipe): output that did not arrive must not end in exit status 0.
void flush_stdout();
// Writes to standard output; an Error with the reason when it fails.
void write_stdout(std::string_view data);

}  // namespace minitx::cli
