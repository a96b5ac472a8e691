// Helpers shared by the subcommands.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "minitx/core/build_info.h"
#include "minitx/experiment.h"

namespace minitx::cli {

// --config FILE (required) and --out DIR (overrides the config's output directory).
Experiment experiment_from_args(Args& args);
// --model FILE: a checkpoint or a quantized model file (minitx quantize); --checkpoint, the name
// the fp32-only commands use, is accepted too. Default: OUT/model.ckpt.
std::filesystem::path model_path_from_args(Args& args, const Experiment& experiment);
// --config FILE when given: commands that can run on a model file alone (an imported model)
// take it as optional.
std::optional<Experiment> optional_experiment_from_args(Args& args);
// The error for a required option that has no default without --config; never returns.
[[noreturn]] std::string fail_missing(const char* command, const char* option);
// "5,17,42" -> ids; `what` names the option in errors.
std::vector<std::uint32_t> ids_from_text(const std::string& text, const std::string& what);
// --corpus-dir DIR (default corpus/).
CorpusPaths corpus_paths_from_args(Args& args);

// Flushes standard output and throws an Error when anything written to it was lost (a full
// disk, a closed pipe): output that did not arrive must not end in exit status 0.
void flush_stdout();

// --device: "cpu" or "cuda" as given, "auto" becomes cuda when this build and machine have a GPU.
// Anything else is an error naming the value.
std::string resolve_device(const std::string& device);
// --device of a benchmark that measures every device there is: "auto" is the CPU, then the GPU
// too when this build and machine have one; "cpu" or "cuda" alone, checked as resolve_device does.
std::vector<std::string> resolve_bench_devices(const std::string& device);

// Timing helpers of the benchmarks: seconds of wall clock since `start`, and the median (the
// upper one of an even count) of repeated measurements.
double seconds_since(std::chrono::steady_clock::time_point start);
double median(std::vector<double> values);

// Writes to standard output; an Error with the reason when it fails.
void write_stdout(std::string_view data);

}  // namespace minitx::cli
