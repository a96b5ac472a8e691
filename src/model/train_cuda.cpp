// The GPU's training engine: block.h's forward and backward with the CUDA op table, the head and
// the fused softmax cross-entropy, then the global norm, clipping and AdamW, each rank on its own
// stream. Parameters, gradients and both moments stay fp32 on the device; in bf16 mode the
// forward and backward read a bf16 copy that AdamW refreshes as it updates the masters.
//
// Data parallelism as data_parallel.h lays it out, with the CPU's bits rule: micro-batches summed
// by the midpoint tree (an elementwise add kernel), ranks exchanging exact shards of their sums
// and adding them by the same tree, the norm as per-4096-chunk sums added on the host in chunk
// order, AdamW on each rank's shard, the shards all-gathered. The same M gives the same bits for
// any rank count; M itself changes the summation order (not the quantity).
#include "minitx/model/train_engine.h"

#if MINITX_CUDA
#include <cuda_runtime.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>
#include <utility>

#include "../backend/cuda/block_ops.h"
#include "minitx/backend/cuda/nccl_collective.h"
#include "minitx/model/collective.h"
#include "minitx/model/data_parallel.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"
#endif

#include "minitx/core/error.h"

namespace minitx {

#if MINITX_CUDA
namespace {

// Ranks as threads on one GPU: their copies queued on the rank's stream, waited for at each
// rendezvous (a rank's buffers are written by its own stream, which the others do not wait on).
// The thread collective's rendezvous and abort are reused as they are; only the bytes' mover
// differs, so simulated ranks on the GPU fail and stop exactly as on the CPU.
class StreamMover final : public ByteMover {
 public:
  explicit StreamMover(cudaStream_t stream) : stream_(stream) {}
  void copy(void* to, const void* from, std::size_t bytes) override {
    MINITX_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDefault, stream_));
  }
  void settle() override { MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_;
};

// The tree's live gradient vectors for n leaves: ceil(log2 n) + 1 (a buffer per level and the leaf's).
std::size_t tree_buffers(std::size_t n) { return static_cast<std::size_t>(std::bit_width(n - 1)) + 1; }

// One rank: a replica of the parameters (fp32 masters, and in bf16 their bf16 copy), a
// micro-batch's activations, the gradient tree's buffers, and its shard of the AdamW moments.
// Alone (one rank, one micro-batch) it is the plain GPU engine: the backward writes the one
// gradient vector, which is the shard; nothing is copied or exchanged.
template <class T>
class CudaRank {
 public:
  CudaRank(const ModelConfig& config, std::size_t micro_B, std::size_t time, std::size_t micro_batches,
           std::size_t rank, const std::vector<Shard>& plan, cudaStream_t stream, const TrainState& state)
      : config_(config), B_(micro_B), T_(time), P_(param_count(config)), M_(micro_batches), rank_(rank),
        plan_(plan), shard_(plan[rank]), stream_(stream), ops_(config, lt_, stream, micro_B, time) {
    const std::size_t N = B_ * T_, V = config.vocab_size, ranks = plan.size();
    // The device's norm chunks are the shards' unit (adamw.cu's kNormChunk).
    MINITX_CHECK(cuda::grad_norm_chunk_count(kShardChunk) == 1 && cuda::grad_norm_chunk_count(kShardChunk + 1) == 2,
                 "cuda: the norm's chunks are not data_parallel.h's {} elements", kShardChunk);
    params_ = cuda::DeviceBuffer<float>(P_);
    grads_ = cuda::DeviceBuffer<float>(P_);
    m_ = cuda::DeviceBuffer<float>(shard_.size());
    v_ = cuda::DeviceBuffer<float>(shard_.size());
    params_.upload(state.params, stream_);
    m_.upload(state.m.data() + shard_.begin, shard_.size(), stream_);
    v_.upload(state.v.data() + shard_.begin, shard_.size(), stream_);
    if constexpr (std::is_same_v<T, cuda::bf16>) {
      copy_ = cuda::DeviceBuffer<T>(P_);
      cuda::convert_from_fp32<T>(copy_.get(), params_.get(), P_, stream_);
    }
    // The tree's further vectors now, not in the middle of the first step (where running out of
    // memory would leave the other ranks inside a collective).
    for (std::size_t i = 1; i < tree_buffers(M_ / ranks); ++i) extra_.emplace_back(P_);
    BlockActivations<T> probe;
    acts_bytes_ = bind_activations(probe, nullptr, config, B_, T_, true, ops_.attention_state(config, B_, T_));
    acts_storage_ = cuda::DeviceBuffer<unsigned char>(acts_bytes_);
    bind_activations(acts_, acts_storage_.get(), config, B_, T_, true, ops_.attention_state(config, B_, T_));
    grad_storage_ = cuda::DeviceBuffer<unsigned char>(bind_gradients(grads_view_, nullptr, config, B_, T_));
    bind_gradients(grads_view_, grad_storage_.get(), config, B_, T_);
    logits_ = cuda::DeviceBuffer<T>(N * V);
    losses_ = cuda::DeviceBuffer<float>(N * (M_ / ranks));
    ids_ = cuda::DeviceBuffer<std::uint32_t>(N);
    targets_ = cuda::DeviceBuffer<std::uint32_t>(N);
    rows_ = cuda::DeviceBuffer<std::int32_t>(std::min(N, V));
    offsets_ = cuda::DeviceBuffer<std::int32_t>(std::min(N, V) + 1);
    positions_ = cuda::DeviceBuffer<std::int32_t>(N);
    chunk_sums_ = cuda::DeviceBuffer<double>(cuda::grad_norm_chunk_count(P_));
    host_chunks_.resize(chunk_sums_.size());
    host_losses_.resize(losses_.size());
    if (ranks > 1) {
      for (std::size_t r = 0; r < ranks; ++r)
        received_.emplace_back(r == rank_ ? 0 : shard_.size());
      rank_losses_ = cuda::DeviceBuffer<double>(ranks + 1);
    }
  }
  CudaRank(const CudaRank&) = delete;
  CudaRank& operator=(const CudaRank&) = delete;

  // Micro-batches [first, last) of the step (ids, targets: the whole step's), summed by the
  // midpoint tree; then, with several ranks, this rank's shard of every rank's sum, summed by the
  // tree over ranks; the norm's chunk sums; the loss. Every rank returns the same stats.
  StepStats forward_backward(Collective* c, const std::uint32_t* ids, const std::uint32_t* targets,
                             std::size_t first, std::size_t last) {
    const std::size_t tokens = B_ * T_;
    timer_.begin(stream_, profiling_);
    // Every vector of the tree is free at the start of a step (also after a step that threw).
    free_.assign({grads_.get()});
    for (auto& v : extra_) free_.push_back(v.get());
    sum_ = tree_sum(
        first, last,
        [&](std::size_t i) {
          float* g = take();
          micro_batch(g, ids + i * tokens, targets + i * tokens, losses_.get() + (i - first) * tokens);
          return g;
        },
        [&](float* a, float* b) {
          cuda::add_in_place(a, b, P_, stream_);
          give(b);
          return a;
        });
    if (last - first > 1) timer_.mark("gradient tree");
    grad_ = sum_;
    if (c != nullptr && c->size() > 1) grad_ = reduce_scatter(*c, sum_);
    // Each micro-batch's cross-entropy is scaled by its own token count; the sum of M of them is
    // the step's mean over M times the tokens. The scale is elementwise, so any rank count agrees.
    if (M_ > 1) cuda::scale_in_place(grad_, shard_.size(), 1.0f / static_cast<float>(M_), stream_);
    cuda::grad_norm_chunks(chunk_sums_.get() + shard_.begin / kShardChunk, grad_, shard_.size(), stream_);
    timer_.mark("gradient norm");

    // Losses in token order within a micro-batch, in double; micro-batches and ranks by the tree.
    losses_.download(host_losses_.data(), host_losses_.size(), stream_);
    double loss = tree_sum(
        first, last,
        [&](std::size_t i) {
          double s = 0.0;
          for (std::size_t k = 0; k < tokens; ++k) s += host_losses_[(i - first) * tokens + k];
          return s;
        },
        [](double a, double b) { return a + b; });
    if (c != nullptr && c->size() > 1) loss = gather_loss(*c, loss);
    if (c != nullptr && c->size() > 1) gather_chunk_sums(*c, plan_, chunk_sums_.get());
    chunk_sums_.download(host_chunks_.data(), host_chunks_.size(), stream_);
    double norm_sq = 0.0;  // in chunk order, whatever the shards
    for (double p : host_chunks_) norm_sq += p;
    StepStats s;
    s.norm = std::sqrt(norm_sq);
    s.loss = loss / static_cast<double>(tokens * M_);
    return s;
  }

  // Clip the shard by the global norm's factor, AdamW on it (the tensors' settings cut to the
  // shard), then every rank's updated shard (fp32 and bf16 copy) into every replica.
  void update(Collective* c, const std::vector<AdamWSlice>& slices, float clip) {
    if (clip != 1.0f) cuda::scale_in_place(grad_, shard_.size(), clip, stream_);
    timer_.mark("clip");
    for (const AdamWSlice& a : slices) {
      const std::size_t lo = std::max(a.offset, shard_.begin), hi = std::min(a.offset + a.count, shard_.end);
      if (lo >= hi) continue;
      const std::size_t at = lo - shard_.begin;
      const cuda::AdamWStep s{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.t};
      cuda::bf16* copy = nullptr;
      if constexpr (std::is_same_v<T, cuda::bf16>) copy = copy_.get() + lo;
      cuda::adamw_update(params_.get() + lo, copy, grad_ + at, m_.get() + at, v_.get() + at, hi - lo, s, stream_);
    }
    timer_.mark("adamw");
    if (c != nullptr && c->size() > 1) {
      gather_shards(*c, plan_, params_.get());
      if constexpr (std::is_same_v<T, cuda::bf16>) gather_shards(*c, plan_, copy_.get());
      timer_.mark("all-gather parameters");
    }
    timer_.end();
  }

  // One exact exchange with every peer and a barrier, so that a transport that connects on first
  // use (NCCL's send/receive and its rings) does so here, with nothing else in flight, rather
  // than inside the first step.
  void connect(Collective& c) {
    const std::size_t N = c.size();
    cuda::DeviceBuffer<float> token(2 * N);
    MINITX_CUDA_CHECK(cudaMemsetAsync(token.get(), 0, 2 * N * sizeof(float), stream_));
    std::vector<std::span<const std::byte>> send(N);
    std::vector<std::span<std::byte>> recv(N);
    for (std::size_t r = 0; r < N; ++r) {
      send[r] = bytes_of(std::span<const float>(token.get() + r, 1));
      recv[r] = bytes_of(std::span<float>(token.get() + N + r, 1));
    }
    c.exchange(send, recv);
    c.barrier();
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  double evaluate(const std::vector<std::uint32_t>& val, std::size_t window, std::size_t batch,
                  std::size_t max_windows) {
    MINITX_CHECK(window <= T_ && batch <= B_,
                 "cuda: evaluation windows ({} × {}) larger than a micro-batch ({} × {})", batch, window, B_, T_);
    ops_.bind(forward_params(), nullptr);
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

  // This rank's part of the state into the host's: all of the parameters when asked, its shard
  // of the moments (the ranks are threads of one process, so each writes its own slice).
  void download_state(TrainState& into, bool params) const {
    if (params) params_.download(into.params.data(), P_, stream_);
    MINITX_CUDA_CHECK(cudaMemcpyAsync(into.m.data() + shard_.begin, m_.get(), shard_.size() * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_));
    MINITX_CUDA_CHECK(cudaMemcpyAsync(into.v.data() + shard_.begin, v_.get(), shard_.size() * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_));
    MINITX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void set_profiling(bool on) {
    profiling_ = on;
    ops_.bind_timer(on ? &timer_ : nullptr);
    if (on) timer_.reset();
  }
  const cuda::OpTimer& timer() const { return timer_; }
  std::vector<std::string> kernels() const { return lt_.algorithms(); }

 private:
  const T* forward_params() const {
    if constexpr (std::is_same_v<T, cuda::bf16>) return copy_.get();
    else return params_.get();
  }

  // One micro-batch's forward and backward into the zeroed gradient vector g.
  void micro_batch(float* g, const std::uint32_t* ids, const std::uint32_t* targets, float* losses) {
    const std::size_t N = B_ * T_;
    check_token_ids(ids, N, config_, "training inputs");
    check_token_ids(targets, N, config_, "training targets");
    upload_ids(ids, targets, N);
    const cuda::TokenRows rows = cuda::token_rows(ids, N, config_.vocab_size);
    rows_.upload(rows.rows, stream_);
    offsets_.upload(rows.offsets, stream_);
    positions_.upload(rows.positions, stream_);
    ops_.bind(forward_params(), g);
    ops_.bind_token_rows(rows_.get(), offsets_.get(), positions_.get(), rows.rows.size());
    MINITX_CUDA_CHECK(cudaMemsetAsync(g, 0, P_ * sizeof(float), stream_));
    timer_.mark("memset gradients");
    block_forward(ops_, acts_, ids_.get(), B_, T_);
    ops_.head_losses(logits_.get(), losses, acts_.lnf, targets_.get(), N, true);
    const std::size_t C = config_.n_embd, V = config_.vocab_size;
    const Param head = ops_.head_param();
    cuda::matmul_backward<T>(lt_, grads_view_.dlnf, ops_.grad(head), nullptr, ops_.matmul_scratch(), logits_.get(),
                             acts_.lnf, ops_.param(head), N, C, V, true, stream_);
    timer_.mark("matmul head backward");
    block_backward(ops_, acts_, grads_view_, ids_.get());
  }

  // Every rank's sum restricted to my shard (an exchange of exact values), added by the tree
  // over ranks. My own part stays where it is, in `sum`.
  float* reduce_scatter(Collective& c, float* sum) {
    const std::size_t N = c.size();
    std::vector<float*> parts(N);
    for (std::size_t r = 0; r < N; ++r) parts[r] = r == rank_ ? sum + shard_.begin : received_[r].get();
    exchange_shards<float>(c, plan_, sum, parts);
    float* out = tree_sum(
        0, N, [&](std::size_t r) { return parts[r]; },
        [&](float* a, float* b) {
          cuda::add_in_place(a, b, shard_.size(), stream_);
          return a;
        });
    timer_.mark("reduce-scatter");
    return out;
  }

  double gather_loss(Collective& c, double mine) {
    const std::size_t N = c.size();
    rank_losses_.upload(&mine, 1, stream_);  // into slot 0, then gathered into 1..N
    c.all_gather(rank_losses_.get(), rank_losses_.get() + 1, sizeof(double));
    std::vector<double> all(N + 1);
    rank_losses_.download(all.data(), N + 1, stream_);
    return tree_sum(1, N + 1, [&](std::size_t r) { return all[r]; }, [](double a, double b) { return a + b; });
  }

  // The tree's gradient vectors: the first is the one the plain engine has, the others made with
  // the rank (tree_buffers of its micro-batches: as many as the tree holds at once).
  float* take() {
    MINITX_CHECK(!free_.empty(), "cuda: the gradient tree needs more than its {} vectors", extra_.size() + 1);
    float* g = free_.back();
    free_.pop_back();
    return g;
  }
  void give(float* g) { free_.push_back(g); }
  void upload_ids(const std::uint32_t* ids, const std::uint32_t* targets, std::size_t N) {
    MINITX_CUDA_CHECK(cudaMemcpyAsync(ids_.get(), ids, N * sizeof(std::uint32_t), cudaMemcpyHostToDevice, stream_));
    MINITX_CUDA_CHECK(
        cudaMemcpyAsync(targets_.get(), targets, N * sizeof(std::uint32_t), cudaMemcpyHostToDevice, stream_));
  }

  ModelConfig config_;
  std::size_t B_, T_, P_, M_, rank_;
  std::vector<Shard> plan_;
  Shard shard_;
  cudaStream_t stream_;
  cuda::LtMatmul lt_;
  cuda::CudaBlockOps<T> ops_;
  cuda::DeviceBuffer<float> params_, grads_, m_, v_;
  cuda::DeviceBuffer<T> copy_;
  std::vector<cuda::DeviceBuffer<float>> extra_, received_;
  std::vector<float*> free_;
  float* sum_ = nullptr;   // this step's sum over my micro-batches (P floats, one of the tree's buffers)
  float* grad_ = nullptr;  // the summed gradient over my shard (in sum_, or a received buffer)
  std::size_t acts_bytes_ = 0;
  cuda::DeviceBuffer<unsigned char> acts_storage_, grad_storage_;
  BlockActivations<T> acts_;
  BlockGradients<T> grads_view_;
  cuda::DeviceBuffer<T> logits_;
  cuda::DeviceBuffer<float> losses_;
  cuda::DeviceBuffer<std::uint32_t> ids_, targets_;
  cuda::DeviceBuffer<std::int32_t> rows_, offsets_, positions_;
  cuda::DeviceBuffer<double> chunk_sums_, rank_losses_;
  std::vector<double> host_chunks_;
  std::vector<float> host_losses_;
  cuda::OpTimer timer_;
  bool profiling_ = false;
};

// The GPU engine: R ranks (one, or threads on this GPU, or one per GPU over NCCL), each a
// CudaRank on its own stream; the step's micro-batches split in order, rank r taking
// [r·M/R, (r+1)·M/R).
template <class T>
class CudaEngine final : public TrainEngine {
 public:
  CudaEngine(const ModelConfig& config, std::size_t B, std::size_t time, const GpuParallel& parallel,
             TrainState state)
      : config_(config), B_(B), T_(time), M_(parallel.micro_batches) {
    const std::size_t P = param_count(config), N = parallel.ranks;
    MINITX_CHECK(state.params.size() == P && state.m.size() == P && state.v.size() == P,
                 "cuda: a training state of {} parameters for a model of {}", state.params.size(), P);
    check_data_parallel(B, M_, N);
    plan_ = shard_plan(P, N);
    int current = 0;
    MINITX_CUDA_CHECK(cudaGetDevice(&current));
    std::vector<cudaStream_t> streams;
    for (std::size_t r = 0; r < N; ++r) {
      devices_.push_back(parallel.nccl ? static_cast<int>(r) : current);
      MINITX_CUDA_CHECK(cudaSetDevice(devices_.back()));
      streams_.push_back(std::make_unique<cuda::Stream>());
      streams.push_back(*streams_.back());
    }
    MINITX_CUDA_CHECK(cudaSetDevice(current));
    // One GPU needs no transport: --gpus 1 runs without NCCL in a build that lacks it.
    if (parallel.nccl && (N > 1 || cuda::nccl_built())) {
      comms_ = cuda::make_nccl_collectives(devices_, streams);
    } else {
      std::vector<std::unique_ptr<ByteMover>> movers;
      for (cudaStream_t s : streams) movers.push_back(std::make_unique<StreamMover>(s));
      comms_ = make_thread_collectives(N, std::move(movers));
    }
    ranks_.resize(N);
    on_ranks([&](Collective& c, std::size_t r) {
      ranks_[r] = std::make_unique<CudaRank<T>>(config, B / M_, time, M_, r, plan_, streams[r], state);
      MINITX_CUDA_CHECK(cudaStreamSynchronize(streams[r]));  // before the host's state goes
      if (N > 1) ranks_[r]->connect(c);
    });
    check_batch_on_host_ = parallel.nccl && N > 1;
  }

  StepStats forward_backward(const std::uint32_t* ids, const std::uint32_t* targets) override {
    const std::size_t N = ranks_.size(), per_rank = M_ / N;
    // Over NCCL a rank that throws leaves its peers inside a collective until the group is
    // aborted; bad input, the one failure known before the step, is refused before any rank starts.
    if (check_batch_on_host_) {
      check_token_ids(ids, B_ * T_, config_, "training inputs");
      check_token_ids(targets, B_ * T_, config_, "training targets");
    }
    std::vector<StepStats> stats(N);
    on_ranks([&](Collective& c, std::size_t r) {
      stats[r] = ranks_[r]->forward_backward(&c, ids, targets, r * per_rank, (r + 1) * per_rank);
    });
    return stats[0];
  }

  void update(const TrainConfig& tc, double lr, const StepStats& stats, std::size_t step) override {
    // The CPU trainer's factor, rounded as it rounds it; 1 changes nothing and is skipped.
    const float clip =
        tc.grad_clip > 0 && stats.norm > tc.grad_clip ? static_cast<float>(tc.grad_clip / stats.norm) : 1.0f;
    const std::vector<AdamWSlice> slices = adamw_slices(config_, tc, lr, step);
    on_ranks([&](Collective& c, std::size_t r) { ranks_[r]->update(&c, slices, clip); });
  }

  double evaluate(const std::vector<std::uint32_t>& val, std::size_t window, std::size_t batch,
                  std::size_t max_windows) override {
    // Every replica holds the same parameters: rank 0's evaluates, in windows of a micro-batch.
    double loss = 0.0;
    on_rank0([&] { loss = ranks_[0]->evaluate(val, window, std::min(batch, B_ / M_), max_windows); });
    return loss;
  }

  TrainState state() const override {
    const std::size_t P = param_count(config_);
    TrainState s{std::vector<float>(P), std::vector<float>(P), std::vector<float>(P)};
    on_ranks([&](Collective&, std::size_t r) { ranks_[r]->download_state(s, r == 0); });
    return s;
  }
  void set_profiling(bool on) override {
    on_rank0([&] { ranks_[0]->set_profiling(on); });
  }
  std::vector<OpTime> op_times() const override {
    std::vector<OpTime> out;
    for (const auto& [op, t] : ranks_[0]->timer().totals()) out.push_back({op, t.ms, t.calls});
    return out;
  }
  std::string hardware() const override {
    cudaDeviceProp prop{};
    MINITX_CUDA_CHECK(cudaGetDeviceProperties(&prop, devices_.front()));
    return devices_.size() > 1 && devices_.back() != devices_.front()
               ? fmt::format("{} × {}", devices_.size(), prop.name)
               : std::string(prop.name);
  }
  std::vector<std::string> kernels() const override { return ranks_[0]->kernels(); }
  void synchronize() override {
    for (std::size_t r = 0; r < streams_.size(); ++r) {
      MINITX_CUDA_CHECK(cudaSetDevice(devices_[r]));
      MINITX_CUDA_CHECK(cudaStreamSynchronize(*streams_[r]));
    }
    MINITX_CUDA_CHECK(cudaSetDevice(devices_.front()));
  }
  std::string device() const override { return "cuda"; }
  std::string precision() const override { return std::is_same_v<T, float> ? "fp32" : "bf16"; }

 private:
  // fn(rank's collective, rank) on every rank, each on its GPU. One rank runs on this thread, as
  // the plain engine did (its errors unwrapped); several on one thread each (run_ranks: a rank
  // that fails stops the others and is named).
  template <class Fn>
  void on_ranks(const Fn& fn) const {
    if (comms_.size() == 1) {
      MINITX_CUDA_CHECK(cudaSetDevice(devices_[0]));
      fn(*comms_[0], 0);
      return;
    }
    run_ranks(comms_, [&](Collective& c) {
      MINITX_CUDA_CHECK(cudaSetDevice(devices_[c.rank()]));
      fn(c, c.rank());
    });
    MINITX_CUDA_CHECK(cudaSetDevice(devices_.front()));
  }
  template <class Fn>
  void on_rank0(const Fn& fn) const {
    MINITX_CUDA_CHECK(cudaSetDevice(devices_[0]));
    fn();
  }

  ModelConfig config_;
  std::size_t B_, T_, M_;
  std::vector<Shard> plan_;
  std::vector<int> devices_;
  std::vector<std::unique_ptr<cuda::Stream>> streams_;
  std::vector<std::unique_ptr<Collective>> comms_;
  std::vector<std::unique_ptr<CudaRank<T>>> ranks_;
  bool check_batch_on_host_ = false;
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
         static_cast<double>(cuda::grad_norm_chunk_count(param_count(config)) * sizeof(double)) + kRounding;
}

namespace {

// One rank's bytes (a micro-batch of B/M sequences): the plain engine's, with the moments cut to
// a shard, plus the gradient tree's further vectors, the shards received from the other ranks
// and the losses of the rank's micro-batches (each buffer rounded to cudaMalloc's 2 MiB).
TrainingMemory cuda_rank_memory(const ModelConfig& config, const std::string& precision, std::size_t B,
                                std::size_t T, const GpuParallel& parallel, bool with_scratch) {
  const std::size_t micro_B = B / parallel.micro_batches, N = parallel.ranks, per_rank = parallel.micro_batches / N;
  TrainingMemory need = cuda_training_memory(config, precision, micro_B, T,
                                             with_scratch ? cuda_engine_scratch(config, micro_B, T) : 0.0);
  if (parallel.micro_batches == 1 && N == 1) return need;
  const double vector = static_cast<double>(param_count(config)) * sizeof(float), page = 2 << 20;
  const double shard = static_cast<double>(shard_plan(param_count(config), N).front().size()) * sizeof(float);
  const double extra = static_cast<double>(tree_buffers(per_rank) - 1);
  need.state -= 2.0 * (vector - shard);
  need.step += extra * (vector + page) + static_cast<double>(N - 1) * (shard + page) +
               static_cast<double>((per_rank - 1) * micro_B * T) * sizeof(float) + page;
  return need;
}

}  // namespace

void check_cuda_memory(const ModelConfig& config, const std::string& precision, std::size_t B, std::size_t T,
                       const GpuParallel& parallel) {
  check_cuda_device(precision);
  check_data_parallel(B, parallel.micro_batches, parallel.ranks);
  int visible = 0;
  MINITX_CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (parallel.nccl) {
    MINITX_CHECK(parallel.ranks <= static_cast<std::size_t>(visible),
                 "train: --gpus {} needs {} GPUs, but this machine has {} visible", parallel.ranks, parallel.ranks,
                 visible);
    MINITX_CHECK(parallel.ranks == 1 || cuda::nccl_built(),
                 "train: --gpus {} needs NCCL (libnccl.so.2), but this build has none: nccl.h was not found beside "
                 "the CUDA headers when it was built",
                 parallel.ranks);
  }
  int current = 0;
  MINITX_CUDA_CHECK(cudaGetDevice(&current));
  // Simulated ranks share this GPU; NCCL's take one GPU each, 0..N-1.
  const std::size_t gpus = parallel.nccl ? parallel.ranks : 1;
  const double sharing = parallel.nccl ? 1.0 : static_cast<double>(parallel.ranks);
  cudaDeviceProp first{};
  for (std::size_t g = 0; g < gpus; ++g) {
    const int device = parallel.nccl ? static_cast<int>(g) : current;
    MINITX_CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    MINITX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    // One model of GPU: the kernels and cuBLASLt's algorithm choices, hence the bits, are per model.
    if (g == 0) first = prop;
    MINITX_CHECK(std::string(prop.name) == first.name && prop.major == first.major && prop.minor == first.minor,
                 "train: --gpus {} needs GPUs of one model for the same bits on every rank, but GPU 0 is {} (sm_{}{}) "
                 "and GPU {} is {} (sm_{}{})",
                 parallel.ranks, first.name, first.major, first.minor, device, prop.name, prop.major, prop.minor);
    std::size_t free = 0, total = 0;  // after this process's context, which the call creates
    MINITX_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    const std::string gpu = parallel.ranks > 1 && !parallel.nccl
                                ? fmt::format("GPU {} ({}, {} simulated ranks)", device, prop.name, parallel.ranks)
                                : fmt::format("GPU {} ({})", device, prop.name);
    const std::size_t micro_B = B / parallel.micro_batches;
    // First without the scratch: its sizes are products of the shapes in 64 bits, which a config
    // far too big for any GPU could overflow; the doubles of the rest cannot.
    for (const bool with_scratch : {false, true}) {
      TrainingMemory need = cuda_rank_memory(config, precision, B, T, parallel, with_scratch);
      need.state *= sharing;
      need.step *= sharing;
      check_gpu_memory(need, free, total, gpu, config, precision, micro_B, T);
    }
  }
  MINITX_CUDA_CHECK(cudaSetDevice(current));
}

std::unique_ptr<TrainEngine> make_cuda_engine(const ModelConfig& config, const std::string& precision, std::size_t B,
                                              std::size_t T, TrainState state, const GpuParallel& parallel) {
  check_cuda_memory(config, precision, B, T, parallel);
  if (precision == "bf16") return std::make_unique<CudaEngine<cuda::bf16>>(config, B, T, parallel, std::move(state));
  return std::make_unique<CudaEngine<float>>(config, B, T, parallel, std::move(state));
}
#else
double cuda_engine_scratch(const ModelConfig&, std::size_t, std::size_t) { return 0.0; }
// Refused before the host's state is allocated, naming what was asked for.
void check_cuda_memory(const ModelConfig&, const std::string&, std::size_t, std::size_t, const GpuParallel& parallel) {
  if (parallel.nccl)
    fail("train: --gpus {} needs a build with CUDA and NCCL, but this one has no CUDA (nvcc was not found when it "
         "was built; see `make help`)",
         parallel.ranks);
  fail("train: --device cuda, but this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}

std::unique_ptr<TrainEngine> make_cuda_engine(const ModelConfig&, const std::string&, std::size_t, std::size_t,
                                              TrainState, const GpuParallel&) {
  fail("train: --device cuda, but this build has no CUDA (nvcc was not found when it was built; see `make help`)");
}
#endif

}  // namespace minitx
