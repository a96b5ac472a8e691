// Collective over NCCL: exact bytes only (all-gather, grouped send/receive, broadcast), never
// NCCL's floating-point reductions (collective.h says why). Every call is queued on the rank's
// stream, in the order the rank makes them, so the data it moves is ordered after the kernels
// that wrote it without a wait on the host; only barrier waits.
#if MINITX_CUDA
#include "minitx/backend/cuda/nccl_collective.h"

#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "minitx/backend/cuda/check.h"
#include "minitx/core/error.h"

#if MINITX_NCCL
#include <nccl.h>
#endif

namespace minitx::cuda {

#if MINITX_NCCL
namespace {

// The communicators of one ncclCommInitAll, and why the group stopped (the first reason).
class NcclGroup {
 public:
  explicit NcclGroup(std::vector<ncclComm_t> comms) : comms_(std::move(comms)) {}
  ~NcclGroup() {
    // An aborted communicator is already freed by ncclCommAbort.
    if (!aborted_)
      for (ncclComm_t c : comms_) ncclCommDestroy(c);
  }
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  ncclComm_t comm(std::size_t rank) const { return comms_[rank]; }
  std::size_t size() const { return comms_.size(); }

  // Aborting every communicator ends the NCCL kernels of every rank, so that a rank waiting on
  // its stream for a peer that failed returns instead of hanging.
  void abort(const std::string& why) {
    std::lock_guard lock(mutex_);
    if (why_.empty()) why_ = why.empty() ? std::string("aborted") : why;
    if (aborted_) return;
    aborted_ = true;
    for (ncclComm_t c : comms_) ncclCommAbort(c);
  }
  std::string why() const {
    std::lock_guard lock(mutex_);
    return why_;
  }

 private:
  std::vector<ncclComm_t> comms_;
  mutable std::mutex mutex_;
  std::string why_;
  bool aborted_ = false;
};

class NcclCollective final : public Collective {
 public:
  NcclCollective(std::shared_ptr<NcclGroup> group, std::size_t rank, int device, cudaStream_t stream)
      : group_(std::move(group)), rank_(rank), device_(device), stream_(stream) {
    MINITX_CUDA_CHECK(cudaSetDevice(device_));
    MINITX_CUDA_CHECK(cudaMalloc(&token_, (group_->size() + 1) * sizeof(float)));
  }
  ~NcclCollective() override { cudaFree(token_); }
  NcclCollective(const NcclCollective&) = delete;
  NcclCollective& operator=(const NcclCollective&) = delete;

  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return group_->size(); }

  void all_gather(const void* in, void* out, std::size_t bytes) override {
    started("all_gather");
    check(ncclAllGather(in, out, bytes, ncclUint8, comm(), stream_), "all_gather");
  }

  // The sizes are not checked against the peers' (NCCL cannot without another message): every
  // caller derives both sides from the same shard plan.
  void exchange(std::span<const std::span<const std::byte>> send, std::span<const std::span<std::byte>> recv) override {
    MINITX_CHECK(send.size() == size() && recv.size() == size(),
                 "exchange on rank {}: {} send and {} receive buffers for {} ranks", rank_, send.size(), recv.size(),
                 size());
    started("exchange");
    const std::span<const std::byte> self = send[rank_];
    MINITX_CHECK(self.size() == recv[rank_].size(), "exchange on rank {}: sends itself {} bytes, expects {}", rank_,
                 self.size(), recv[rank_].size());
    if (!self.empty() && self.data() != recv[rank_].data())
      MINITX_CUDA_CHECK(cudaMemcpyAsync(recv[rank_].data(), self.data(), self.size(), cudaMemcpyDefault, stream_));
    check(ncclGroupStart(), "exchange (group start)");
    // A failed send or receive still closes the group: an open group would defer this thread's
    // later NCCL calls (ncclCommAbort among them) forever.
    try {
      for (std::size_t r = 0; r < size(); ++r) {
        if (r == rank_) continue;
        const int peer = static_cast<int>(r);
        if (!send[r].empty())
          check(ncclSend(send[r].data(), send[r].size(), ncclUint8, peer, comm(), stream_), "exchange (send)");
        if (!recv[r].empty())
          check(ncclRecv(recv[r].data(), recv[r].size(), ncclUint8, peer, comm(), stream_), "exchange (receive)");
      }
    } catch (...) {
      ncclGroupEnd();
      throw;
    }
    check(ncclGroupEnd(), "exchange");
  }

  void broadcast(void* data, std::size_t bytes, std::size_t root) override {
    MINITX_CHECK(root < size(), "broadcast from rank {}, but there are {} ranks", root, size());
    started("broadcast");
    check(ncclBroadcast(data, data, bytes, ncclUint8, static_cast<int>(root), comm(), stream_), "broadcast");
  }

  // An all-gather of one element, waited for: every rank has queued everything before it.
  void barrier() override {
    started("barrier");
    check(ncclAllGather(token_, token_ + 1, 1, ncclFloat32, comm(), stream_), "barrier");
    const cudaError_t e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) fail_here("barrier", cudaGetErrorString(e));
  }

  void abort(const std::string& why) override { group_->abort(why); }
  std::string aborted_why() const override { return group_->why(); }

 private:
  ncclComm_t comm() const { return group_->comm(rank_); }
  // A call on a stopped group fails at once, as ThreadCollective's do.
  void started(const char* op) const {
    const std::string why = group_->why();
    if (!why.empty()) fail("nccl {} on rank {} of {}: the group stopped: {}", op, rank_, size(), why);
  }
  void check(ncclResult_t result, const char* op) const {
    if (result == ncclSuccess) return;
    const char* last = ncclGetLastError(comm());
    fail_here(op, fmt::format("{}{}", ncclGetErrorString(result),
                              last != nullptr && *last != '\0' ? fmt::format(" ({})", last) : std::string()));
  }
  [[noreturn]] void fail_here(const char* op, const std::string& what) const {
    fail("nccl {} on rank {} of {} (GPU {}): {}", op, rank_, size(), device_, what);
  }

  std::shared_ptr<NcclGroup> group_;
  std::size_t rank_;
  int device_;
  cudaStream_t stream_;
  float* token_ = nullptr;
};

}  // namespace

bool nccl_built() { return true; }

std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>& devices,
                                                               const std::vector<cudaStream_t>& streams) {
  MINITX_CHECK(!devices.empty() && devices.size() == streams.size(),
               "nccl: {} GPUs and {} streams: expected one stream per GPU, at least one", devices.size(),
               streams.size());
  // Before NCCL reads its environment (at its first call); children inherit it.
  if (setenv("NCCL_NVLS_ENABLE", "0", 1) != 0) fail("nccl: could not set NCCL_NVLS_ENABLE=0 in the environment");
  std::vector<ncclComm_t> comms(devices.size());
  const ncclResult_t r = ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data());
  if (r != ncclSuccess)
    fail("nccl: ncclCommInitAll over {} GPUs failed: {} ({})", devices.size(), ncclGetErrorString(r),
         ncclGetLastError(nullptr));
  auto group = std::make_shared<NcclGroup>(std::move(comms));
  int current = 0;
  MINITX_CUDA_CHECK(cudaGetDevice(&current));
  std::vector<std::unique_ptr<Collective>> out;
  try {
    for (std::size_t i = 0; i < devices.size(); ++i)
      out.push_back(std::make_unique<NcclCollective>(group, i, devices[i], streams[i]));
  } catch (...) {
    cudaSetDevice(current);  // the caller's device, as on success
    throw;
  }
  MINITX_CUDA_CHECK(cudaSetDevice(current));
  return out;
}
#else
bool nccl_built() { return false; }

std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>& devices,
                                                               const std::vector<cudaStream_t>&) {
  fail("train: --gpus {} needs NCCL (libnccl.so.2), but this build has none: nccl.h was not found beside the CUDA "
       "headers when it was built; install NCCL and rebuild",
       devices.size());
}
#endif

}  // namespace minitx::cuda
#endif
