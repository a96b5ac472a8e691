// Checking wrappers for CUDA and cuBLAS(Lt) calls: a failure becomes a minitx::Error that names
// the call's file and line and the library's own error name, so no return code is dropped.
// Kernel launches are followed by MINITX_CUDA_LAUNCHED() to surface launch errors at once.
//
// This header is included by .cu files, and nvcc 13's front end cannot compile fmt 9 (its
// consteval format-string check, and constexpr functions in the host pass, are rejected), so it
// does not include minitx/core/error.h: the failures are thrown by functions defined in
// src/backend/cuda/check.cpp, which g++ compiles.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <sstream>
#include <string>

namespace minitx::cuda {

[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line);
// Throws minitx::Error with this message.
[[noreturn]] void fail_message(const std::string& message);

// fail_op("matmul: N = ", N, " is too large"): a message from its parts, for .cu files.
template <class... Parts>
[[noreturn]] void fail_op(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  fail_message(out.str());
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
