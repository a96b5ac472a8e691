#include "minitx/backend/cpu/membw.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "minitx/core/threads.h"

namespace minitx::cpu {

double read_bandwidth(const float* data, std::size_t floats, int passes) {
  double best = 0;
  std::atomic<float> sink{0};
  for (int p = 0; p < passes; ++p) {
    const auto start = std::chrono::steady_clock::now();
    // Four independent sums, so the adds never wait on each other; chunks of whole cache lines,
    // prefetched as the matrix-vector product prefetches its rows.
    parallel_for(
        floats,
        [&](std::size_t begin, std::size_t end) {
          __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
          std::size_t i = begin;
          for (; i + 32 <= end; i += 32) {
            _mm_prefetch(reinterpret_cast<const char*>(data + i + 512), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(data + i + 528), _MM_HINT_T0);
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(data + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(data + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(data + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(data + i + 24));
          }
          float tail = 0;
          for (; i < end; ++i) tail += data[i];
          alignas(32) float l[8];
          _mm256_store_ps(l, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
          sink.store(l[0] + tail, std::memory_order_relaxed);  // keeps the loads
        },
        16);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(floats * sizeof(float)) / s / 1e9);
  }
  return best;
}

}  // namespace minitx::cpu
