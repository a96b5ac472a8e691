// The GPU's training engine: block.h's forward and backward with the CUDA op table, the head and
// the fused softmax cross-entropy, then the global norm, clipping and AdamW, all on one stream.
// Parameters, gradients and both moments stay fp32 on the device; in bf16 mode the forward and
// backward read a bf16 copy that AdamW refreshes as it updates the masters.
#include "minitx/model/train_engine.h"

#if MINITX_CUDA
#include <cuda_runtime.h>

#include <cmath>

#include "../backend/cuda/block_ops.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#endif

#include "minitx/core/error.h"

namespace minitx {

#if MINITX_CUDA
namespace {

template <class T>
class CudaEngine final : public TrainEngine {
 public:
  CudaEngine(const ModelConfig& config, std::size_t B, std::size_t time, TrainState state)
      : config_(config), B_(B), T_(time), P_(param_count(config)), ops_(config, lt_, stream_, B, time) {
    MINITX_CHECK(state.params.size() == P_ && state.m.size() == P_ && state.v.size() == P_,
                 "cuda: a training state of {} parameters for a model of {}", state.params.size(), P_);
    const std::size_t N = B * T_, V = config.vocab_size;
    params_ = cuda::DeviceBuffer<float>(P_);
    grads_ = cuda::DeviceBuffer<float>(P_);
    m_ = cuda::DeviceBuffer<float>(P_);
    v_ = cuda::DeviceBuffer<float>(P_);
    params_.upload(state.params, stream_);
    m_.upload(state.m, stream_);
    v_.upload(state.v, stream_);
    if constexpr (std::is_same_v<T, cuda::bf16>) {
      copy_ = cuda::DeviceBuffer<T>(P_);
      cuda::convert_from_fp32<T>(copy_.get(), params_.get(), P_, stream_);
      ops_.bind(copy_.get(), grads_.get());
    } else {
      ops_.bind(params_.get(), grads_.get());
    }
    BlockActivations<T> probe;
    acts_bytes_ = bind_activations(probe, nullptr, config, B, T_, true, ops_.attention_state(config, B, T_));
    acts_storage_ = cuda::DeviceBuffer<unsigned char>(acts_bytes_);
    bind_activations(acts_, acts_storage_.get(), config, B, T_, true, ops_.attention_state(config, B, T_));
    grad_storage_ = cuda::DeviceBuffer<unsigned char>(bind_gradients(grads_view_, nullptr, config, B, T_));
    bind_gradients(grads_view_, grad_storage_.get(), config, B, T_);
    logits_ = cuda::DeviceBuffer<T>(N * V);
    losses_ = cuda::DeviceBuffer<float>(N);
    ids_ = cuda::DeviceBuffer<std::uint32_t>(N);
    targets_ = cuda::DeviceBuffer<std::uint32_t>(N);
    rows_ = cuda::DeviceBuffer<std::int32_t>(std::min(N, V));
    offsets_ = cuda::DeviceBuffer<std::int32_t>(std::min(N, V) + 1);
    positions_ = cuda::DeviceBuffer<std::int32_t>(N);
    norm_sq_ = cuda::DeviceBuffer<double>(1);
    norm_partials_ = cuda::DeviceBuffer<double>(cuda::grad_norm_scratch_doubles());
    host_losses_.resize(N);
  }
  CudaEngine(const CudaEngine&) = delete;
  CudaEngine& operator=(const CudaEngine&) = delete;

  StepStats forward_backward(const std::uint32_t* ids, const std::uint32_t* targets) override {
    const std::size_t N = B_ * T_;
    check_token_ids(ids, N, config_, "training inputs");
    check_token_ids(targets, N, config_, "training targets");
    upload_ids(ids, targets, N);
    const cuda::TokenRows rows = cuda::token_rows(ids, N, config_.vocab_size);
    rows_.upload(rows.rows, stream_);
    offsets_.upload(rows.offsets, stream_);
    positions_.upload(rows.positions, stream_);
    ops_.bind_token_rows(rows_.get(), offsets_.get(), positions_.get(), rows.rows.size());
    timer_.begin(stream_, profiling_);
    MINITX_CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0, P_ * sizeof(float), stream_));
    timer_.mark("memset gradients");
    block_forward(ops_, acts_, ids_.get(), B_, T_);
    ops_.head_losses(logits_.get(), losses_.get(), acts_.lnf, targets_.get(), N, true);
    const std::size_t C = config_.n_embd, V = config_.vocab_size;
    const Param head = ops_.head_param();
    cuda::matmul_backward<T>(lt_, grads_view_.dlnf, ops_.grad(head), nullptr, ops_.matmul_scratch(), logits_.get(),
                             acts_.lnf, ops_.param(head), N, C, V, true, stream_);
    timer_.mark("matmul head backward");
    block_backward(ops_, acts_, grads_view_, ids_.get());
    cuda::grad_norm_squared(norm_sq_.get(), norm_partials_.get(), grads_.get(), P_, stream_);
    timer_.mark("gradient norm");
    // One wait per step, after everything is queued: the loss and the norm come back together.
    StepStats s;
    double norm_sq = 0.0;
    norm_sq_.download(&norm_sq, 1, stream_);
    s.norm = std::sqrt(norm_sq);
    losses_.download(host_losses_.data(), N, stream_);
    double sum = 0.0;  // in token order, in double, as the CPU
    for (std::size_t i = 0; i < N; ++i) sum += host_losses_[i];
    s.loss = sum / static_cast<double>(N);
    return s;
  }

  void update(const TrainConfig& tc, double lr, const StepStats&, std::size_t step) override {
    if (tc.grad_clip > 0) cuda::clip_grad_norm(grads_.get(), P_, norm_sq_.get(), tc.grad_clip, stream_);
    timer_.mark("clip");
    for (const AdamWSlice& a : adamw_slices(config_, tc, lr, step)) {
      const cuda::AdamWStep s{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.t};
      cuda::bf16* copy = nullptr;
      if constexpr (std::is_same_v<T, cuda::bf16>) copy = copy_.get() + a.offset;
      cuda::adamw_update(params_.get() + a.offset, copy, grads_.get() + a.offset, m_.get() + a.offset,
                         v_.get() + a.offset, a.count, s, stream_);
    }
    timer_.mark("adamw");
    timer_.end();
  }

  double evaluate(const std::vector<std::uint32_t>& val, std::size_t window, std::size_t batch,
                  std::size_t max_windows) override {
    MINITX_CHECK(window <= T_ && batch <= B_,
                 "cuda: evaluation windows ({} × {}) larger than the training batch ({} × {})", batch, window, B_, T_);
    const EvalResult r = evaluate_windows(
        val, window, batch, max_windows, config_.context,
        [&](float* losses, const std::uint32_t* inputs, const std::uint32_t* targets, std::size_t count,
            std::size_t len) {
          const std::size_t N = count * len;
          check_token_ids(inputs, N, config_, "evaluation inputs");
          check_token_ids(targets, N, config_, "evaluation targets");
          upload_ids(inputs, targets, N);
          // The training buffers hold a smaller pass with shared layers.
          BlockActivations<T> a;
          bind_activations(a, acts_storage_.get(), config_, count, len, false, ops_.attention_state(config_, count, len));
          block_forward(ops_, a, ids_.get(), count, len);
          ops_.head_losses(logits_.get(), losses_.get(), a.lnf, targets_.get(), N, false);
          losses_.download(losses, N, stream_);
        });
    return r.mean_loss();
  }

  TrainState state() const override {
    return {params_.download(stream_), m_.download(stream_), v_.download(stream_)};
  }
  void set_profiling(bool on) override {
    profiling_ = on;
    ops_.bind_timer(on ? &timer_ : nullptr);
    if (on) timer_.reset();
  }
  std::vector<OpTime> op_times() const override {
    std::vector<OpTime> out;
    for (const auto& [op, t] : timer_.totals()) out.push_back({op, t.ms, t.calls});
    return out;
  }
  std::string hardware() const override {
    int device = 0;
    cudaDeviceProp prop{};
    MINITX_CUDA_CHECK(cudaGetDevice(&device));
    MINITX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return prop.name;
  }
  std::vector<std::string> kernels() const override { return lt_.algorithms(); }
  void synchronize() override { MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  std::string device() const override { return "cuda"; }
  std::string precision() const override { return std::is_same_v<T, float> ? "fp32" : "bf16"; }

 private:
  void upload_ids(const std::uint32_t* ids, const std::uint32_t* targets, std::size_t N) {
    MINITX_CUDA_CHECK(cudaMemcpyAsync(ids_.get(), ids, N * sizeof(std::uint32_t), cudaMemcpyHostToDevice, stream_));
    MINITX_CUDA_CHECK(
        cudaMemcpyAsync(targets_.get(), targets, N * sizeof(std::uint32_t), cudaMemcpyHostToDevice, stream_));
  }
  ModelConfig config_;
  std::size_t B_, T_, P_;
  cuda::Stream stream_;
  cuda::LtMatmul lt_;
  cuda::CudaBlockOps<T> ops_;
  cuda::DeviceBuffer<float> params_, grads_, m_, v_;
  cuda::DeviceBuffer<T> copy_;
  std::size_t acts_bytes_ = 0;
  cuda::DeviceBuffer<unsigned char> acts_storage_, grad_storage_;
  BlockActivations<T> acts_;
  BlockGradients<T> grads_view_;
  cuda::DeviceBuffer<T> logits_;
  cuda::DeviceBuffer<float> losses_;
  cuda::DeviceBuffer<std::uint32_t> ids_, targets_;
  cuda::DeviceBuffer<std::int32_t> rows_, offsets_, positions_;
  cuda::DeviceBuffer<double> norm_sq_, norm_partials_;
  std::vector<float> host_losses_;
  cuda::OpTimer timer_;
  bool profiling_ = false;
};

}  // namespace

namespace {

void check_cuda_device(const std::string& precision) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    fail("train: --device cuda, but no CUDA device is visible on this machine");
  if (precision != "bf16" && precision != "fp32") fail("train: precision '{}' is not one of bf16, fp32", precision);
}

}  // namespace

double cuda_engine_scratch(const ModelConfig& config, std::size_t B, std::size_t T) {
  // cudaMalloc rounds each of the engine's twenty-odd buffers up to its 2 MiB pages.
  constexpr double kRounding = 24.0 * (2 << 20);
  return static_cast<double>(cuda::CudaBlockOps<float>::scratch_bytes(config, B, T)) +
         static_cast<double>(cuda::kLtWorkspaceBytes) +
         static_cast<double>((cuda::grad_norm_scratch_doubles() + 1) * sizeof(double)) + kRounding;
}

void check_cuda_memory(const ModelConfig& config, const std::string& precision, std::size_t B, std::size_t T) {
  check_cuda_device(precision);
  int device = 0;
  MINITX_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  MINITX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::size_t free = 0, total = 0;  // after this process's context, which the call creates
  MINITX_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const std::string gpu = fmt::format("GPU {} ({})", device, prop.name);
  // First without the scratch: its sizes are products of the shapes in 64 bits, which a config
  // far too big for any GPU could overflow; the doubles of the rest cannot.
  check_gpu_memory(cuda_training_memory(config, precision, B, T, 0.0), free, total, gpu, config, precision, B, T);
  check_gpu_memory(cuda_training_memory(config, precision, B, T, cuda_engine_scratch(config, B, T)), free, total, gpu,
                   config, precision, B, T);
}

std::unique_ptr<TrainEngine> make_cuda_engine(const ModelConfig& config, const std::string& precision, std::size_t B,
                                              std::size_t T, TrainState state) {
  check_cuda_memory(config, precision, B, T);
  if (precision == "bf16") return std::make_unique<CudaEngine<cuda::bf16>>(config, B, T, std::move(state));
  return std::make_unique<CudaEngine<float>>(config, B, T, std::move(state));
}
#else
double cuda_engine_scratch(const ModelConfig&, std::size_t, std::size_t) { return 0.0; }
void check_cuda_memory(const ModelConfig&, const std::string&, std::size_t, std::size_t) {}

std::unique_ptr<TrainEngine> make_cuda_engine(const ModelConfig&, const std::string&, std::size_t, std::size_t,
                                              TrainState) {
  fail("train: --device cuda, but this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}
#endif

}  // namespace minitx
