#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/config.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"

namespace minitx::cli {

int run_config_vars(Args& args) {
  const Experiment experiment = experiment_from_args(args);  // validates every section
  const CorpusPaths paths = corpus_paths_from_args(args);
  const fs::path output = args.required("--output");
  args.done();
  const fs::path stamps = output.parent_path();
  const ConfigFile file = ConfigFile::load(experiment.config_path);
  for (const std::string& section : experiment_sections())
    write_file_if_changed(stamps / (section + ".sha256"), sha256_hex(file.canonical_section(section)) + "\n");
  const fs::path pin = paths.dir / ".pins" / (experiment.corpus.name + ".sha256");
  write_file_if_changed(pin, experiment.corpus.sha256 + "\n");
  // Always rewritten: Make remade it because the config is newer, and must see it fresh.
  write_file_atomic(output, fmt::format("# Written by `minitx config-vars` from {}; do not edit.\n"
                                        "CORPUS_NAME := {}\nCORPUS_FILE := {}\nCORPUS_PIN := {}\n",
                                        experiment.config_path.string(), experiment.corpus.name,
                                        paths.file(experiment.corpus).string(), pin.string()));
  return 0;
}

}  // namespace minitx::cli
