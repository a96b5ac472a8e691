#include "common.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

std::optional<Experiment> optional_experiment_from_args(Args& args) {
  const auto config = args.option("--config");
  if (!config) return std::nullopt;
  Experiment experiment = load_experiment(*config);
  if (auto out = args.option("--out")) experiment.out_dir = *out;
  return experiment;
}

std::string fail_missing(const char* command, const char* option) {
  fail("{}: missing option {}", command, option);
}

std::vector<std::uint32_t> ids_from_text(const std::string& text, const std::string& what) {
  std::vector<std::uint32_t> ids;
  std::size_t at = 0;
  while (at <= text.size() && !text.empty()) {
    std::size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(at, end - at);
    char* stop = nullptr;
    const unsigned long long v = std::strtoull(item.c_str(), &stop, 10);
    if (item.empty() || item[0] < '0' || item[0] > '9' || *stop != '\0' || v > 0xFFFFFFFFull)
      fail("{}: '{}' is not a token id", what, excerpt(item));
    ids.push_back(static_cast<std::uint32_t>(v));
    at = end + 1;
  }
  return ids;
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  MINITX_CHECK(!values.empty(), "median of no measurements");
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void write_stdout(std::string_view data) {
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), stdout) != data.size())
    fail("standard output: write error: {}", std::strerror(errno));
}

std::string resolve_device(const std::string& device) {
  if (device == "auto") return cuda_devices().empty() ? "cpu" : "cuda";
  MINITX_CHECK(device == "cpu" || device == "cuda", "--device {}: expected auto, cpu or cuda", device);
  MINITX_CHECK(device == "cpu" || !cuda_devices().empty(), "--device cuda: {}",
               cuda_runtime_version().empty() ? "this build has no CUDA (nvcc was not found when it was built)"
                                              : "no CUDA device is visible on this machine");
  return device;
}

std::vector<std::string> resolve_bench_devices(const std::string& device) {
  if (device != "auto") return {resolve_device(device)};
  if (resolve_device(device) == "cuda") return {"cpu", "cuda"};
  return {"cpu"};
}


}  // namespace minitx::cli
