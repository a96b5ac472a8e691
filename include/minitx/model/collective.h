// What data-parallel training needs from the ranks' transport: moving exact bytes between ranks,
// never arithmetic. Every reduction (gradients, losses, the norm) is done by the ranks
// themselves, on values gathered exactly, in an order fixed by the data (the micro-batch tree
// and the chunk order of data_parallel.h), so the result is the same bits for any number of
// ranks. A transport's own floating-point reduction (NCCL's ncclReduceScatter / ncclAllReduce)
// is not used: its summation order depends on the rank count, the algorithm (ring, tree) and the
// protocol NCCL picks for the message size and topology, so a 2-GPU run could not reproduce a
// 1-GPU run bit for bit.
//
// Implementations: ThreadCollective below (ranks as threads in one process: the simulated ranks,
// on the CPU with memcpy, on one GPU with a ByteMover that queues device copies), and NCCL's
// (make_nccl_collectives in the GPU engine: one communicator per GPU, all_gather as
// ncclAllGather, exchange as grouped ncclSend/ncclRecv, broadcast as ncclBroadcast, barrier as
// an all-gather of one element, NCCL_NVLS_ENABLE=0 in its environment).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace minitx {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual std::size_t rank() const = 0;
  virtual std::size_t size() const = 0;
  // Every rank gives `bytes` bytes; `out` (size()·bytes) receives rank r's at r·bytes.
  virtual void all_gather(const void* in, void* out, std::size_t bytes) = 0;
  // All-to-all of exact bytes: send[s] goes to rank s, recv[r] receives what rank r sends to
  // this rank (its size must match; an empty span on both sides moves nothing). The
  // reduce-scatter of data parallelism is this exchange followed by a fixed-order sum.
  virtual void exchange(std::span<const std::span<const std::byte>> send, std::span<const std::span<std::byte>> recv) = 0;
  // Rank `root`'s `bytes` at `data` are copied to every other rank's `data`.
  virtual void broadcast(void* data, std::size_t bytes, std::size_t root) = 0;
  virtual void barrier() = 0;
  // Wakes every rank blocked in (or later entering) a collective with an error carrying `why`;
  // the first call's reason is kept. Called by a rank that failed, so that none waits forever.
  virtual void abort(const std::string& why) = 0;
  // The reason the group was aborted with (the first), or empty while it runs.
  virtual std::string aborted_why() const = 0;
};

// How a thread rank's copies move bytes: memcpy of host memory unless one is given. A GPU rank's
// queues them on its stream (cudaMemcpyAsync with cudaMemcpyDefault: any device's memory) and
// settles, waiting for its stream, whenever it arrives at the group's rendezvous: then what it
// posts has been written and what it copied has arrived before anyone goes on.
class ByteMover {
 public:
  virtual ~ByteMover() = default;
  virtual void copy(void* to, const void* from, std::size_t bytes) = 0;
  virtual void settle() = 0;
};

// Ranks as threads of one process, sharing one group: each call waits for all ranks (condition
// variables), copies from the buffers the others posted, and waits again so that no buffer is
// reused while another rank still reads it. `movers`: one per rank, or none for memcpy.
std::vector<std::unique_ptr<Collective>> make_thread_collectives(std::size_t ranks,
                                                                 std::vector<std::unique_ptr<ByteMover>> movers = {});

// Runs fn(rank's collective) on one thread per rank and joins them all. When a rank throws, the
// group is aborted (the others' collectives throw too, so every thread returns) and the first
// failure is rethrown as an Error naming the rank: "rank 1 of 4 failed: <what>".
void run_ranks(std::span<const std::unique_ptr<Collective>> ranks, const std::function<void(Collective&)>& fn);

// Views of floats as the bytes a Collective moves.
inline std::span<const std::byte> bytes_of(std::span<const float> x) { return std::as_bytes(x); }
inline std::span<std::byte> bytes_of(std::span<float> x) { return std::as_writable_bytes(x); }

}  // namespace minitx
