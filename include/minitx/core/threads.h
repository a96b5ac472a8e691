// Threads: one persistent pool and a parallel_for that splits [0, n) into contiguous chunks
// fixed by n and the thread count alone. Callers keep results thread-count independent by
// partitioning over outputs: each index writes its own outputs, and no sum is split across
// chunks. The count comes from set_thread_count() (the CLI's --threads) or MINITX_THREADS,
// else the machine's cores.
#pragma once
#include <cstddef>
#include <functional>

namespace minitx {

int thread_count();
void set_thread_count(int threads);  // 0 means "the machine's cores"

// Runs fn(begin, end) over disjoint chunks covering [0, n); returns when all are done.
// Chunk boundaries are multiples of `grain` (except the last) so callers can align work.
void parallel_for(std::size_t n, const std::function<void(std::size_t begin, std::size_t end)>& fn,
                  std::size_t grain = 1);

}  // namespace minitx
