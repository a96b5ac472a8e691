#include "minitx/release/provenance.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "minitx/core/build_info.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/sha256.h"
#include "minitx/core/subprocess.h"
#include "minitx/core/tar.h"

namespace minitx {
namespace {

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(sep, start), text.size());
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

nlohmann::json file_record(const std::string& path) {
  if (auto why = unsafe_path_reason(path)) fail("provenance: '{}': {} (give paths relative to the project)", path, *why);
  if (!fs::is_regular_file(path)) fail("provenance: '{}' does not exist", path);
  return {{"path", path}, {"sha256", sha256_file_hex(path)}, {"bytes", fs::file_size(path)}};
}

}  // namespace

StageRecord parse_stage_record(std::string_view text) {
  const std::vector<std::string> parts = split(text, ':');
  if (parts.size() != 3 || parts[0].empty())
    fail("provenance: stage '{}': expected NAME:INPUT,…:OUTPUT,…", excerpt(text));
  return {parts[0], split(parts[1], ','), split(parts[2], ',')};
}

SourceState source_state() {
  SourceState state;
  if (const char* commit = std::getenv("MINITX_SOURCE_COMMIT"); commit != nullptr && *commit != '\0') {
    state.commit = commit;
    const char* dirty = std::getenv("MINITX_SOURCE_DIRTY");
    state.dirty = dirty != nullptr && std::string_view(dirty) == "1";
    return state;
  }
  const ProcessResult head = run_process({"git", "rev-parse", "--verify", "-q", "HEAD"});
  if (!head.ok()) {
    state.commit = "unknown";
    return state;
  }
  state.commit = head.out.substr(0, head.out.find('\n'));
  // Tracked files only: results and builds are ignored, and untracked notes do not count.
  const ProcessResult status = run_process({"git", "status", "--porcelain", "--untracked-files=no"});
  state.dirty = !status.ok() || !status.out.empty();
  return state;
}

std::string provenance_json(const Experiment& experiment, const std::vector<StageRecord>& stages, const SourceState& source,
                            bool record_gpu) {
  nlohmann::json doc;
  doc["format"] = "minitx-provenance/1";
  doc["source"] = {{"commit", source.commit}, {"dirty", source.dirty}};
  doc["config"] = file_record(experiment.config_path.lexically_normal().string());
  doc["config"]["name"] = experiment.name;
  doc["corpus"] = {{"name", experiment.corpus.name}, {"sha256", experiment.corpus.sha256}};
  nlohmann::json stage_list = nlohmann::json::array();
  for (const StageRecord& stage : stages) {
    nlohmann::json record = {{"name", stage.name}, {"inputs", nlohmann::json::array()}, {"outputs", nlohmann::json::array()}};
    for (const auto& path : stage.inputs) record["inputs"].push_back(file_record(path));
    for (const auto& path : stage.outputs) record["outputs"].push_back(file_record(path));
    stage_list.push_back(std::move(record));
  }
  doc["stages"] = std::move(stage_list);
  nlohmann::json build = nlohmann::json::object();
  for (const auto& [key, value] : build_info()) build[key] = value;
  doc["build"] = std::move(build);
  doc["gpu"] = nullptr;
  if (record_gpu) {
    const std::vector<GpuInfo> gpus = cuda_devices();
    if (gpus.empty()) fail("provenance: a GPU was used but none is visible now");
    doc["gpu"] = {{"name", gpus[0].name}, {"sm_count", gpus[0].sm_count},
                  {"compute_capability", std::to_string(gpus[0].compute_major) + "." + std::to_string(gpus[0].compute_minor)}};
  }
  try {
    return doc.dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    // JSON holds only UTF-8; a stage name or path given on the command line may be anything.
    fail("provenance: a stage name, path or config value is not valid UTF-8, so it cannot be recorded ({})", e.what());
  }
}

}  // namespace minitx
