#include <fmt/format.h>

#include "commands.h"
#include "common.h"

namespace minitx::cli {

int run_fetch(Args& args) {
  const Experiment experiment = experiment_from_args(args);
  const CorpusPaths paths = corpus_paths_from_args(args);
  args.done();
  const FetchResult result = fetch_corpus(experiment.corpus, paths);
  if (result.already_present)
    fmt::print("corpus {}: {} already present and verified ({} bytes)\n", experiment.corpus.name, result.path.string(), result.bytes);
  else
    fmt::print("corpus {}: wrote {} ({} bytes, sha256 {}) from {}\n", experiment.corpus.name, result.path.string(), result.bytes,
               experiment.corpus.sha256, result.source);
  return 0;
}

}  // namespace minitx::cli
