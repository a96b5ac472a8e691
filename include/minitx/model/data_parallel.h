// Data parallelism whose bits do not depend on the number of ranks.
//
// A step's B sequences are cut, in order, into M micro-batches of B/M. Their gradients (and
// losses) are summed by one fixed tree over the micro-batch index: the midpoint tree, where
// [lo, hi) is the sum of [lo, mid) and [mid, hi), mid = lo + (hi - lo)/2 (for M a power of two,
// ((g0+g1)+(g2+g3))+…). With N ranks, N a power of two dividing M, rank r takes micro-batches
// [r·M/N, (r+1)·M/N): the top log2(N) splits of the tree fall exactly on rank boundaries, so each
// rank's local sum is a subtree and the ranks' sums, combined by the same tree over the rank
// index, give the one-rank result bit for bit.
//
// ZeRO-1: the P parameters are split into N shards whose boundaries are multiples of
// kShardChunk. Rank s gathers every rank's gradient sum restricted to its shard (an exact
// exchange), adds them in tree order, clips by the global norm, runs AdamW on its shard with its
// shard of the moments, and the updated shards are gathered by every rank. The norm is
// Σ over chunks of kShardChunk (each summed alone, then the chunks in order: what
// cpu::sum_of_squares does), so the shards' partial sums concatenate to the one-rank sum.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "minitx/model/collective.h"
#include "minitx/model/config.h"
#include "minitx/model/train_engine.h"

namespace minitx {

// Sums leaves [lo, hi) by the midpoint tree: leaf(i) makes leaf i (called in index order,
// each once), add(a, b) combines a left subtree with the right one next to it.
template <class Leaf, class Add>
auto tree_sum(std::size_t lo, std::size_t hi, const Leaf& leaf, const Add& add) -> decltype(leaf(lo)) {
  if (hi - lo == 1) return leaf(lo);
  const std::size_t mid = lo + (hi - lo) / 2;
  auto left = tree_sum(lo, mid, leaf, add);
  auto right = tree_sum(mid, hi, leaf, add);
  return add(std::move(left), std::move(right));
}

// The elements per chunk of the norm's partial sums and of shard boundaries: the same blocks as
// cpu::sum_of_squares's, so that one rank's norm keeps the bits it always had.
inline constexpr std::size_t kShardChunk = 4096;

// Rank r's part of the parameter vector.
struct Shard {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
// N shards covering [0, P) in order, boundaries at multiples of `chunk` (P itself excepted),
// whole chunks spread as evenly as possible (counts differ by at most one); a rank gets an empty
// shard when there are fewer chunks than ranks.
std::vector<Shard> shard_plan(std::size_t P, std::size_t ranks, std::size_t chunk = kShardChunk);

// ZeRO-1's exchanges, the same on every device: U* point to host or device memory, whichever
// the Collective moves. A rank's own part is not copied where it already is in place.
//
// Reduce-scatter's exchange: to rank r the part of `sum` (all P elements) in plan[r]; into
// parts[r], rank r's part for my shard (plan[me].size() elements each).
template <class U>
void exchange_shards(Collective& c, const std::vector<Shard>& plan, const U* sum, std::span<U* const> parts) {
  const std::size_t N = c.size(), mine = plan[c.rank()].size();
  std::vector<std::span<const std::byte>> send(N);
  std::vector<std::span<std::byte>> recv(N);
  for (std::size_t r = 0; r < N; ++r) {
    send[r] = std::as_bytes(std::span<const U>(sum + plan[r].begin, plan[r].size()));
    recv[r] = std::as_writable_bytes(std::span<U>(parts[r], mine));
  }
  c.exchange(send, recv);
}
// Every rank's shard of `whole` (all P elements, mine updated) into every rank's `whole`.
template <class U>
void gather_shards(Collective& c, const std::vector<Shard>& plan, U* whole) {
  const std::size_t N = c.size(), me = c.rank();
  std::vector<std::span<const std::byte>> send(N, std::as_bytes(std::span<const U>(whole + plan[me].begin, plan[me].size())));
  std::vector<std::span<std::byte>> recv(N);
  for (std::size_t r = 0; r < N; ++r)
    if (r != me) recv[r] = std::as_writable_bytes(std::span<U>(whole + plan[r].begin, plan[r].size()));
  send[me] = {};  // mine is in place
  c.exchange(send, recv);
}
// The norm's chunk sums: `sums` holds one per kShardChunk of the P elements, mine at my shard's
// first chunk; every rank's are copied into their places, to be added in chunk order.
void gather_chunk_sums(Collective& c, const std::vector<Shard>& plan, double* sums);

// The checks of a data-parallel layout: micro_batches divides B, ranks a power of two dividing
// micro_batches; errors name the values.
void check_data_parallel(std::size_t B, std::size_t micro_batches, std::size_t ranks);

// The CPU's engine with M micro-batches on N simulated ranks (threads of this process, through
// ThreadCollective). With M = N = 1 it computes exactly what make_cpu_engine does; train uses
// make_cpu_engine then, which keeps the single-rank path as fast as it was.
std::unique_ptr<TrainEngine> make_cpu_data_parallel_engine(const ModelConfig& config, std::size_t B, std::size_t T,
                                                           std::size_t micro_batches, std::size_t ranks,
                                                           TrainState state);

}  // namespace minitx
