#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "minitx/core/error.h"

namespace minitx::cli {

Experiment experiment_from_args(Args& args) {
  Experiment experiment = load_experiment(args.required("--config"));
  if (auto out = args.option("--out")) experiment.out_dir = *out;
  return experiment;
}

std::filesystem::path model_path_from_args(Args& args, const Experiment& experiment) {
  const auto model = args.option("--model");
  const auto checkpoint = args.option("--checkpoint");
  return model.value_or(checkpoint.value_or((experiment.out_dir / "model.ckpt").string()));
}

CorpusPaths corpus_paths_from_args(Args& args) {
  CorpusPaths paths;
  if (auto dir = args.option("--corpus-dir")) paths.dir = *dir;
  return paths;
}

void flush_stdout() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    const int error = errno;
    fail("standard output: write error: {}", error != 0 ? std::strerror(error) : "an earlier write failed");
  }
}

void write_stdout(std::string_view data) {
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), stdout) != data.size())
    fail("standard output: write error: {}", std::strerror(errno));
}

}  // namespace minitx::cli
