#include "minitx/infer/cuda_decoder.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "minitx/core/error.h"

#if MINITX_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "../backend/cuda/block_ops.h"
#include "../backend/cuda/op_timer.h"
#include "minitx/backend/cuda/decode.h"
#include "minitx/backend/cuda/sampling.h"
#include "minitx/core/build_info.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#include "minitx/quant/block.h"
#include "minitx/quant/format.h"
#endif

namespace minitx {

GpuPrecision parse_gpu_precision(const std::string& text, const std::string& what) {
  if (text == "bf16") return GpuPrecision::bf16;
  if (text == "fp32") return GpuPrecision::fp32;
  fail("{}: expected bf16 or fp32, got '{}'", what, text);
}

const char* to_string(GpuPrecision precision) { return precision == GpuPrecision::bf16 ? "bf16" : "fp32"; }

struct CudaDecoder::Impl {
  virtual ~Impl() = default;
  virtual const std::vector<float>& prefill(const std::uint32_t* ids, std::size_t n) = 0;
  virtual const std::vector<float>& step(std::uint32_t id) = 0;
  virtual std::uint32_t prefill_sample(const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                                       std::uint64_t draw) = 0;
  virtual std::vector<std::uint32_t> step_sample(std::size_t count) = 0;
  virtual void use_graphs(bool on) = 0;
  virtual void use_pdl(bool on) = 0;
  virtual std::vector<CudaDecoder::KernelTime> profile(std::size_t count) = 0;
  virtual std::size_t length() const = 0;
  virtual std::size_t kv_cache_bytes() const = 0;
  virtual std::size_t step_weight_bytes() const = 0;
  virtual std::string weight_format() const = 0;
  virtual const ModelConfig& config() const = 0;
};

#if MINITX_CUDA
namespace {

using cuda::DeviceBuffer;
using cuda::DeviceMatrix;
using cuda::WeightFormat;

constexpr std::uint32_t kChunk = cuda::kAttentionChunk;  // positions per attention split

// The prefill's op table: CudaBlockOps, plus the hook by which block_forward fills the cache.
template <class T>
class PrefillOps : public cuda::CudaBlockOps<T> {
 public:
  PrefillOps(const ModelConfig& m, cuda::LtMatmul& lt, cudaStream_t stream, T* k, T* v, std::size_t capacity)
      : cuda::CudaBlockOps<T>(m, lt, stream, 1, m.context, cuda::CudaBlockOps<T>::Passes::forward),
        k_(k),
        v_(v),
        capacity_(capacity) {}
  void store_kv(std::size_t layer, const T* qkv, std::size_t rows) {
    const ModelConfig& m = this->config();
    const std::size_t stride = m.n_embd * capacity_;
    cuda::store_kv<T>(k_ + layer * stride, v_ + layer * stride, qkv, rows, m.n_embd, m.n_head, capacity_,
                      this->stream());
  }

 private:
  T *k_, *v_;
  std::size_t capacity_;
};

// Bytes laid out in one device allocation, 256-byte aligned pieces.
struct Arena {
  std::size_t used = 0;
  std::size_t take(std::size_t bytes) {
    const std::size_t at = used;
    used += (bytes + 255) / 256 * 256;
    return at;
  }
};

bool quantized(quant::Format f) { return f == quant::Format::q8_0 || f == quant::Format::q4_0; }

// Splits a quantized matrix's blocks into its integers and its scales (decode.h's layout).
void repack(const Linear& w, unsigned char* qs, std::uint16_t* scales) {
  const std::size_t blocks = w.rows * w.cols / quant::QK;
  if (w.format == quant::Format::q8_0) {
    const auto* b = reinterpret_cast<const quant::block_q8_0*>(w.data);
    for (std::size_t i = 0; i < blocks; ++i) {
      std::memcpy(qs + i * quant::QK, b[i].qs, quant::QK);
      scales[i] = b[i].d;
    }
  } else {
    const auto* b = reinterpret_cast<const quant::block_q4_0*>(w.data);
    for (std::size_t i = 0; i < blocks; ++i) {
      std::memcpy(qs + i * quant::QK / 2, b[i].qs, quant::QK / 2);
      scales[i] = b[i].d;
    }
  }
}

std::size_t packed_bytes(const Linear& w) {
  return w.format == quant::Format::q8_0 ? w.rows * w.cols : w.rows * w.cols / 2;
}

std::string gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / double(1 << 30)); }

template <class T>
class DecoderImpl final : public CudaDecoder::Impl {
 public:
  DecoderImpl(const GptWeights& w, GpuPrecision precision)
      : m_(w.config), precision_(precision), layout_(param_layout(w.config)) {
    const ModelConfig& m = m_;
    MINITX_CHECK(m.attention.kind == sparse::AttentionPattern::Kind::dense,
                 "generate --device cuda: the model's attention pattern is {}; the GPU decodes dense causal "
                 "attention only for now (use --device cpu for block-sparse patterns)",
                 sparse::summarize_pattern(m.attention));
    const std::size_t C = m.n_embd, L = m.n_layer, cap = m.context, D = m.head_size();
    splits_ = static_cast<std::uint32_t>((cap + kChunk - 1) / kChunk);

    // What the device must hold, checked against what it has before anything is allocated.
    const std::size_t P = layout_.total;
    std::size_t vector_floats = 0, quant_bytes = 0;
    GptWeights view = w;
    for (const ParamTensor& t : param_tensors(m))
      for (std::size_t l = 0; l < (t.per_layer ? L : 1); ++l) {
        const WeightField f = weight_field(view, t.kind, l);
        if (f.vector != nullptr) vector_floats += (t.slice() + 63) / 64 * 64;
        else if (quantized(f.matrix->format))
          quant_bytes += (packed_bytes(*f.matrix) + 255) / 256 * 256 + (f.matrix->rows * f.matrix->cols / 16 + 255) / 256 * 256;
      }
    const std::size_t kv = 2 * L * C * cap * sizeof(T);
    BlockActivations<T> probe;
    const std::size_t acts = bind_activations(probe, nullptr, m, 1, cap, false, 1 * m.n_head * cap);
    const std::size_t scratch = (3 * C + 2 * C + m.ffn_width() + m.vocab_size + C +
                                 cuda::attention_partials_floats(m.n_head, splits_, D)) * sizeof(float);
    const double need = double(P) * sizeof(T) + double(vector_floats) * 4 + double(quant_bytes) + double(kv) +
                        double(acts) + double(scratch) + double(cuda::kLtWorkspaceBytes);
    std::size_t free_bytes = 0, total_bytes = 0;
    MINITX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (need > 0.95 * double(free_bytes))
      fail("generate --device cuda: the model needs {} of device memory (weights {}, KV cache {} for {} positions, "
           "prompt activations {}), but {} of {} is free",
           gib(need), gib(double(P) * sizeof(T) + double(quant_bytes)), gib(double(kv)), cap, gib(double(acts)),
           gib(double(free_bytes)), gib(double(total_bytes)));

    upload_weights(w, vector_floats, quant_bytes);
    k_ = DeviceBuffer<T>(L * C * cap);
    v_ = DeviceBuffer<T>(L * C * cap);
    qkv_ = DeviceBuffer<float>(3 * C);
    x_ = DeviceBuffer<float>(C);
    x2_ = DeviceBuffer<float>(C);
    h_ = DeviceBuffer<float>(m.ffn_width());
    logits_ = DeviceBuffer<float>(m.vocab_size);
    partials_ = DeviceBuffer<float>(cuda::attention_partials_floats(m.n_head, splits_, D));
    if (m.position == ModelConfig::Position::rotary) {
      rope_ = DeviceBuffer<float2>(cap * (m.rotary_dims() / 2));
      cuda::rope_table(rope_.get(), cap, m.rotary_dims(), std::log2(m.rotary_base), stream_);
    }
    cursor_ = DeviceBuffer<cuda::DecodeCursor>(1);
    next_ = DeviceBuffer<std::uint32_t>(1);
    history_ = DeviceBuffer<std::uint32_t>(cap);
    ids_ = DeviceBuffer<std::uint32_t>(cap);
    ops_ = std::make_unique<PrefillOps<T>>(m, lt_, stream_, k_.get(), v_.get(), cap);
    ops_->bind(params_.get(), nullptr);
    host_logits_.resize(m.vocab_size);
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~DecoderImpl() override {
    drop_graphs();
    cudaStreamSynchronize(stream_);
  }

  const std::vector<float>& prefill(const std::uint32_t* ids, std::size_t n) override {
    run_prefill(ids, n, 0);
    return download_logits();
  }

  const std::vector<float>& step(std::uint32_t id) override {
    check_room(1);
    check_token_ids(&id, 1, m_, "generate");
    const cuda::DecodeCursor c{id, static_cast<std::uint32_t>(length_), draw_};
    cursor_.upload(&c, 1, stream_);
    if (graphs_) {
      if (body_graph_ == nullptr) body_graph_ = capture([this] { launch_body(); });
      MINITX_CUDA_CHECK(cudaGraphLaunch(body_graph_, stream_));
    } else {
      launch_body();
    }
    ++length_;
    return download_logits();
  }

  std::uint32_t prefill_sample(const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                               std::uint64_t draw) override {
    set_sampling(sampling);
    run_prefill(ids, n, draw);
    launch_sample(0);
    std::uint32_t token = 0;
    next_.download(&token, 1, stream_);
    ++draw_;
    return token;
  }

  std::vector<std::uint32_t> step_sample(std::size_t count) override {
    MINITX_CHECK(sampler_ready_, "generate: step_sample before prefill_sample");
    check_room(count);
    const std::uint64_t first = draw_;
    for (std::size_t i = 0; i < count; ++i) {
      if (graphs_) {
        if (sample_graph_ == nullptr) sample_graph_ = capture([this] {
            launch_body();
            launch_sample(1);
          });
        MINITX_CUDA_CHECK(cudaGraphLaunch(sample_graph_, stream_));
      } else {
        launch_body();
        launch_sample(1);
      }
    }
    length_ += count;
    draw_ += count;
    // The ring of sampled tokens holds the last `capacity` draws (count ≤ capacity, as each
    // token took a position); copy out the newest, in at most two pieces.
    std::vector<std::uint32_t> tokens(count);
    const std::size_t ring = history_.size(), at = first % ring, head = std::min(count, ring - at);
    MINITX_CUDA_CHECK(cudaMemcpyAsync(tokens.data(), history_.get() + at, head * sizeof(std::uint32_t),
                                      cudaMemcpyDeviceToHost, stream_));
    if (head < count)
      MINITX_CUDA_CHECK(cudaMemcpyAsync(tokens.data() + head, history_.get(), (count - head) * sizeof(std::uint32_t),
                                        cudaMemcpyDeviceToHost, stream_));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return tokens;
  }

  void use_graphs(bool on) override { graphs_ = on; }
  void use_pdl(bool on) override {
    if (on != pdl_) drop_graphs();
    pdl_ = on;
  }

  std::vector<CudaDecoder::KernelTime> profile(std::size_t count) override {
    MINITX_CHECK(sampler_ready_, "generate: profile before prefill_sample");
    check_room(count);
    cuda::OpTimer timer;
    timer_ = &timer;
    profile_bytes_.clear();
    for (std::size_t i = 0; i < count; ++i) {
      timer.begin(stream_, true);
      launch_body();
      launch_sample(1);
      timer.end();
    }
    timer_ = nullptr;
    length_ += count;
    draw_ += count;
    std::vector<CudaDecoder::KernelTime> out;
    for (const auto& [name, total] : timer.totals())
      out.push_back({name, total.ms * 1e3 / double(count), total.calls / count, profile_bytes_[name] / count});
    return out;
  }
  std::size_t length() const override { return length_; }
  std::size_t kv_cache_bytes() const override { return 2 * m_.n_layer * m_.n_embd * m_.context * sizeof(T); }
  std::size_t step_weight_bytes() const override { return step_bytes_; }
  std::string weight_format() const override { return format_; }
  const ModelConfig& config() const override { return m_; }

 private:
  // ---- weights ----
  void upload_weights(const GptWeights& w, std::size_t vector_floats, std::size_t quant_bytes) {
    const ModelConfig& m = m_;
    // The dense copy in the table's layout: what the prefill multiplies, and the step's
    // unquantized matrices.
    params_ = cuda::upload_parameters<T>(dense_parameters(w), stream_);
    std::vector<float> vectors(vector_floats);
    std::vector<unsigned char> packed(quant_bytes);
    std::size_t vec_at = 0;
    Arena arena;
    vectors_ = DeviceBuffer<float>(vector_floats);
    quant_ = DeviceBuffer<unsigned char>(quant_bytes);
    std::set<std::string> formats;
    GptWeights view = w;
    layers_.assign(m.n_layer, {});
    for (const ParamTensor& t : param_tensors(m))
      for (std::size_t l = 0; l < (t.per_layer ? m.n_layer : 1); ++l) {
        const WeightField f = weight_field(view, t.kind, l);
        if (f.vector != nullptr) {
          std::copy_n(*f.vector, t.slice(), vectors.data() + vec_at);
          vector_slot(t.kind, l) = vectors_.get() + vec_at;
          vec_at += (t.slice() + 63) / 64 * 64;
          continue;
        }
        const Linear& src = *f.matrix;
        DeviceMatrix d;
        d.rows = static_cast<std::uint32_t>(src.rows);
        d.cols = static_cast<std::uint32_t>(src.cols);
        if (quantized(src.format)) {
          d.format = src.format == quant::Format::q8_0 ? WeightFormat::q8_0 : WeightFormat::q4_0;
          const std::size_t qs_at = arena.take(packed_bytes(src));
          const std::size_t sc_at = arena.take(src.rows * src.cols / quant::QK * sizeof(std::uint16_t));
          repack(src, packed.data() + qs_at, reinterpret_cast<std::uint16_t*>(packed.data() + sc_at));
          d.data = quant_.get() + qs_at;
          d.scales = reinterpret_cast<const std::uint16_t*>(quant_.get() + sc_at);
        } else {
          d.format = std::is_same_v<T, float> ? WeightFormat::float32 : WeightFormat::bfloat16;
          const std::size_t at = layout_.offset[static_cast<std::size_t>(t.kind)] + l * t.slice();
          d.data = params_.get() + at;
          MINITX_CHECK(reinterpret_cast<std::uintptr_t>(d.data) % 16 == 0,
                       "generate --device cuda: tensor {} is not 16-byte aligned in the parameter table",
                       tensor_name(t, l));
        }
        matrix_slot(t.kind, l) = d;
        // A step reads every layer matrix and the head whole; of the embeddings, one row each.
        if (t.per_layer || t.kind == Param::head || (t.kind == Param::wte && m.tied_head)) {
          formats.insert(std::string(quant::format_name(src.format)));
          step_bytes_ += quantized(src.format) ? src.rows * quant::row_bytes(src.format, src.cols)
                                               : src.rows * src.cols * sizeof(T);
        }
      }
    if (m.tied_head) head_ = wte_;
    step_bytes_ += vector_floats * sizeof(float);
    vectors_.upload(vectors, stream_);
    quant_.upload(packed, stream_);
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    // "bf16"/"fp32" for a dense model, else the quantized formats of its matrices.
    formats.erase("f32");
    format_ = formats.empty() ? to_string(precision_) : fmt::format("{}", fmt::join(formats, "+"));
  }

  struct Layer {
    DeviceMatrix qkv, attproj, fc, fcproj;
    const float *ln1w = nullptr, *ln1b = nullptr, *qkvb = nullptr, *attprojb = nullptr, *ln2w = nullptr,
                *ln2b = nullptr, *fcb = nullptr, *fcprojb = nullptr;
  };
  DeviceMatrix& matrix_slot(Param kind, std::size_t l) {
    switch (kind) {
      case Param::wte: return wte_;
      case Param::wpe: return wpe_;
      case Param::qkvw: return layers_[l].qkv;
      case Param::attprojw: return layers_[l].attproj;
      case Param::fcw: return layers_[l].fc;
      case Param::fcprojw: return layers_[l].fcproj;
      default: return head_;
    }
  }
  const float*& vector_slot(Param kind, std::size_t l) {
    switch (kind) {
      case Param::ln1w: return layers_[l].ln1w;
      case Param::ln1b: return layers_[l].ln1b;
      case Param::qkvb: return layers_[l].qkvb;
      case Param::attprojb: return layers_[l].attprojb;
      case Param::ln2w: return layers_[l].ln2w;
      case Param::ln2b: return layers_[l].ln2b;
      case Param::fcb: return layers_[l].fcb;
      case Param::fcprojb: return layers_[l].fcprojb;
      case Param::lnfw: return lnfw_;
      default: return lnfb_;
    }
  }

  // ---- the step ----
  cuda::AttentionPartials partials() const {
    const std::size_t H = m_.n_head, S = splits_, D = m_.head_size();
    float* base = partials_.get();
    return {base, base + H * S, base + 2 * H * S, static_cast<std::uint32_t>(H), static_cast<std::uint32_t>(D), splits_,
            kChunk};
  }

  void launch_body() {
    const ModelConfig& m = m_;
    const float eps = static_cast<float>(m.ln_eps);
    const bool rotary = m.position == ModelConfig::Position::rotary;
    for (std::size_t l = 0; l < m.n_layer; ++l) {
      const Layer& y = layers_[l];
      cuda::MatvecParams qkv;
      qkv.w = y.qkv;
      qkv.out = qkv_.get();
      qkv.bias = y.qkvb;
      qkv.input = l == 0 ? cuda::MatvecInput::embed_norm : cuda::MatvecInput::norm;
      qkv.in = x_.get();
      qkv.norm_w = y.ln1w;
      qkv.norm_b = y.ln1b;
      qkv.eps = eps;
      qkv.wte = wte_;
      qkv.wpe = rotary ? DeviceMatrix{} : wpe_;
      qkv.pos_offset = static_cast<std::uint32_t>(m.position_offset);
      qkv.embed_out = x_.get();
      qkv.cursor = cursor_.get();
      qkv.pdl = pdl_;
      matvec(qkv, "norm+qkv");

      const std::size_t stride = m.n_embd * m.context;
      cuda::DecodeAttention<T> att{qkv_.get(), k_.get() + l * stride, v_.get() + l * stride,
                                   static_cast<std::uint32_t>(m.context),
                                   static_cast<std::uint32_t>(rotary ? m.rotary_dims() : 0), rope_.get(),
                                   partials(), cursor_.get(), pdl_};
      cuda::decode_attention<T>(att, stream_);
      mark("attention", 0);

      cuda::MatvecParams proj;
      proj.w = y.attproj;
      proj.out = x2_.get();
      proj.bias = y.attprojb;
      proj.residual = x_.get();
      proj.input = cuda::MatvecInput::attention;
      proj.partials = partials();
      proj.cursor = cursor_.get();
      proj.pdl = pdl_;
      matvec(proj, "combine+attproj");

      // A parallel residual (GPT-NeoX) feeds the MLP the layer's input, not input + attention.
      cuda::MatvecParams fc;
      fc.w = y.fc;
      fc.out = h_.get();
      fc.bias = y.fcb;
      fc.has_act = true;
      fc.act = cuda::cuda_activation(m.activation);
      fc.input = cuda::MatvecInput::norm;
      fc.in = m.parallel_residual ? x_.get() : x2_.get();
      fc.norm_w = y.ln2w;
      fc.norm_b = y.ln2b;
      fc.eps = eps;
      fc.pdl = pdl_;
      matvec(fc, "norm+fc");

      cuda::MatvecParams down;
      down.w = y.fcproj;
      down.out = x_.get();
      down.bias = y.fcprojb;
      down.residual = x2_.get();
      down.input = cuda::MatvecInput::vector;
      down.in = h_.get();
      down.pdl = pdl_;
      matvec(down, "fcproj");
    }
    launch_head(cuda::MatvecInput::norm, x_.get());
  }

  void matvec(const cuda::MatvecParams& p, const char* name) {
    cuda::decode_matvec(p, stream_);
    mark(name, p.w.rows * matrix_row_bytes(p.w));
  }
  static std::size_t matrix_row_bytes(const DeviceMatrix& w) {
    switch (w.format) {
      case WeightFormat::float32: return w.cols * 4;
      case WeightFormat::bfloat16: return w.cols * 2;
      case WeightFormat::q8_0: return w.cols / 32 * 34;
      case WeightFormat::q4_0: break;
    }
    return w.cols / 32 * 18;
  }
  // With a profile running, an event after each kernel (op_timer.h) and the weight bytes it read.
  void mark(const char* name, std::size_t bytes) {
    if (timer_ == nullptr) return;
    timer_->mark(name);
    profile_bytes_[name] += bytes;
  }

  void launch_head(cuda::MatvecInput input, const float* in) {
    cuda::MatvecParams head;
    head.w = head_;
    head.out = logits_.get();
    head.input = input;
    head.in = in;
    head.norm_w = lnfw_;
    head.norm_b = lnfb_;
    head.eps = static_cast<float>(m_.ln_eps);
    head.pdl = pdl_;
    matvec(head, input == cuda::MatvecInput::norm ? "norm+head" : "head");
  }

  // The sampler on the logits, then the cursor moves on (pos_step: 1 after a step, 0 after a prefill).
  void launch_sample(std::uint32_t pos_step) {
    auto* draw = reinterpret_cast<const std::uint64_t*>(reinterpret_cast<const unsigned char*>(cursor_.get()) +
                                                         offsetof(cuda::DecodeCursor, draw));
    cuda::sample_tokens(next_.get(), logits_.get(), 1, m_.tokens(), m_.vocab_size, sampling_, draw,
                        sample_scratch_.get(), stream_);
    mark("sample", 0);
    cuda::decode_advance(cursor_.get(), next_.get(), history_.get(), static_cast<std::uint32_t>(m_.context), pos_step,
                         stream_);
    mark("advance", 0);
  }

  void set_sampling(const SamplingConfig& s) {
    const bool same = sampler_ready_ && s.temperature == sampling_.temperature && s.top_k == sampling_.top_k &&
                      s.top_p == sampling_.top_p && s.seed == sampling_.seed;
    if (same) return;
    sampling_ = s;
    const std::size_t bytes = cuda::sample_scratch_bytes(1, m_.tokens(), s);
    if (sample_scratch_.size() < bytes) sample_scratch_ = DeviceBuffer<unsigned char>(bytes);
    if (sample_graph_ != nullptr) {
      MINITX_CUDA_CHECK(cudaGraphExecDestroy(sample_graph_));
      sample_graph_ = nullptr;
    }
    sampler_ready_ = true;
  }

  // ---- the prefill ----
  void run_prefill(const std::uint32_t* ids, std::size_t n, std::uint64_t draw) {
    MINITX_CHECK(n >= 1, "generate: the sequence is empty: at least one token is needed");
    MINITX_CHECK(n <= m_.context, "generate: a sequence of {} tokens does not fit the model's context of {} tokens", n,
                 m_.context);
    check_token_ids(ids, n, m_, "generate");
    if (n > acts_rows_) {
      // Room for the next power of two rows (up to the context), so a growing prompt rarely reallocates.
      std::size_t rows = 1;
      while (rows < n) rows *= 2;
      rows = std::min(rows, m_.context);
      BlockActivations<T> probe;
      const std::size_t state = m_.n_head * rows;
      acts_storage_ = DeviceBuffer<unsigned char>(bind_activations(probe, nullptr, m_, 1, rows, false, state));
      bind_activations(acts_, acts_storage_.get(), m_, 1, rows, false, state);
      acts_rows_ = rows;
    }
    ids_.upload(ids, n, stream_);
    block_forward(*ops_, acts_, ids_.get(), 1, n);
    cuda::row_to_float<T>(x_.get(), acts_.lnf + (n - 1) * m_.n_embd, m_.n_embd, stream_);
    launch_head(cuda::MatvecInput::vector, x_.get());
    const cuda::DecodeCursor c{0, static_cast<std::uint32_t>(n), draw};
    cursor_.upload(&c, 1, stream_);
    length_ = n;
    draw_ = draw;
  }

  const std::vector<float>& download_logits() {
    logits_.download(host_logits_.data(), host_logits_.size(), stream_);
    return host_logits_;
  }

  void check_room(std::size_t count) const {
    MINITX_CHECK(length_ >= 1, "generate: a step before the prefill: the cache is empty");
    MINITX_CHECK(length_ + count <= m_.context,
                 "generate: {} more tokens after {} would pass the model's context of {} tokens", count, length_,
                 m_.context);
  }

  template <class Launch>
  cudaGraphExec_t capture(Launch launch) {
    cudaGraph_t graph = nullptr;
    MINITX_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      launch();
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
      throw;
    }
    MINITX_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    MINITX_CUDA_CHECK(err);
    return exec;
  }
  void drop_graphs() {
    for (cudaGraphExec_t* g : {&body_graph_, &sample_graph_})
      if (*g != nullptr) {
        cudaGraphExecDestroy(*g);
        *g = nullptr;
      }
  }

  const ModelConfig m_;
  const GpuPrecision precision_;
  const ParamLayout layout_;
  // Declared before everything that enqueues work on it, so it is destroyed after them, also
  // when the constructor throws.
  struct OwnedStream {
    cudaStream_t stream = nullptr;
    OwnedStream() { MINITX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
    ~OwnedStream() { cudaStreamDestroy(stream); }
    OwnedStream(const OwnedStream&) = delete;
    OwnedStream& operator=(const OwnedStream&) = delete;
  } owned_stream_;
  cudaStream_t stream_ = owned_stream_.stream;
  cuda::LtMatmul lt_;
  std::uint32_t splits_ = 0;
  DeviceBuffer<T> params_, k_, v_;
  DeviceBuffer<float> vectors_, qkv_, x_, x2_, h_, logits_, partials_;
  DeviceBuffer<unsigned char> quant_, sample_scratch_, acts_storage_;
  DeviceBuffer<cuda::DecodeCursor> cursor_;
  DeviceBuffer<float2> rope_;
  DeviceBuffer<std::uint32_t> next_, history_, ids_;
  std::vector<Layer> layers_;
  DeviceMatrix wte_, wpe_, head_;
  const float *lnfw_ = nullptr, *lnfb_ = nullptr;
  std::unique_ptr<PrefillOps<T>> ops_;
  BlockActivations<T> acts_;
  std::size_t acts_rows_ = 0;
  std::size_t step_bytes_ = 0;
  std::string format_;
  SamplingConfig sampling_;
  bool sampler_ready_ = false, graphs_ = true, pdl_ = true;
  cuda::OpTimer* timer_ = nullptr;
  std::map<std::string, std::size_t> profile_bytes_;
  cudaGraphExec_t body_graph_ = nullptr, sample_graph_ = nullptr;
  std::size_t length_ = 0;
  std::uint64_t draw_ = 0;
  std::vector<float> host_logits_;
};

}  // namespace

CudaDecoder::CudaDecoder(const GptWeights& weights, GpuPrecision precision) {
  MINITX_CHECK(cuda_decode_available(), "generate --device cuda: no CUDA device is visible on this machine");
  if (precision == GpuPrecision::bf16) impl_ = std::make_unique<DecoderImpl<cuda::bf16>>(weights, precision);
  else impl_ = std::make_unique<DecoderImpl<float>>(weights, precision);
}

bool cuda_decode_available() { return !cuda_devices().empty(); }

double cuda_copy_bandwidth() {
  constexpr std::size_t kBytes = std::size_t{1} << 30;
  constexpr int kCopies = 20;
  DeviceBuffer<unsigned char> a(kBytes), b(kBytes);
  cudaEvent_t start = nullptr, stop = nullptr;
  MINITX_CUDA_CHECK(cudaEventCreate(&start));
  MINITX_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) MINITX_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), kBytes, cudaMemcpyDeviceToDevice));
  MINITX_CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < kCopies; ++i) MINITX_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), kBytes, cudaMemcpyDeviceToDevice));
  MINITX_CUDA_CHECK(cudaEventRecord(stop));
  MINITX_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  MINITX_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 2.0 * double(kBytes) * kCopies / (double(ms) / 1e3);
}

#else

CudaDecoder::CudaDecoder(const GptWeights&, GpuPrecision) {
  fail("generate --device cuda: this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}

bool cuda_decode_available() { return false; }

double cuda_copy_bandwidth() { fail("bench: this build has no CUDA"); }

#endif

CudaDecoder::~CudaDecoder() = default;
const std::vector<float>& CudaDecoder::prefill(const std::uint32_t* ids, std::size_t n) { return impl_->prefill(ids, n); }
const std::vector<float>& CudaDecoder::step(std::uint32_t id) { return impl_->step(id); }
std::uint32_t CudaDecoder::prefill_sample(const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                                          std::uint64_t draw) {
  return impl_->prefill_sample(ids, n, sampling, draw);
}
std::vector<std::uint32_t> CudaDecoder::step_sample(std::size_t count) { return impl_->step_sample(count); }
void CudaDecoder::use_graphs(bool on) { impl_->use_graphs(on); }
void CudaDecoder::use_pdl(bool on) { impl_->use_pdl(on); }
std::vector<CudaDecoder::KernelTime> CudaDecoder::profile(std::size_t count) { return impl_->profile(count); }
std::size_t CudaDecoder::length() const { return impl_->length(); }
std::size_t CudaDecoder::kv_cache_bytes() const { return impl_->kv_cache_bytes(); }
std::size_t CudaDecoder::step_weight_bytes() const { return impl_->step_weight_bytes(); }
std::string CudaDecoder::weight_format() const { return impl_->weight_format(); }
const ModelConfig& CudaDecoder::config() const { return impl_->config(); }

}  // namespace minitx
