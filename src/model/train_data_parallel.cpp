// The CPU engine with micro-batches and simulated ranks (data_parallel.h): each rank is a thread
// with its own replica of the parameters and its own trainer, and owns one shard of the
// gradients and AdamW moments; they meet only through a Collective.
//
// The ranks share the process's thread pool: parallel_for serialises calls from different
// threads (threads.cpp's pool mutex) and a rank's math is its own (thread-local scratch is the
// calling rank's), so ranks interleave at the granularity of a parallel_for without changing any
// bits, and each call still uses every core.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

#include "minitx/backend/cpu/ops.h"
#include "minitx/core/error.h"
#include "minitx/core/memory.h"
#include "minitx/core/threads.h"
#include "minitx/infer/perplexity.h"
#include "minitx/model/collective.h"
#include "minitx/model/data_parallel.h"
#include "minitx/model/gpt.h"
#include "minitx/model/params.h"

namespace minitx {

static_assert(kShardChunk == cpu::kSumOfSquaresChunk, "the norm's chunks are the shards' unit");

std::vector<Shard> shard_plan(std::size_t P, std::size_t ranks, std::size_t chunk) {
  MINITX_CHECK(ranks >= 1 && chunk >= 1, "shard_plan: {} ranks of chunks of {}: expected at least 1 of each", ranks,
               chunk);
  const std::size_t chunks = (P + chunk - 1) / chunk;
  std::vector<Shard> plan(ranks);
  for (std::size_t r = 0; r < ranks; ++r)
    plan[r] = {std::min(P, chunks * r / ranks * chunk), std::min(P, chunks * (r + 1) / ranks * chunk)};
  return plan;
}

void gather_chunk_sums(Collective& c, const std::vector<Shard>& plan, double* sums) {
  const auto chunks = [&](const Shard& s) {
    return std::span<double>(sums + s.begin / kShardChunk, (s.size() + kShardChunk - 1) / kShardChunk);
  };
  const std::size_t N = c.size();
  std::vector<std::span<const std::byte>> send(N, std::as_bytes(chunks(plan[c.rank()])));
  std::vector<std::span<std::byte>> recv(N);
  for (std::size_t r = 0; r < N; ++r) recv[r] = std::as_writable_bytes(chunks(plan[r]));
  c.exchange(send, recv);  // my own span is sent to itself, in place: not copied
}

void check_data_parallel(std::size_t B, std::size_t micro_batches, std::size_t ranks) {
  MINITX_CHECK(micro_batches >= 1 && B % micro_batches == 0,
               "[train] micro_batches = {} does not divide batch_size = {}: each micro-batch takes batch_size / "
               "micro_batches whole sequences",
               micro_batches, B);
  MINITX_CHECK(ranks >= 1 && std::has_single_bit(ranks),
               "{} ranks: the number of ranks must be a power of two (1, 2, 4, 8, ...), so that each rank's "
               "micro-batches are one subtree of the summation tree",
               ranks);
  MINITX_CHECK(micro_batches % ranks == 0,
               "{} ranks do not divide [train] micro_batches = {}: every rank takes the same number of micro-batches; "
               "set micro_batches to a multiple of {}",
               ranks, micro_batches, ranks);
}

namespace {

// A gradient sum in the tree with its loss: the two are summed together, node by node.
struct Partial {
  double loss = 0.0;
  std::vector<float> grad;
};

void add_into(std::vector<float>& a, const std::vector<float>& b) {
  float* x = a.data();
  const float* y = b.data();
  parallel_for(a.size(), [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) x[i] += y[i];
  }, kShardChunk);
}

class Rank {
 public:
  Rank(const ModelConfig& config, std::size_t micro_B, std::size_t T, std::size_t step_tokens, Shard shard,
       std::vector<float> params, std::vector<float> m, std::vector<float> v)
      : model_(config), shard_(shard), m_(std::move(m)), v_(std::move(v)) {
    model_.storage = std::move(params);
    model_.params = bind_params(model_.data(), config);
    trainer_.emplace(model_, micro_B, T, step_tokens);
  }

  // Forward and backward of micro-batches [first, last) (`tokens` ids each), summed by the tree;
  // then this rank's shard of every rank's sum, summed by the tree over ranks; the global norm
  // and loss. Every rank returns the same stats.
  StepStats forward_backward(Collective& c, const std::uint32_t* ids, const std::uint32_t* targets,
                             std::size_t first, std::size_t last, std::size_t tokens,
                             const std::vector<Shard>& plan) {
    const std::size_t P = model_.size(), N = c.size();
    Partial local = tree_sum(
        first, last,
        [&](std::size_t i) {
          Partial p{trainer_->forward(ids + i * tokens, targets + i * tokens), take_buffer(P)};
          trainer_->backward(p.grad.data());
          return p;
        },
        [&](Partial a, Partial b) { return combine(std::move(a), std::move(b)); });

    // Reduce-scatter as an exchange of exact values: every rank's sum over my shard, then the tree.
    std::vector<std::vector<float>> received(N);
    std::vector<float*> parts(N);
    for (std::size_t r = 0; r < N; ++r) {
      received[r] = take_buffer(shard_.size());
      parts[r] = received[r].data();
    }
    exchange_shards<float>(c, plan, local.grad.data(), parts);
    give_buffer(std::move(local.grad));
    std::vector<double> losses(N);
    c.all_gather(&local.loss, losses.data(), sizeof(double));
    grad_ = tree_sum(
        0, N, [&](std::size_t r) { return std::move(received[r]); },
        [&](std::vector<float> a, std::vector<float> b) {
          add_into(a, b);
          give_buffer(std::move(b));
          return a;
        });
    StepStats stats;
    stats.loss = tree_sum(0, N, [&](std::size_t r) { return losses[r]; }, [](double a, double b) { return a + b; });

    // The norm: my shard's chunk sums, everyone's in chunk order, added in that order.
    std::vector<double> sums((model_.size() + kShardChunk - 1) / kShardChunk);
    cpu::sum_of_squares_chunks(grad_.data(), grad_.size(), sums.data() + shard_.begin / kShardChunk);
    gather_chunk_sums(c, plan, sums.data());
    double total = 0.0;
    for (double p : sums) total += p;
    stats.norm = std::sqrt(total);
    return stats;
  }

  // Clip my shard by the global norm, AdamW on it (the tensors' settings cut to the shard),
  // then every rank's updated shard into every replica.
  void update(Collective& c, const std::vector<AdamWSlice>& slices, float clip, const std::vector<Shard>& plan) {
    if (clip != 1.0f) cpu::scale_in_place(grad_.data(), grad_.size(), clip);
    for (const AdamWSlice& a : slices) {
      const std::size_t lo = std::max(a.offset, shard_.begin), hi = std::min(a.offset + a.count, shard_.end);
      if (lo >= hi) continue;
      const std::size_t at = lo - shard_.begin;
      const cpu::AdamWStep s{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.t};
      cpu::adamw_update(model_.data() + lo, grad_.data() + at, m_.data() + at, v_.data() + at, hi - lo, s);
    }
    gather_shards(c, plan, model_.data());
  }

  // Rank 0 receives every rank's moments into `m`, `v` (P floats each); the others send.
  void gather_moments(Collective& c, const std::vector<Shard>& plan, std::vector<float>& m, std::vector<float>& v) {
    for (auto [moments, full] : {std::pair{&m_, &m}, std::pair{&v_, &v}}) {
      std::vector<std::span<const std::byte>> send(c.size());
      std::vector<std::span<std::byte>> recv(c.size());
      send[0] = bytes_of(std::span<const float>(*moments));
      if (c.rank() == 0)
        for (std::size_t r = 0; r < c.size(); ++r)
          recv[r] = bytes_of(std::span<float>(*full).subspan(plan[r].begin, plan[r].size()));
      c.exchange(send, recv);
    }
  }

  const GptModel& model() const { return model_; }

 private:
  Partial combine(Partial a, Partial b) {
    add_into(a.grad, b.grad);
    give_buffer(std::move(b.grad));
    return {a.loss + b.loss, std::move(a.grad)};
  }
  // The tree holds at most one buffer per level plus the leaf's; they are kept between steps.
  std::vector<float> take_buffer(std::size_t n) {
    for (auto it = spare_.begin(); it != spare_.end(); ++it)
      if (it->size() == n) {
        std::vector<float> out = std::move(*it);
        spare_.erase(it);
        return out;
      }
    return zeros<float>(n, "a rank's gradient buffer");
  }
  void give_buffer(std::vector<float> b) {
    if (!b.empty()) spare_.push_back(std::move(b));
  }

  GptModel model_;
  Shard shard_;
  std::vector<float> m_, v_, grad_;  // my shard's moments and summed gradient
  std::vector<std::vector<float>> spare_;
  std::optional<GptTrainer> trainer_;
};

class DataParallelEngine final : public TrainEngine {
 public:
  DataParallelEngine(const ModelConfig& config, std::size_t B, std::size_t T, std::size_t micro_batches,
                     std::size_t ranks, TrainState state)
      : config_(config), B_(B), T_(T), M_(micro_batches), comms_(make_thread_collectives(ranks)) {
    check_data_parallel(B, micro_batches, ranks);
    const std::size_t P = param_count(config);
    MINITX_CHECK(state.params.size() == P && state.m.size() == P && state.v.size() == P,
                 "data parallel: a training state of {}, {} and {} floats for a model of {} parameters",
                 state.params.size(), state.m.size(), state.v.size(), P);
    plan_ = shard_plan(P, ranks);
    for (std::size_t r = 0; r < ranks; ++r) {
      const Shard s = plan_[r];
      const auto cut = [&](const std::vector<float>& full) {
        return std::vector<float>(full.begin() + static_cast<std::ptrdiff_t>(s.begin),
                                  full.begin() + static_cast<std::ptrdiff_t>(s.end));
      };
      // The last rank takes the host's copy of the parameters; the others a replica each.
      std::vector<float> params = r + 1 == ranks ? std::move(state.params) : state.params;
      ranks_.push_back(std::make_unique<Rank>(config, B / M_, T, B * T, s, std::move(params), cut(state.m),
                                              cut(state.v)));
    }
  }

  StepStats forward_backward(const std::uint32_t* ids, const std::uint32_t* targets) override {
    const std::size_t N = ranks_.size(), per_rank = M_ / N, tokens = B_ / M_ * T_;
    std::vector<StepStats> stats(N);
    run_ranks(comms_, [&](Collective& c) {
      const std::size_t r = c.rank();
      stats[r] = ranks_[r]->forward_backward(c, ids, targets, r * per_rank, (r + 1) * per_rank, tokens, plan_);
    });
    return stats[0];
  }

  void update(const TrainConfig& tc, double lr, const StepStats& stats, std::size_t step) override {
    // As the one-rank engine decides and rounds it (a factor of 1 changes nothing, so is skipped).
    const float clip =
        tc.grad_clip > 0 && stats.norm > tc.grad_clip ? static_cast<float>(tc.grad_clip / stats.norm) : 1.0f;
    const std::vector<AdamWSlice> slices = adamw_slices(config_, tc, lr, step);
    run_ranks(comms_, [&](Collective& c) { ranks_[c.rank()]->update(c, slices, clip, plan_); });
  }

  double evaluate(const std::vector<std::uint32_t>& val, std::size_t T, std::size_t B,
                  std::size_t max_windows) override {
    return evaluate_loss(ranks_[0]->model(), val, T, B, max_windows).mean_loss();
  }

  TrainState state() const override {
    TrainState s{ranks_[0]->model().storage, {}, {}};
    s.m.resize(s.params.size());
    s.v.resize(s.params.size());
    run_ranks(comms_, [&](Collective& c) { ranks_[c.rank()]->gather_moments(c, plan_, s.m, s.v); });
    return s;
  }
  std::string device() const override { return "cpu"; }
  std::string precision() const override { return "fp32"; }

 private:
  ModelConfig config_;
  std::size_t B_, T_, M_;
  std::vector<std::unique_ptr<Collective>> comms_;
  std::vector<Shard> plan_;
  std::vector<std::unique_ptr<Rank>> ranks_;
};

}  // namespace

std::unique_ptr<TrainEngine> make_cpu_data_parallel_engine(const ModelConfig& config, std::size_t B, std::size_t T,
                                                           std::size_t micro_batches, std::size_t ranks,
                                                           TrainState state) {
  return std::make_unique<DataParallelEngine>(config, B, T, micro_batches, ranks, std::move(state));
}

}  // namespace minitx
