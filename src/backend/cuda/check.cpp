// The failure paths of check.h, compiled by g++ (fmt does not compile under nvcc).
#if MINITX_CUDA
#include "minitx/backend/cuda/check.h"

#include "minitx/core/error.h"

namespace minitx::cuda {

void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
  fail("CUDA error {} ({}) in {} at {}:{}", cudaGetErrorName(err), cudaGetErrorString(err), call, file, line);
}
void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  fail("cuBLAS error {} in {} at {}:{}", cublasGetStatusName(status), call, file, line);
}
void fail_message(const std::string& message) { throw Error(message); }

}  // namespace minitx::cuda
#endif
