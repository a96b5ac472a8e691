// out/provenance.json: what produced a run's results — source commit, config and corpus
// hashes, each stage's inputs and outputs with their hashes, build and device. It holds no
// time, host, user or absolute path, so two runs of one tree write the same file.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "minitx/experiment.h"

namespace minitx {

struct StageRecord {
  std::string name;
  std::vector<std::string> inputs, outputs;
};
// "NAME:IN1,IN2:OUT1,OUT2" as mk/pipeline.mk passes it.
StageRecord parse_stage_record(std::string_view text);

struct SourceState {
  std::string commit;  // "unknown" outside a git checkout
  bool dirty = false;
};
// MINITX_SOURCE_COMMIT / MINITX_SOURCE_DIRTY when set (test-idem's copies), else git.
SourceState source_state();

std::string provenance_json(const Experiment& experiment, const std::vector<StageRecord>& stages, const SourceState& source,
                            bool record_gpu);

}  // namespace minitx
