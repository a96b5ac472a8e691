// Checking wrappers for CUDA and cuBLAS(Lt) calls: a failure becomes a minitx::Error that names
// the call's file and line and the library's own error name, so no return code is dropped.
// Kernel launches are followed by MINITX_CUDA_LAUNCHED() to surface launch errors at once.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "minitx/core/error.h"

namespace minitx::cuda {

[[noreturn]] inline void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
  fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err), call, file, line);
}
[[noreturn]] inline void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  fail("cuBLAS error {} in {} at {}:{}", cublasGetStatusName(status), call, file, line);
}

}  // namespace minitx::cuda

#define MINITX_CUDA_CHECK(call)                                                        \
  do {                                                                                 \
    const cudaError_t err_ = (call);                                                   \
    if (err_ != cudaSuccess) ::minitx::cuda::fail_cuda(err_, #call, __FILE__, __LINE__); \
  } while (0)

#define MINITX_CUBLAS_CHECK(call)                                                                  \
  do {                                                                                             \
    const cublasStatus_t status_ = (call);                                                         \
    if (status_ != CUBLAS_STATUS_SUCCESS) ::minitx::cuda::fail_cublas(status_, #call, __FILE__, __LINE__); \
  } while (0)

#define MINITX_CUDA_LAUNCHED() MINITX_CUDA_CHECK(cudaGetLastError())
