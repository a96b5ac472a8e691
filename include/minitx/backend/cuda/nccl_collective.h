// The GPUs' transport: one NCCL communicator per GPU, all in this process.
//
// Why one process with a thread per GPU rather than a process per GPU: the training loop, the
// batch stream and the checkpoint writer stay single (rank 0's thread writes through the one
// atomic writer; nothing is launched, nothing is gathered from other processes), the rank
// threads and their failure handling are the simulated ranks' (run_ranks), and ncclCommInitAll
// makes every communicator in-process without a rendezvous over the network.
#pragma once
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "minitx/model/collective.h"

namespace minitx::cuda {

// Whether this build links NCCL (nccl.h was found beside the CUDA headers).
bool nccl_built();
// Rank r on GPU devices[r], its calls queued on streams[r] (a stream of that device). Sets
// NCCL_NVLS_ENABLE=0 in this process's environment (kept by any child) before the first NCCL
// call: NVLink multicast stays off. A build without NCCL fails, naming the library.
std::vector<std::unique_ptr<Collective>> make_nccl_collectives(const std::vector<int>& devices,
                                                               const std::vector<cudaStream_t>& streams);

}  // namespace minitx::cuda
