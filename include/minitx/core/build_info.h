// What this binary was built with: compiler, libraries, ISA level, CUDA. Recorded in
// provenance.json and printed by `minitx info`.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace minitx {

using BuildInfo = std::vector<std::pair<std::string, std::string>>;
BuildInfo build_info();

std::string toml_library_version();  // defined beside the only user of toml++ (config.cpp)

struct GpuInfo {
  std::string name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  std::size_t memory_bytes = 0;
};
// The visible CUDA devices; empty for a CPU-only build or a machine without a GPU.
std::vector<GpuInfo> cuda_devices();
// Dense peak rate of a GPU in FLOP/s for "bf16" (tensor cores) or "fp32", for MFU; 0 when the
// GPU's figure is not known to us.
double peak_flops(const GpuInfo& gpu, const std::string& precision);
// "13.0" for a CUDA build, "" otherwise.
std::string cuda_runtime_version();

}  // namespace minitx
