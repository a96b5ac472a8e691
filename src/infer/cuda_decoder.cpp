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
#include "minitx/backend/cuda/attention.h"
#include "minitx/model/gpt.h"
#include "minitx/model/kv_cache.h"
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

#if MINITX_CUDA
static_assert(kMaxDecodeSequences == cuda::kMaxDecodeBatch, "the decoder's batch limit is the decode kernel's");
#endif

void check_decode_batch(std::size_t batch, const std::string& what) {
  MINITX_CHECK(batch >= 1 && batch <= kMaxDecodeSequences, "{}: batch {} is outside 1 to {} sequences", what, batch,
               kMaxDecodeSequences);
}

struct CudaDecoder::Impl {
  virtual ~Impl() = default;
  virtual const std::vector<float>& prefill(std::size_t seq, const std::uint32_t* ids, std::size_t n) = 0;
  virtual const std::vector<float>& step(const std::uint32_t* ids) = 0;
  virtual std::uint32_t prefill_sample(std::size_t seq, const std::uint32_t* ids, std::size_t n,
                                       const SamplingConfig& sampling, std::uint64_t draw) = 0;
  virtual std::vector<std::uint32_t> step_sample(std::size_t count) = 0;
  virtual void use_graphs(bool on) = 0;
  virtual std::vector<CudaDecoder::KernelTime> profile(std::size_t count) = 0;
  virtual std::size_t batch() const = 0;
  virtual std::size_t length(std::size_t seq) const = 0;
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

// The prefill's op table: CudaBlockOps, plus the hook by which block_forward fills the cache.
template <class T>
class PrefillOps : public cuda::CudaBlockOps<T> {
 public:
  PrefillOps(const ModelConfig& m, cuda::LtMatmul& lt, cudaStream_t stream, T* k, T* v, std::size_t capacity,
             BasicKvSlots<std::uint32_t> slots)
      : cuda::CudaBlockOps<T>(m, lt, stream, 1, m.context, cuda::CudaBlockOps<T>::Passes::forward),
        k_(k),
        v_(v),
        capacity_(capacity),
        slots_(slots) {}
  // Which sequence's cache the next prefill fills.
  void set_cache(T* k, T* v) {
    k_ = k;
    v_ = v;
  }
  void store_kv(std::size_t layer, const T* qkv, std::size_t rows) {
    const ModelConfig& m = this->config();
    const std::size_t stride = m.n_embd * capacity_;
    cuda::store_kv<T>(k_ + layer * stride, v_ + layer * stride, qkv, rows, m.n_embd, m.n_head, capacity_, slots_,
                      this->stream());
  }

 private:
  T *k_, *v_;
  std::size_t capacity_;
  BasicKvSlots<std::uint32_t> slots_;
};

// The CPU cache's slots (model/kv_cache.h) in the kernels' 32-bit positions.
BasicKvSlots<std::uint32_t> device_slots(const ModelConfig& m) {
  const cpu::KvSlots s = kv_slots(m.attention, m.context);
  if (!s.is_ring()) return {};
  return {static_cast<std::uint32_t>(s.fixed), static_cast<std::uint32_t>(s.ring)};
}

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
  DecoderImpl(const GptWeights& w, GpuPrecision precision, std::size_t batch)
      : m_(w.config), precision_(precision), layout_(param_layout(w.config)), batch_(batch),
        slots_(device_slots(w.config)), rows_(slots_.rows(static_cast<std::uint32_t>(w.config.context))) {
    const ModelConfig& m = m_;
    MINITX_CHECK(batch == 1 || m.attention.kind == sparse::AttentionPattern::Kind::dense,
                 "generate --device cuda: batch {} with the attention pattern {}: batches decode dense causal "
                 "attention only (use batch 1 for block-sparse patterns)",
                 batch, sparse::summarize_pattern(m.attention));
    MINITX_CHECK(m.context <= 0xffffffffu, "generate --device cuda: a context of {} positions is past the step's 32-bit positions",
                 m.context);
    // cap: positions (the rotary table, the token ring); rows: cache rows per head (a ring's for
    // local and sinks, whatever the context).
    const std::size_t C = m.n_embd, L = m.n_layer, cap = m.context, rows = rows_, D = m.head_size();

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
    const std::size_t B = batch_;
    const std::size_t kv = B * 2 * L * C * rows * sizeof(T);
    BlockActivations<T> probe;
    const std::size_t acts = bind_activations(probe, nullptr, m, 1, cap, false, 1 * m.n_head * cap);
    const std::size_t scratch = B * (3 * C + 2 * C + m.ffn_width() + m.vocab_size + C + cap +
                                     cuda::attention_partials_floats(m.n_head, rows, D)) * sizeof(float);
    const double need = double(P) * sizeof(T) + double(vector_floats) * 4 + double(quant_bytes) + double(kv) +
                        double(acts) + double(scratch) + double(cuda::kLtWorkspaceBytes);
    std::size_t free_bytes = 0, total_bytes = 0;
    MINITX_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (need > 0.95 * double(free_bytes))
      fail("generate --device cuda: the model needs {} of device memory (weights {}, KV cache {} for {} positions "
           "of {} sequence{}, prompt activations {}), but {} of {} is free",
           gib(need), gib(double(P) * sizeof(T) + double(quant_bytes)), gib(double(kv)), cap, B, B == 1 ? "" : "s",
           gib(double(acts)), gib(double(free_bytes)), gib(double(total_bytes)));

    upload_weights(w, vector_floats, quant_bytes);
    // Sequence s's caches, L layers of them, follow sequence s - 1's: a prefill fills one
    // sequence's as batch 1 fills its only one.
    k_ = DeviceBuffer<T>(B * L * C * rows);
    v_ = DeviceBuffer<T>(B * L * C * rows);
    qkv_ = DeviceBuffer<float>(B * 3 * C);
    x_ = DeviceBuffer<float>(B * C);
    x2_ = DeviceBuffer<float>(B * C);
    h_ = DeviceBuffer<float>(B * m.ffn_width());
    logits_ = DeviceBuffer<float>(B * m.vocab_size);
    partials_ = DeviceBuffer<float>(B * cuda::attention_partials_floats(m.n_head, rows, D));
    counters_ = DeviceBuffer<std::uint32_t>(cuda::decode_step_counters(L));
    MINITX_CUDA_CHECK(cudaMemsetAsync(counters_.get(), 0, counters_.size() * sizeof(std::uint32_t), stream_));
    best_ = DeviceBuffer<std::uint64_t>(B);
    MINITX_CUDA_CHECK(cudaMemsetAsync(best_.get(), 0, B * sizeof(std::uint64_t), stream_));
    times_ = DeviceBuffer<std::uint64_t>(cuda::decode_step_phases(L) + 1);
    for (std::size_t l = 0; l < L; ++l) {
      layers_[l].k_cache = k_.get() + l * C * rows;
      layers_[l].v_cache = v_.get() + l * C * rows;
    }
    device_layers_ = DeviceBuffer<cuda::DecodeLayer<T>>(L);
    device_layers_.upload(layers_, stream_);
    if (m.position == ModelConfig::Position::rotary) {
      rope_ = DeviceBuffer<float2>(cap * (m.rotary_dims() / 2));
      cuda::rope_table(rope_.get(), cap, m.rotary_dims(), std::log2(m.rotary_base), stream_);
    }
    cursor_ = DeviceBuffer<cuda::DecodeCursor>(B);
    next_ = DeviceBuffer<std::uint32_t>(B);
    history_ = DeviceBuffer<std::uint32_t>(B * cap);
    ids_ = DeviceBuffer<std::uint32_t>(cap);
    if (!m.attention.dense())
      sparse_ = std::make_unique<cuda::DeviceLayout>(sparse::build_layout(
          m.attention, static_cast<std::int32_t>(cap), static_cast<std::int32_t>(m.n_head), m.attention.block));
    ops_ = std::make_unique<PrefillOps<T>>(m, lt_, stream_, k_.get(), v_.get(), rows, slots_);
    ops_->bind(params_.get(), nullptr);
    host_logits_.resize(B * m.vocab_size);
    host_seq_logits_.resize(m.vocab_size);
    length_.assign(B, 0);
    draw_.assign(B, 0);
    cursors_.assign(B, cuda::DecodeCursor{});
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~DecoderImpl() override {
    drop_graphs();
    cudaStreamSynchronize(stream_);
  }

  const std::vector<float>& prefill(std::size_t seq, const std::uint32_t* ids, std::size_t n) override {
    run_prefill(seq, ids, n, 0);
    MINITX_CUDA_CHECK(cudaMemcpyAsync(host_seq_logits_.data(), logits_.get() + seq * m_.vocab_size,
                                      m_.vocab_size * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host_seq_logits_;
  }

  const std::vector<float>& step(const std::uint32_t* ids) override {
    check_room(1);
    check_token_ids(ids, batch_, m_, "generate");
    for (std::size_t s = 0; s < batch_; ++s)
      cursors_[s] = cuda::DecodeCursor{ids[s], static_cast<std::uint32_t>(length_[s]), draw_[s]};
    cursor_.upload(cursors_.data(), batch_, stream_);
    if (graphs_) {
      if (body_graph_ == nullptr) body_graph_ = capture([this] { launch_body(); });
      MINITX_CUDA_CHECK(cudaGraphLaunch(body_graph_, stream_));
    } else {
      launch_body();
    }
    for (std::size_t& length : length_) ++length;
    return download_logits();
  }

  std::uint32_t prefill_sample(std::size_t seq, const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                               std::uint64_t draw) override {
    set_sampling(sampling);
    run_prefill(seq, ids, n, draw);
    launch_sample_seq(seq, 0);
    std::uint32_t token = 0;
    MINITX_CUDA_CHECK(cudaMemcpyAsync(&token, next_.get() + seq, sizeof token, cudaMemcpyDeviceToHost, stream_));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    ++draw_[seq];
    return token;
  }

  std::vector<std::uint32_t> step_sample(std::size_t count) override {
    MINITX_CHECK(sampler_ready_, "generate: step_sample before prefill_sample");
    check_room(count);
    const std::vector<std::uint64_t> first = draw_;
    for (std::size_t i = 0; i < count; ++i) {
      if (graphs_) {
        if (sample_graph_ == nullptr) sample_graph_ = capture([this] {
            launch_sampling_step();
          });
        MINITX_CUDA_CHECK(cudaGraphLaunch(sample_graph_, stream_));
      } else {
        launch_sampling_step();
      }
    }
    advance(count);
    // Each sequence's ring of sampled tokens holds its last `capacity` draws (count ≤ capacity,
    // as each token took a position); copy out the newest, in at most two pieces.
    std::vector<std::uint32_t> tokens(batch_ * count);
    const std::size_t ring = m_.context;
    for (std::size_t s = 0; s < batch_; ++s) {
      const std::uint32_t* history = history_.get() + s * ring;
      std::uint32_t* out = tokens.data() + s * count;
      const std::size_t at = first[s] % ring, head = std::min(count, ring - at);
      MINITX_CUDA_CHECK(cudaMemcpyAsync(out, history + at, head * sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream_));
      if (head < count)
        MINITX_CUDA_CHECK(cudaMemcpyAsync(out + head, history, (count - head) * sizeof(std::uint32_t),
                                          cudaMemcpyDeviceToHost, stream_));
    }
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return tokens;
  }

  void use_graphs(bool on) override { graphs_ = on; }

  std::vector<CudaDecoder::KernelTime> profile(std::size_t count) override {
    MINITX_CHECK(sampler_ready_, "generate: profile before prefill_sample");
    check_room(count);
    // The step kernel's phases, from block 0's clock readings as each starts (and the last
    // block's at the end); the sampler's two kernels from events.
    static constexpr const char* kPhase[] = {"norm+qkv", "attention", "combine+attproj", "norm+fc", "fcproj"};
    const std::size_t L = m_.n_layer, phases = cuda::decode_step_phases(L);
    std::vector<std::uint64_t> stamps(phases + 1);
    std::vector<double> phase_ns(6, 0.0);
    cuda::OpTimer timer;
    timer_ = &timer;
    for (std::size_t i = 0; i < count; ++i) {
      timer.begin(stream_, true);
      profiling_ = true;
      launch_sampling_step();
      profiling_ = false;
      timer.end();
      times_.download(stamps.data(), stamps.size(), stream_);
      MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
      for (std::size_t k = 0; k < phases; ++k) phase_ns[k == phases - 1 ? 5 : k % 5] += double(stamps[k + 1] - stamps[k]);
    }
    timer_ = nullptr;
    advance(count);
    std::vector<CudaDecoder::KernelTime> out;
    const auto bytes = [&](auto member) {
      std::size_t b = 0;
      for (const auto& y : layers_) b += matrix_bytes(y.*member);
      return b;
    };
    const std::size_t phase_bytes[] = {bytes(&cuda::DecodeLayer<T>::qkv), 0, bytes(&cuda::DecodeLayer<T>::attproj),
                                       bytes(&cuda::DecodeLayer<T>::fc), bytes(&cuda::DecodeLayer<T>::fcproj),
                                       matrix_bytes(head_)};
    for (std::size_t k = 0; k < 6; ++k)
      out.push_back({k == 5 ? "norm+head" : kPhase[k], phase_ns[k] / 1e3 / double(count), k == 5 ? 1 : L, phase_bytes[k]});
    for (const auto& [name, total] : timer.totals())
      if (name != "step") out.push_back({name, total.ms * 1e3 / double(count), total.calls / count, 0});
    return out;
  }
  std::size_t batch() const override { return batch_; }
  std::size_t length(std::size_t seq) const override {
    check_seq(seq);
    return length_[seq];
  }
  std::size_t kv_cache_bytes() const override { return batch_ * 2 * m_.n_layer * m_.n_embd * rows_ * sizeof(T); }
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
  // A step that samples its token: greedy picks it inside the step kernel, which also moves the
  // cursor on; other samplers run after it.
  void launch_sampling_step() {
    const bool greedy = sampling_is_greedy(sampling_);
    launch_body(greedy);
    if (!greedy) launch_sample(1);
  }

  void launch_body(bool greedy = false) {
    const ModelConfig& m = m_;
    const bool rotary = m.position == ModelConfig::Position::rotary;
    cuda::DecodeStep<T> p{};
    p.layers = device_layers_.get();
    p.n_layer = static_cast<std::uint32_t>(m.n_layer);
    p.C = static_cast<std::uint32_t>(m.n_embd);
    p.heads = static_cast<std::uint32_t>(m.n_head);
    p.head_dim = static_cast<std::uint32_t>(m.head_size());
    p.ffn = static_cast<std::uint32_t>(m.ffn_width());
    p.capacity = static_cast<std::uint32_t>(rows_);
    p.rotary_dims = static_cast<std::uint32_t>(rotary ? m.rotary_dims() : 0);
    p.pos_offset = static_cast<std::uint32_t>(m.position_offset);
    p.act = cuda::cuda_activation(m.activation);
    p.parallel_residual = m.parallel_residual;
    p.eps = static_cast<float>(m.ln_eps);
    p.wte = wte_;
    p.wpe = rotary ? DeviceMatrix{} : wpe_;
    p.head = head_;
    p.lnfw = lnfw_;
    p.lnfb = lnfb_;
    p.rope = rope_.get();
    p.batch = static_cast<std::uint32_t>(batch_);
    p.cache_stride = m.n_layer * m.n_embd * rows_;
    p.x = x_.get();
    p.x2 = x2_.get();
    p.qkv = qkv_.get();
    p.h = h_.get();
    p.partials = partials_.get();
    p.logits = logits_.get();
    p.cursor = cursor_.get();
    p.counters = counters_.get();
    p.times = profiling_ ? times_.get() : nullptr;
    if (sparse_ != nullptr) {
      const sparse::BlockLayout& l = sparse_->host();
      p.sparse.row_ptr = sparse_->row_ptr();
      p.sparse.cols = sparse_->cols();
      p.sparse.kinds = sparse_->kinds();
      p.sparse.global_tokens = sparse_->global_tokens();
      p.sparse.block = static_cast<std::uint32_t>(l.block);
      p.sparse.nb = static_cast<std::uint32_t>(l.nb);
      p.sparse.heads = static_cast<std::uint32_t>(l.heads);
      p.sparse.slots = slots_;
    }
    if (greedy)
      p.greedy = {best_.get(), next_.get(), history_.get(), static_cast<std::uint32_t>(m.context),
                  static_cast<std::uint32_t>(m.tokens())};
    cuda::decode_step<T>(p, stream_);
    if (timer_ != nullptr) timer_->mark("step");
  }

  static std::size_t matrix_bytes(const DeviceMatrix& w) {
    std::size_t row = 0;
    switch (w.format) {
      case WeightFormat::float32: row = w.cols * 4; break;
      case WeightFormat::bfloat16: row = w.cols * 2; break;
      case WeightFormat::q8_0: row = w.cols / 32 * 34; break;
      case WeightFormat::q4_0: row = w.cols / 32 * 18; break;
    }
    return w.rows * row;
  }

  // The sampler on each sequence's logits, then its cursor moves on (pos_step: 1 after a step,
  // 0 after a prefill). A sequence at a time: each draws with its own cursor's index.
  void launch_sample(std::uint32_t pos_step) {
    for (std::size_t s = 0; s < batch_; ++s) launch_sample_seq(s, pos_step);
  }
  void launch_sample_seq(std::size_t s, std::uint32_t pos_step) {
    auto* draw = reinterpret_cast<const std::uint64_t*>(reinterpret_cast<const unsigned char*>(cursor_.get() + s) +
                                                         offsetof(cuda::DecodeCursor, draw));
    cuda::sample_tokens(next_.get() + s, logits_.get() + s * m_.vocab_size, 1, m_.tokens(), m_.vocab_size, sampling_,
                        draw, sample_scratch_.get(), stream_);
    if (timer_ != nullptr) timer_->mark("sample");
    cuda::decode_advance(cursor_.get() + s, next_.get() + s, history_.get() + s * m_.context,
                         static_cast<std::uint32_t>(m_.context), pos_step, stream_);
    if (timer_ != nullptr) timer_->mark("advance");
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
  void run_prefill(std::size_t seq, const std::uint32_t* ids, std::size_t n, std::uint64_t draw) {
    check_seq(seq);
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
    const std::size_t cache = seq * m_.n_layer * m_.n_embd * rows_;
    ops_->set_cache(k_.get() + cache, v_.get() + cache);
    block_forward(*ops_, acts_, ids_.get(), 1, n);
    float* x = x_.get() + seq * m_.n_embd;
    cuda::row_to_float<T>(x, acts_.lnf + (n - 1) * m_.n_embd, m_.n_embd, stream_);
    cuda::decode_logits(head_, x, logits_.get() + seq * m_.vocab_size, stream_);
    cursors_[seq] = cuda::DecodeCursor{0, static_cast<std::uint32_t>(n), draw};
    // Pageable memory: staged before the call returns (buffer.h), so cursors_ may change at once.
    MINITX_CUDA_CHECK(cudaMemcpyAsync(cursor_.get() + seq, &cursors_[seq], sizeof(cuda::DecodeCursor),
                                      cudaMemcpyHostToDevice, stream_));
    length_[seq] = n;
    draw_[seq] = draw;
  }

  void advance(std::size_t count) {
    for (std::size_t s = 0; s < batch_; ++s) {
      length_[s] += count;
      draw_[s] += count;
    }
  }

  void check_seq(std::size_t seq) const {
    MINITX_CHECK(seq < batch_, "generate: sequence {} of a batch of {} (sequences 0 to {})", seq, batch_, batch_ - 1);
  }

  const std::vector<float>& download_logits() {
    logits_.download(host_logits_.data(), host_logits_.size(), stream_);
    return host_logits_;
  }

  void check_room(std::size_t count) const {
    for (std::size_t s = 0; s < batch_; ++s) {
      const std::string which = batch_ == 1 ? "" : fmt::format(" in sequence {}", s);
      MINITX_CHECK(length_[s] >= 1, "generate: a step before the prefill{}: the cache is empty", which);
      MINITX_CHECK(length_[s] + count <= m_.context,
                   "generate: {} more tokens after {}{} would pass the model's context of {} tokens", count, length_[s],
                   which, m_.context);
    }
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
  const std::size_t batch_;
  const BasicKvSlots<std::uint32_t> slots_;  // where each position's keys and values sit
  const std::size_t rows_;                   // cache rows per head and layer
  // Declared before everything that enqueues work on it, so it is destroyed after them, also
  // when the constructor throws.
  cuda::Stream owned_stream_{cudaStreamNonBlocking};
  cudaStream_t stream_ = owned_stream_;
  cuda::LtMatmul lt_;
  DeviceBuffer<T> params_, k_, v_;
  DeviceBuffer<float> vectors_, qkv_, x_, x2_, h_, logits_, partials_;
  DeviceBuffer<unsigned char> quant_, sample_scratch_, acts_storage_;
  DeviceBuffer<cuda::DecodeCursor> cursor_;
  DeviceBuffer<float2> rope_;
  DeviceBuffer<std::uint32_t> next_, history_, ids_, counters_;
  DeviceBuffer<std::uint64_t> times_, best_;
  std::vector<cuda::DecodeLayer<T>> layers_;
  DeviceBuffer<cuda::DecodeLayer<T>> device_layers_;
  DeviceMatrix wte_, wpe_, head_;
  const float *lnfw_ = nullptr, *lnfb_ = nullptr;
  std::unique_ptr<cuda::DeviceLayout> sparse_;  // the pattern's layout for the whole context; null: dense
  std::unique_ptr<PrefillOps<T>> ops_;
  BlockActivations<T> acts_;
  std::size_t acts_rows_ = 0;
  std::size_t step_bytes_ = 0;
  std::string format_;
  SamplingConfig sampling_;
  bool sampler_ready_ = false, graphs_ = true, profiling_ = false;
  cuda::OpTimer* timer_ = nullptr;
  cudaGraphExec_t body_graph_ = nullptr, sample_graph_ = nullptr;
  std::vector<std::size_t> length_;  // per sequence
  std::vector<std::uint64_t> draw_;
  std::vector<cuda::DecodeCursor> cursors_;  // host staging of the cursors' uploads
  std::vector<float> host_logits_, host_seq_logits_;
};

}  // namespace

CudaDecoder::CudaDecoder(const GptWeights& weights, GpuPrecision precision, std::size_t batch) {
  check_decode_batch(batch, "generate --device cuda");
  MINITX_CHECK(cuda_decode_available(), "generate --device cuda: no CUDA device is visible on this machine");
  if (precision == GpuPrecision::bf16) impl_ = std::make_unique<DecoderImpl<cuda::bf16>>(weights, precision, batch);
  else impl_ = std::make_unique<DecoderImpl<float>>(weights, precision, batch);
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

CudaDecoder::CudaDecoder(const GptWeights&, GpuPrecision, std::size_t batch) {
  check_decode_batch(batch, "generate --device cuda");
  fail("generate --device cuda: this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}

bool cuda_decode_available() { return false; }

double cuda_copy_bandwidth() { fail("bench: this build has no CUDA"); }

#endif

CudaDecoder::~CudaDecoder() = default;
const std::vector<float>& CudaDecoder::prefill(const std::uint32_t* ids, std::size_t n) { return impl_->prefill(0, ids, n); }
const std::vector<float>& CudaDecoder::step(std::uint32_t id) {
  MINITX_CHECK(impl_->batch() == 1, "generate: step(token) feeds a decoder of batch 1, this one has {} sequences",
               impl_->batch());
  return impl_->step(&id);
}
const std::vector<float>& CudaDecoder::prefill(std::size_t seq, const std::uint32_t* ids, std::size_t n) {
  return impl_->prefill(seq, ids, n);
}
const std::vector<float>& CudaDecoder::step(const std::uint32_t* ids) { return impl_->step(ids); }
std::uint32_t CudaDecoder::prefill_sample(const std::uint32_t* ids, std::size_t n, const SamplingConfig& sampling,
                                          std::uint64_t draw) {
  return impl_->prefill_sample(0, ids, n, sampling, draw);
}
std::uint32_t CudaDecoder::prefill_sample(std::size_t seq, const std::uint32_t* ids, std::size_t n,
                                          const SamplingConfig& sampling, std::uint64_t draw) {
  return impl_->prefill_sample(seq, ids, n, sampling, draw);
}
std::vector<std::uint32_t> CudaDecoder::step_sample(std::size_t count) { return impl_->step_sample(count); }
void CudaDecoder::use_graphs(bool on) { impl_->use_graphs(on); }
std::vector<CudaDecoder::KernelTime> CudaDecoder::profile(std::size_t count) { return impl_->profile(count); }
std::size_t CudaDecoder::batch() const { return impl_->batch(); }
std::size_t CudaDecoder::length() const { return impl_->length(0); }
std::size_t CudaDecoder::length(std::size_t seq) const { return impl_->length(seq); }
std::size_t CudaDecoder::kv_cache_bytes() const { return impl_->kv_cache_bytes(); }
std::size_t CudaDecoder::step_weight_bytes() const { return impl_->step_weight_bytes(); }
std::string CudaDecoder::weight_format() const { return impl_->weight_format(); }
const ModelConfig& CudaDecoder::config() const { return impl_->config(); }

}  // namespace minitx
