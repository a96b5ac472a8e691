// Where a GPU step's time goes: an event is recorded on the stream after each op, named by the
// op; at the end of the step the gaps between consecutive events are added to that op's total.
// Events between kernels on one stream cost a few microseconds; a timer that is not started
// records nothing, so the ops call mark() unconditionally. A CUDA build only.
#pragma once
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

#include "minitx/backend/cuda/check.h"

namespace minitx::cuda {

class OpTimer {
 public:
  struct Total {
    double ms = 0.0;
    std::size_t calls = 0;
  };
  OpTimer() = default;
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;
  ~OpTimer() {
    for (cudaEvent_t e : pool_) cudaEventDestroy(e);
  }

  // Starts a step on `stream` (marks that follow are timed) when `on`; otherwise marks are no-ops.
  void begin(cudaStream_t stream, bool on) {
    stream_ = stream;
    active_ = on;
    names_.clear();
    if (active_) record(0);
  }
  void mark(const char* name) {
    if (!active_) return;
    record(names_.size() + 1);
    names_.push_back(name);
  }
  // Waits for the step and adds each op's gaps to its total.
  void end() {
    if (!active_) return;
    MINITX_CUDA_CHECK(cudaEventSynchronize(pool_[names_.size()]));
    for (std::size_t i = 0; i < names_.size(); ++i) {
      float ms = 0.0f;
      MINITX_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[i], pool_[i + 1]));
      Total& t = totals_[names_[i]];
      t.ms += ms;
      ++t.calls;
    }
    active_ = false;
  }
  const std::map<std::string, Total>& totals() const { return totals_; }
  void reset() { totals_.clear(); }

 private:
  void record(std::size_t slot) {
    while (pool_.size() <= slot) {
      cudaEvent_t e = nullptr;
      MINITX_CUDA_CHECK(cudaEventCreate(&e));
      pool_.push_back(e);
    }
    MINITX_CUDA_CHECK(cudaEventRecord(pool_[slot], stream_));
  }

  cudaStream_t stream_ = nullptr;
  bool active_ = false;
  std::vector<cudaEvent_t> pool_;
  std::vector<const char*> names_;
  std::map<std::string, Total> totals_;
};

}  // namespace minitx::cuda
