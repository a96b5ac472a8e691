#include "minitx/core/build_info.h"

#include <fmt/format.h>
#include <openssl/opensslv.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

namespace minitx {

#ifndef MINITX_BUILD_TYPE
#define MINITX_BUILD_TYPE "unknown"
#endif

BuildInfo build_info() {
  BuildInfo info = {
      {"minitx", MINITX_VERSION},
      {"compiler", fmt::format("g++ {}", __VERSION__)},
      {"build_type", MINITX_BUILD_TYPE},
      {"isa", MINITX_ISA},
      {"fmt", fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
      {"openssl", OPENSSL_FULL_VERSION_STR},
      {"zlib", ZLIB_VERSION},
      {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH)},
      {"tomlplusplus", toml_library_version()},
      {"cuda", cuda_runtime_version().empty() ? "none (CPU-only build)" : cuda_runtime_version()},
  };
  return info;
}

#ifndef MINITX_CUDA
std::vector<GpuInfo> cuda_devices() { return {}; }
std::string cuda_runtime_version() { return ""; }
#endif

double peak_flops(const GpuInfo& gpu, const std::string& precision) {
  // NVIDIA's data sheets, dense (no sparsity), for the SXM parts: the H100 SXM ("H100 80GB
  // HBM3") and the H200 share the chip and its clocks. PCIe and NVL parts run slower clocks.
  const auto has = [&](const char* s) { return gpu.name.find(s) != std::string::npos; };
  const bool sxm = (has("H200") || has("H100 80GB HBM3")) && !has("NVL") && !has("PCIe");
  if (!sxm) return 0.0;
  return precision == "fp32" ? 66.9e12 : 989.4e12;
}

}  // namespace minitx
