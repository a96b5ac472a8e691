#include "minitx/infer/cuda_eval.h"

#include <algorithm>

#include "minitx/core/error.h"

#if MINITX_CUDA
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "../backend/cuda/block_ops.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#endif

namespace minitx {

std::size_t cuda_eval_windows(std::size_t T) { return std::max<std::size_t>(1, 4096 / std::max<std::size_t>(1, T)); }

#if MINITX_CUDA
namespace {

std::string gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / double(1 << 30)); }

// The forward-only op table of the decoder's prefill (no gradients, moments or backward buffers:
// the training engine's evaluate() would hold those too, four times the parameters and more, and
// its batches are a caller's), one layer's activations reused by every layer.
template <class T>
EvalResult evaluate(const GptWeights& w, const std::vector<std::uint32_t>& ids, std::size_t window) {
  const ModelConfig& m = w.config;
  const std::size_t W = cuda_eval_windows(window), N = W * window, V = m.vocab_size, P = param_layout(m).total;
  cuda::Stream stream;
  cuda::LtMatmul lt;
  cuda::CudaBlockOps<T> ops(m, lt, stream, W, window, cuda::CudaBlockOps<T>::Passes::forward);
  BlockActivations<T> probe;
  const std::size_t acts = bind_activations(probe, nullptr, m, W, window, false, ops.attention_state(m, W, window));
  // bf16 stages the fp32 table on the device while rounding it.
  const double params = double(P) * (sizeof(T) + (std::is_same_v<T, float> ? 0 : sizeof(float)));
  const double need = params + double(acts) + double(N * V * sizeof(T)) + double(N) * (sizeof(float) + 8) +
                      double(cuda::kLtWorkspaceBytes);
  std::size_t free_bytes = 0, total_bytes = 0;
  MINITX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (need > 0.95 * double(free_bytes))
    fail("eval --device cuda: the model needs {} of device memory (parameters {}, activations and logits of {} windows "
         "of {} tokens {}), but {} of {} is free",
         gib(need), gib(params), W, window, gib(need - params), gib(double(free_bytes)), gib(double(total_bytes)));

  const cuda::DeviceBuffer<T> table = cuda::upload_parameters<T>(dense_parameters(w), stream);
  ops.bind(table.get(), nullptr);
  cuda::DeviceBuffer<unsigned char> storage(acts);
  cuda::DeviceBuffer<T> logits(N * V);
  cuda::DeviceBuffer<float> losses(N);
  cuda::DeviceBuffer<std::uint32_t> inputs_d(N), targets_d(N);
  return evaluate_windows(ids, window, W, 0, m.context,
                          [&](float* out, const std::uint32_t* inputs, const std::uint32_t* targets, std::size_t count,
                              std::size_t len) {
                            const std::size_t n = count * len;
                            check_token_ids(inputs, n, m, "evaluation inputs");
                            check_token_ids(targets, n, m, "evaluation targets");
                            inputs_d.upload(inputs, n, stream);
                            targets_d.upload(targets, n, stream);
                            BlockActivations<T> a;
                            bind_activations(a, storage.get(), m, count, len, false,
                                             ops.attention_state(m, count, len));
                            block_forward(ops, a, inputs_d.get(), count, len);
                            ops.head_losses(logits.get(), losses.get(), a.lnf, targets_d.get(), n, false);
                            losses.download(out, n, stream);
                          });
}

}  // namespace

EvalResult cuda_evaluate_loss(const GptWeights& weights, const std::vector<std::uint32_t>& ids, std::size_t T,
                              GpuPrecision precision) {
  MINITX_CHECK(cuda_decode_available(), "eval --device cuda: no CUDA device is visible on this machine");
  const ModelConfig& m = weights.config;
  // Checked here as evaluate_windows does, before the device's buffers are sized by T.
  MINITX_CHECK(T >= 1 && T <= m.context, "eval: window of {} tokens outside 1..{} (the model's context)", T, m.context);
  MINITX_CHECK(precision == GpuPrecision::fp32 || bf16_attention_fits(m),
               "eval --device cuda --precision bf16: the GPU's bf16 attention takes head sizes 64 and 128, and this "
               "model's is {} (n_embd {} / n_head {}); use --precision fp32",
               m.n_embd / m.n_head, m.n_embd, m.n_head);
  if (precision == GpuPrecision::bf16) return evaluate<cuda::bf16>(weights, ids, T);
  return evaluate<float>(weights, ids, T);
}

#else

EvalResult cuda_evaluate_loss(const GptWeights&, const std::vector<std::uint32_t>&, std::size_t, GpuPrecision) {
  fail("eval --device cuda: this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}

#endif

}  // namespace minitx
