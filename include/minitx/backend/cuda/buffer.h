// Device memory owned by an object: allocated on construction, freed on destruction, copied to
// and from host vectors with checked calls. Only for builds with MINITX_CUDA.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "minitx/backend/cuda/check.h"

namespace minitx::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n > 0) MINITX_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : p_(std::exchange(other.p_, nullptr)), n_(std::exchange(other.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(p_, other.p_);
    std::swap(n_, other.n_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  // Copies in the order of `stream`'s work: an upload is queued behind what the stream already
  // holds, a download waits for the stream to finish. Host memory here is pageable (vectors),
  // which CUDA stages before the call returns, so the host data may be reused at once; pinned
  // memory would need a synchronisation first.
  void upload(const T* host, std::size_t n, cudaStream_t stream = nullptr) {
    if (n > n_) fail_op("device buffer: writing ", n, " elements into ", n_);
    if (n > 0) MINITX_CUDA_CHECK(cudaMemcpyAsync(p_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
    if (stream == nullptr) MINITX_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  void upload(const std::vector<T>& host, cudaStream_t stream = nullptr) { upload(host.data(), host.size(), stream); }
  void download(T* host, std::size_t n, cudaStream_t stream = nullptr) const {
    if (n > n_) fail_op("device buffer: reading ", n, " elements of ", n_);
    if (n > 0) MINITX_CUDA_CHECK(cudaMemcpyAsync(host, p_, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  std::vector<T> download(cudaStream_t stream = nullptr) const {
    std::vector<T> host(n_);
    download(host.data(), n_, stream);
    return host;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace minitx::cuda
