// How fast the pool's threads can merely read a buffer, right now: the ceiling of any step that
// streams that buffer once. A decode step reads every weight once per token, so benchmarks time
// a read of the model's own parameters beside the decode, in the same run and from the same
// memory (a 260 MiB L3 holds much of a small model: a separate buffer would measure something
// else), and a noisy neighbour shows in both figures.
#pragma once
#include <cstddef>

namespace minitx::cpu {

// GB/s (10^9 bytes) of the fastest of `passes` reads of data[0, floats).
double read_bandwidth(const float* data, std::size_t floats, int passes = 3);

}  // namespace minitx::cpu
