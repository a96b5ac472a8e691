// The GPU's op table for block.h (see there for the contract), on activations of type T: float
// (the checking mode: fp32 everywhere, plain-FMA attention) or bf16 (mixed precision: bf16
// activations and weights, fp32 accumulation, the flash attention kernel). Weights are read from a
// T copy of the parameters in the tensor table's layout; gradients accumulate in fp32 in the same
// layout. One stream, so the order of every kernel — and so every bit — is fixed by the program.
// A CUDA build only.
#pragma once
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <type_traits>
#include <vector>

#include "minitx/backend/cuda/attention.h"
#include "minitx/backend/cuda/buffer.h"
#include "minitx/backend/cuda/ops.h"
#include "op_timer.h"
#include "minitx/core/error.h"
#include "minitx/model/block.h"
#include "minitx/model/params.h"
#include "minitx/model/train_engine.h"
#include "minitx/sparse/layout.h"

namespace minitx::cuda {

inline Activation cuda_activation(ModelConfig::Activation a) {
  switch (a) {
    case ModelConfig::Activation::gelu_tanh: return Activation::gelu_tanh;
    case ModelConfig::Activation::gelu_erf: return Activation::gelu_erf;
    case ModelConfig::Activation::relu: break;
  }
  return Activation::relu;
}

// A stream of its own. Blocking by default: any copy a library makes on the legacy default stream
// is ordered with it; cudaStreamNonBlocking for work that must not wait on that stream.
class Stream {
 public:
  explicit Stream(unsigned flags = cudaStreamDefault) { MINITX_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, flags)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  operator cudaStream_t() const { return s_; }  // NOLINT(google-explicit-constructor): it is the stream

 private:
  cudaStream_t s_ = nullptr;
};

// The tensor table's fp32 values as an op table of type T reads them: fp32 as they are, bf16
// rounded on the device (convert_from_fp32, as the training engine rounds its masters).
template <class T>
DeviceBuffer<T> upload_parameters(const std::vector<float>& host, cudaStream_t stream) {
  DeviceBuffer<T> out(host.size());
  if constexpr (std::is_same_v<T, float>) {
    out.upload(host, stream);
  } else {
    DeviceBuffer<float> staging(host.size());
    staging.upload(host, stream);
    convert_from_fp32<T>(out.get(), staging.get(), host.size(), stream);
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream));  // before the staging buffer is freed
  }
  return out;
}

// Dense causal attention is a layout like any other: the kernels walk its blocks, at this block
// size; a sparse pattern brings its own.
inline constexpr std::int32_t kAttentionBlock = 128;

template <class T>
class CudaBlockOps {
 public:
  using Act = T;

  // Scratch for passes of up to max_rows = B·T rows and V output columns; an op table for the
  // forward only (inference) allocates none of the backward's.
  enum class Passes { forward, forward_backward };
  CudaBlockOps(const ModelConfig& m, LtMatmul& lt, cudaStream_t stream, std::size_t max_B, std::size_t max_T,
               Passes passes = Passes::forward_backward)
      : m_(m), lt_(lt), stream_(stream), layout_(param_layout(m)) {
    for (const ParamTensor& t : param_tensors(m)) slice_[static_cast<std::size_t>(t.kind)] = t.slice();
    const std::size_t N = max_B * max_T, C = m.n_embd;
    if (passes == Passes::forward_backward) {
      mm_scratch_ = DeviceBuffer<float>(matmul_scratch_floats(m, N));
      ln_scratch_ = DeviceBuffer<float>(layernorm_backward_scratch_floats(N, C));
    }
    if constexpr (std::is_same_v<T, bf16>)
      MINITX_CHECK(bf16_attention_fits(m),
                   "cuda bf16: the attention kernel takes head sizes 64 and 128; this model's is {} (n_embd {} / n_head {})",
                   C / m.n_head, C, m.n_head);
    if (passes == Passes::forward_backward)
      attention_scratch_ = DeviceBuffer<float>(attention_scratch_floats(max_B, max_T));
  }

  // The parameters to read (T copy) and the fp32 gradients to accumulate into (may be null for
  // a forward only), both in the tensor table's layout.
  void bind(const T* params, float* grads) {
    params_ = params;
    grads_ = grads;
  }
  // The token rows of the current batch (token_rows() of its ids, uploaded): for embed_backward.
  void bind_token_rows(const std::int32_t* rows, const std::int32_t* offsets, const std::int32_t* positions,
                       std::size_t num_rows) {
    rows_ = rows;
    offsets_ = offsets;
    positions_ = positions;
    num_rows_ = num_rows;
  }

  // Ops mark their end on this timer, when given (op_timer.h).
  void bind_timer(OpTimer* timer) { timer_ = timer; }
  void mark(const char* name) {
    if (timer_ != nullptr) timer_->mark(name);
  }

  const ModelConfig& config() const { return m_; }
  static std::size_t attention_state(const ModelConfig& m, std::size_t B, std::size_t time) {
    return B * m.n_head * time;  // log-sum-exp per row
  }
  // The largest scratch any of the block's products or the head's needs, for N rows.
  static std::size_t matmul_scratch_floats(const ModelConfig& m, std::size_t N) {
    std::size_t scratch = matmul_backward_scratch_floats(N, m.n_embd, m.vocab_size);
    for (const auto k : {BlockLinear::qkv, BlockLinear::attproj, BlockLinear::fc, BlockLinear::fcproj}) {
      const LinearTensors t = linear_tensors(k, m);
      scratch = std::max(scratch, matmul_backward_scratch_floats(N, t.in, t.out));
    }
    return scratch;
  }
  // Device bytes the constructor allocates: the three scratch buffers above, for the memory
  // estimate that comes before any allocation (cuda_training_memory).
  static std::size_t scratch_bytes(const ModelConfig& m, std::size_t max_B, std::size_t max_T) {
    const std::size_t N = max_B * max_T;
    std::size_t attention = attention_state(m, max_B, max_T);
    if constexpr (std::is_same_v<T, bf16>)
      if (bf16_attention_fits(m))  // the constructor reports a model that does not
        attention = attention_backward_scratch_floats(
            sparse::build_layout(m.attention, static_cast<std::int32_t>(max_T), static_cast<std::int32_t>(m.n_head),
                                 kAttentionBlock),
            attention_shape(m, max_B, max_T));
    return (matmul_scratch_floats(m, N) + layernorm_backward_scratch_floats(N, m.n_embd) + attention) * sizeof(float);
  }
  cudaStream_t stream() const { return stream_; }
  LtMatmul& lt() const { return lt_; }
  float* matmul_scratch() const { return mm_scratch_.get(); }

  const T* param(Param k, std::size_t l = 0) const { return at(params_, k, l); }
  float* grad(Param k, std::size_t l = 0) const { return at(grads_, k, l); }

  void embed(T* out, const std::uint32_t* ids, std::size_t B, std::size_t T_) {
    const bool learned = m_.position == ModelConfig::Position::learned;
    encoder_forward<T>(out, ids, param(Param::wte), learned ? param(Param::wpe) : nullptr, B, T_, m_.n_embd,
                       m_.position_offset, stream_);
    mark("embed");
  }
  void layernorm(T* out, float* mean, float* rstd, const T* inp, BlockNorm k, std::size_t l, std::size_t N) {
    layernorm_forward<T>(out, mean, rstd, inp, param(norm_weight(k), l), param(norm_bias(k), l), N, m_.n_embd,
                         static_cast<float>(m_.ln_eps), stream_);
    mark("layernorm");
  }
  void linear(T* out, const T* inp, BlockLinear k, std::size_t l, std::size_t N) {
    const LinearTensors t = linear_tensors(k, m_);
    matmul_forward<T>(lt_, out, inp, param(t.weight, l), param(t.bias, l), N, t.in, t.out, stream_);
    mark(linear_name(k, false));
  }
  void rotary(T* qkv, std::size_t B, std::size_t T_) {
    rotary_forward<T>(qkv, qkv, B, T_, m_.n_embd, m_.n_head, m_.rotary_dims(), static_cast<float>(m_.rotary_base), 0,
                      stream_);
    mark("rotary");
  }
  void attention(T* out, float* lse, const T* qkv, std::size_t B, std::size_t T_) {
    const std::size_t C = m_.n_embd;
    const AttentionShape s = shape(B, T_);
    if constexpr (std::is_same_v<T, bf16>)
      attention_forward(bits(out), static_cast<std::int64_t>(C), lse, qkv_view(bits(qkv), static_cast<std::int64_t>(C)),
                        layout(T_), s, stream_);
    else
      attention_forward_f32(out, static_cast<std::int64_t>(C), lse, qkv_view(qkv, static_cast<std::int64_t>(C)),
                            layout(T_), s, stream_);
    mark("attention");
  }
  void add(T* out, const T* a, const T* b, std::size_t n) {
    residual_forward<T>(out, a, b, n, stream_);
    mark("residual");
  }
  void copy(T* dst, const T* src, std::size_t n) {
    MINITX_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
    mark("copy");
  }
  void zero(T* x, std::size_t n) {
    MINITX_CUDA_CHECK(cudaMemsetAsync(x, 0, n * sizeof(T), stream_));
    mark("memset");
  }
  void activation(T* out, const T* inp, std::size_t n) {
    activation_forward<T>(out, inp, n, cuda_activation(m_.activation), stream_);
    mark("activation");
  }

  // The head's logits of x (N rows, the final norm's output) into `logits` (N, V), and their
  // cross-entropy against `targets` into `losses`; with_grad then overwrites the logits with the
  // mean loss's gradient, for the backward.
  void head_losses(T* logits, float* losses, const T* x, const std::uint32_t* targets, std::size_t N, bool with_grad) {
    const std::size_t C = m_.n_embd, V = m_.vocab_size;
    matmul_forward<T>(lt_, logits, x, param(head_param()), nullptr, N, C, V, stream_);
    mark("matmul head");
    crossentropy_forward_backward<T>(losses, with_grad ? logits : nullptr, logits, targets, N, V, V,
                                     1.0f / static_cast<float>(N), stream_);
    mark("crossentropy");
  }
  Param head_param() const { return m_.tied_head ? Param::wte : Param::head; }

  void linear_backward(T* dinp, const T* inp, const T* dout, BlockLinear k, std::size_t l, std::size_t N) {
    const LinearTensors t = linear_tensors(k, m_);
    matmul_backward<T>(lt_, dinp, grad(t.weight, l), grad(t.bias, l), mm_scratch_.get(), dout, inp,
                       param(t.weight, l), N, t.in, t.out, true, stream_);
    mark(linear_name(k, true));
  }
  void layernorm_backward(T* dinp, const T* inp, const T* dout, const float* mean, const float* rstd, BlockNorm k,
                          std::size_t l, std::size_t N) {
    cuda::layernorm_backward<T>(dinp, grad(norm_weight(k), l), grad(norm_bias(k), l), ln_scratch_.get(), dout, inp,
                                param(norm_weight(k), l), mean, rstd, N, m_.n_embd, stream_);
    mark("layernorm backward");
  }
  void activation_backward(T* dinp, const T* inp, const T* dout, std::size_t n) {
    cuda::activation_backward<T>(dinp, inp, dout, n, cuda_activation(m_.activation), stream_, false);
    mark("activation backward");
  }
  void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const float* lse, std::size_t B,
                          std::size_t T_) {
    const auto C = static_cast<std::int64_t>(m_.n_embd);
    const AttentionShape s = shape(B, T_);
    // Grown only by a call needing more than max_B × max_T's plan (rare: a shorter T cuts fewer
    // columns; a smaller B can cut more a head, for fewer heads).
    const std::size_t need = attention_scratch_floats(B, T_);
    if (attention_scratch_.size() < need) attention_scratch_ = DeviceBuffer<float>(need);
    if constexpr (std::is_same_v<T, bf16>)
      cuda::attention_backward(bits(dqkv), bits(dqkv) + C, bits(dqkv) + 2 * C, 3 * C, attention_scratch_.get(),
                               attention_scratch_.size(), bits(dout), C, bits(out), C, lse, qkv_view(bits(qkv), C),
                               layout(T_), s, stream_);
    else
      attention_backward_f32(dqkv, dqkv + C, dqkv + 2 * C, 3 * C, attention_scratch_.get(), dout, C, out, C, lse,
                             qkv_view(qkv, C), layout(T_), s, stream_);
    mark("attention backward");
  }
  void rotary_backward(T* dqkv, std::size_t B, std::size_t T_) {
    cuda::rotary_backward<T>(dqkv, dqkv, B, T_, m_.n_embd, m_.n_head, m_.rotary_dims(),
                             static_cast<float>(m_.rotary_base), 0, stream_);
    mark("rotary backward");
  }
  void embed_backward(const T* dout, const std::uint32_t* /*ids: grouped in the token rows*/, std::size_t B,
                      std::size_t T_) {
    MINITX_CHECK(rows_ != nullptr, "cuda: embed_backward without the batch's token rows");
    encoder_backward<T>(grad(Param::wte), grad(Param::wpe), dout, rows_, offsets_, positions_, num_rows_, B, T_,
                        m_.n_embd, m_.position_offset, stream_);
    mark("embed backward");
  }

 private:
  static const char* linear_name(BlockLinear k, bool backward) {
    static const char* const names[2][4] = {{"matmul qkv", "matmul attproj", "matmul fc", "matmul fcproj"},
                                            {"matmul qkv backward", "matmul attproj backward", "matmul fc backward",
                                             "matmul fcproj backward"}};
    return names[backward ? 1 : 0][static_cast<int>(k)];
  }
  template <class X>
  X* at(X* base, Param k, std::size_t l) const {
    const auto i = static_cast<std::size_t>(k);
    return base == nullptr || !layout_.present[i] ? nullptr : base + layout_.offset[i] + l * slice_[i];
  }
  static bf16_bits* bits(bf16* p) { return reinterpret_cast<bf16_bits*>(p); }
  static const bf16_bits* bits(const bf16* p) { return reinterpret_cast<const bf16_bits*>(p); }
  static AttentionShape attention_shape(const ModelConfig& m, std::size_t B, std::size_t T_) {
    return {static_cast<std::int32_t>(B), static_cast<std::int32_t>(T_), static_cast<std::int32_t>(m.n_head),
            static_cast<std::int32_t>(m.n_embd / m.n_head)};
  }
  AttentionShape shape(std::size_t B, std::size_t T_) const { return attention_shape(m_, B, T_); }
  // The backward's scratch: rowsum(dO ∘ O), and for bf16 the split key columns' partials.
  std::size_t attention_scratch_floats(std::size_t B, std::size_t T_) {
    if constexpr (std::is_same_v<T, bf16>)
      return attention_backward_scratch_floats(layout(T_), shape(B, T_));
    else
      return attention_state(m_, B, T_);
  }
  const DeviceLayout& layout(std::size_t T_) {
    std::unique_ptr<DeviceLayout>& l = layouts_[T_];
    if (!l)
      l = std::make_unique<DeviceLayout>(sparse::build_layout(m_.attention, static_cast<std::int32_t>(T_),
                                                              static_cast<std::int32_t>(m_.n_head), kAttentionBlock));
    return *l;
  }

  const ModelConfig m_;
  LtMatmul& lt_;
  cudaStream_t stream_;
  ParamLayout layout_;
  std::size_t slice_[kParamKinds] = {};
  const T* params_ = nullptr;
  float* grads_ = nullptr;
  const std::int32_t *rows_ = nullptr, *offsets_ = nullptr, *positions_ = nullptr;
  std::size_t num_rows_ = 0;
  DeviceBuffer<float> mm_scratch_, ln_scratch_, attention_scratch_;
  std::map<std::size_t, std::unique_ptr<DeviceLayout>> layouts_;
  OpTimer* timer_ = nullptr;
};

}  // namespace minitx::cuda
