#include <fmt/format.h>

#include "commands.h"
#include "common.h"

namespace minitx::cli {

int run_verify_corpus(Args& args) {
  const Experiment experiment = experiment_from_args(args);
  const CorpusPaths paths = corpus_paths_from_args(args);
  args.done();
  const VerifyResult result = verify_corpus(experiment.corpus, paths);
  fmt::print("corpus   {} ({} bytes)\nexpected {}\nactual   {}\n", paths.file(experiment.corpus).string(), result.bytes, result.expected,
             result.actual);
  if (!result.ok()) {
    fmt::print(stderr, "minitx: verify-corpus: {}: SHA-256 mismatch (pinned in {})\n", paths.file(experiment.corpus).string(),
               experiment.config_path.string());
    return 1;
  }
  fmt::print("ok\n");
  return 0;
}

}  // namespace minitx::cli
