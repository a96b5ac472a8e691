// CUDA device queries for provenance and `minitx info`. A machine with the toolkit but no GPU
// (or no driver) simply reports no devices.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "minitx/core/build_info.h"

namespace minitx {

std::vector<GpuInfo> cuda_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device/driver" error
    return {};
  }
  std::vector<GpuInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back({prop.name, prop.multiProcessorCount, prop.major, prop.minor, prop.totalGlobalMem});
  }
  return devices;
}

std::string cuda_runtime_version() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

}  // namespace minitx
