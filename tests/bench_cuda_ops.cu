// A timing harness for the CUDA ops (not a test): each op at GPT-2-small training shapes, bf16,
// timed with CUDA events over repeated launches after a warm-up, reported as time per call and
// the bandwidth of the bytes it must move (the bound for these memory-bound ops). Inputs are
// constants: timings, not values, are the point here; the values are checked by the unit tests.
// Built by `make bench-cuda` (CUDA builds only) and run where there is a GPU.
#include <cstdio>
#include <functional>
#include <vector>

#include "minitx/backend/cuda/check.h"
#include "minitx/backend/cuda/ops.h"

namespace gpu = minitx::cuda;
using gpu::bf16;

namespace {

template <class T>
T* alloc(std::size_t n) {
  T* p = nullptr;
  MINITX_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  MINITX_CUDA_CHECK(cudaMemset(p, 0, n * sizeof(T)));  // zeros are valid for every op here
  return p;
}

void time_op(const char* name, double bytes, cudaStream_t stream, const std::function<void()>& op) {
  for (int i = 0; i < 3; ++i) op();
  cudaEvent_t start, stop;
  MINITX_CUDA_CHECK(cudaEventCreate(&start));
  MINITX_CUDA_CHECK(cudaEventCreate(&stop));
  constexpr int kRepeats = 20;
  MINITX_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < kRepeats; ++i) op();
  MINITX_CUDA_CHECK(cudaEventRecord(stop, stream));
  MINITX_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  MINITX_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  MINITX_CUDA_CHECK(cudaEventDestroy(start));
  MINITX_CUDA_CHECK(cudaEventDestroy(stop));
  const double per_call = ms / kRepeats;
  std::printf("%-28s %9.3f ms  %8.1f GB/s\n", name, per_call, bytes / (per_call * 1e6));
}

}  // namespace

int main() {
  try {
    const std::size_t B = 8, T_ = 1024, C = 768, NH = 12, V = 50257, Vp = 50304, N = B * T_;
    cudaStream_t stream;
    MINITX_CUDA_CHECK(cudaStreamCreate(&stream));
    auto* x = alloc<bf16>(N * 4 * C);
    auto* y = alloc<bf16>(N * 4 * C);
    auto* dx = alloc<bf16>(N * 4 * C);
    auto* w = alloc<bf16>(4 * C * C);
    auto* wb = alloc<bf16>(4 * C);
    auto* logits = alloc<bf16>(N * Vp);
    auto* mean = alloc<float>(N);
    auto* rstd = alloc<float>(N);
    auto* dw = alloc<float>(4 * C * C);
    auto* db = alloc<float>(4 * C);
    auto* losses = alloc<float>(N);
    auto* targets = alloc<std::uint32_t>(N);
    auto* scratch = alloc<float>(gpu::matmul_backward_scratch_floats(N, 4 * C, 4 * C));
    const std::size_t P = 124'000'000;  // GPT-2 small's parameters, for AdamW and the norm
    auto* params = alloc<float>(P);
    auto* grads = alloc<float>(P);
    auto* m = alloc<float>(P);
    auto* v = alloc<float>(P);
    auto* params16 = alloc<bf16>(P);
    auto* chunk_sums = alloc<double>(gpu::grad_norm_chunk_count(P));
    gpu::LtMatmul lt;
    const double act = static_cast<double>(N * C) * sizeof(bf16);

    time_op("layernorm_forward", 2 * act, stream,
            [&] { gpu::layernorm_forward(y, mean, rstd, x, wb, wb, N, C, 1e-5f, stream); });
    time_op("layernorm_backward", 4 * act, stream, [&] {
      gpu::layernorm_backward(dx, dw, db, scratch, y, x, wb, mean, rstd, N, C, stream);
    });
    time_op("gelu_tanh forward (4C)", 8 * act, stream,
            [&] { gpu::activation_forward(y, x, N * 4 * C, gpu::Activation::gelu_tanh, stream); });
    time_op("gelu_erf backward (4C)", 16 * act, stream,
            [&] { gpu::activation_backward(dx, x, y, N * 4 * C, gpu::Activation::gelu_erf, stream); });
    time_op("residual_forward", 3 * act, stream, [&] { gpu::residual_forward(y, x, x, N * C, stream); });
    time_op("rotary_forward (in place)", 4 * act, stream,
            [&] { gpu::rotary_forward(x, x, B, T_, C, NH, 16, 10000.0f, 0, stream); });
    time_op("crossentropy fwd+bwd", 2.0 * N * Vp * sizeof(bf16), stream, [&] {
      gpu::crossentropy_forward_backward(losses, logits, logits, targets, N, V, Vp, 1.0f / N, stream);
    });
    time_op("matmul_forward (C->4C)", 0, stream,
            [&] { gpu::matmul_forward(lt, y, x, w, wb, N, C, 4 * C, stream); });
    time_op("matmul_backward (C->4C)", 0, stream, [&] {
      gpu::matmul_backward(lt, dx, dw, db, scratch, y, x, w, N, C, 4 * C, true, stream);
    });
    time_op("adamw (124M, bf16 copy)", P * (4.0 * 7 + 2), stream, [&] {
      gpu::adamw_update(params, params16, grads, m, v, P, gpu::AdamWStep{3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1}, stream);
    });
    time_op("grad_norm_chunks (124M)", P * 4.0, stream,
            [&] { gpu::grad_norm_chunks(chunk_sums, grads, P, stream); });
    for (const auto& line : lt.algorithms()) std::printf("cublasLt %s\n", line.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-cuda-ops: %s\n", e.what());
    return 1;
  }
}
