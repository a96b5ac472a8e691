#include <algorithm>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/threads.h"

namespace minitx::cpu {

void encoder_forward(float* out, const std::uint32_t* ids, const float* wte, const float* wpe, std::size_t N,
                     std::size_t T, std::size_t C, std::size_t offset) {
  parallel_for(N, [&](std::size_t begin, std::size_t end) {
    for (std::size_t n = begin; n < end; ++n) {
      const float* tok = wte + ids[n] * C;
      float* o = out + n * C;
      if (wpe == nullptr) {
        std::copy(tok, tok + C, o);
        continue;
      }
      const float* pos = wpe + (n % T + offset) * C;
      for (std::size_t c = 0; c < C; ++c) o[c] = tok[c] + pos[c];
    }
  });
}

// Rows sharing a token (or a position) add into one gradient row; splitting by channel keeps
// that sum in row order for every thread count.
void encoder_backward(float* dwte, float* dwpe, const float* dout, const std::uint32_t* ids, std::size_t N,
                      std::size_t T, std::size_t C, std::size_t offset) {
  parallel_for(
      C,
      [&](std::size_t c0, std::size_t c1) {
        for (std::size_t n = 0; n < N; ++n) {
          const float* d = dout + n * C;
          float* tok = dwte + ids[n] * C;
          for (std::size_t c = c0; c < c1; ++c) tok[c] += d[c];
          if (dwpe == nullptr) continue;
          float* pos = dwpe + (n % T + offset) * C;
          for (std::size_t c = c0; c < c1; ++c) pos[c] += d[c];
        }
      },
      8);
}

}  // namespace minitx::cpu
