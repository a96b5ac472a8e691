// Data parallelism on simulated ranks (threads): the micro-batch tree, the shards, the chunked
// norm, the collective's failure path, and N ranks against one, bit for bit.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "data_parallel_util.h"
#include "minitx/backend/cpu/ops.h"
#include "minitx/core/config.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/sha256.h"
#include "minitx/model/checkpoint.h"
#include "minitx/model/collective.h"
#include "minitx/model/data_parallel.h"
#include "minitx/model/params.h"
#include "minitx/model/train.h"
#include "minitx/model/train_engine.h"

using namespace minitx;
namespace fs = std::filesystem;

namespace {

ModelConfig dp_model() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_embd = 32;
  m.n_head = 2;
  m.context = 16;
  m.vocab_size = 40;
  return m;
}

TrainConfig dp_train(std::size_t steps, std::size_t micro_batches) {
  return test::dp_train_config(steps, micro_batches, 8);
}

std::vector<std::uint32_t> stream(std::size_t n, std::uint32_t vocab) {
  const CounterRng rng(5, 9);
  std::vector<std::uint32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint32_t>(rng.below(i, vocab));
  return out;
}

TrainState initial_state(const ModelConfig& m, std::uint64_t seed) { return test::seeded_state(m, seed); }

// `steps` steps of an engine on batches drawn from `data`; the final state, the stats' bits.
struct Trace {
  TrainState state;
  std::vector<double> losses, norms;
};
Trace drive(TrainEngine& engine, const TrainConfig& tc, std::size_t T, const std::vector<std::uint32_t>& data) {
  const std::size_t B = tc.batch_size;
  std::vector<std::uint32_t> ids(B * T), targets(B * T);
  Trace out;
  for (std::size_t step = 0; step < tc.steps; ++step) {
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t) {
        const std::size_t s0 = batch_start(tc, step, b, data.size(), T);
        ids[b * T + t] = data[s0 + t];
        targets[b * T + t] = data[s0 + t + 1];
      }
    const StepStats s = engine.forward_backward(ids.data(), targets.data());
    engine.update(tc, learning_rate_at(tc, step), s, step + 1);
    out.losses.push_back(s.loss);
    out.norms.push_back(s.norm);
  }
  out.state = engine.state();
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

std::string train_run(const fs::path& dir, const TrainConfig& t, const std::vector<std::uint32_t>& data,
                      TrainOptions options, std::string* log = nullptr) {
  TrainInputs in{&data, &data, std::string(64, 'a'), std::string(64, 'b')};
  TrainOutputs out{dir / "model.ckpt", dir / "train_log.csv", dir / "train_times.csv", dir / "train_device.json",
                   dir / "resume"};
  options.progress = false;
  train_model(dp_model(), t, in, out, options);
  if (log != nullptr && fs::exists(out.log)) *log = read_file(out.log);
  return fs::exists(out.checkpoint) ? read_file(out.checkpoint) : std::string();
}

}  // namespace

TEST_CASE("data parallel: the midpoint tree sums in the documented order") {
  const auto shape = [](std::size_t n) {
    return tree_sum(
        0, n, [](std::size_t i) { return std::to_string(i); },
        [](std::string a, std::string b) { return "(" + a + "+" + b + ")"; });
  };
  CHECK(shape(1) == "0");
  CHECK(shape(4) == "((0+1)+(2+3))");
  CHECK(shape(8) == "(((0+1)+(2+3))+((4+5)+(6+7)))");
  CHECK(shape(6) == "((0+(1+2))+(3+(4+5)))");
  // Floats whose sum depends on the order: the tree gives ((1e8+1)+(-1e8+1)) = 1e8 + -1e8 = 0,
  // left to right gives 1.
  const std::vector<float> v{1e8f, 1.0f, -1e8f, 1.0f};
  const float tree = tree_sum(0, 4, [&](std::size_t i) { return v[i]; }, [](float a, float b) { return a + b; });
  float serial = 0.0f;
  for (float x : v) serial += x;
  CHECK(tree == 0.0f);
  CHECK(serial == 1.0f);
  // A rank's block of micro-batches is a subtree: the tree of 8 equals the tree over 2 ranks of 4.
  CHECK(shape(8) == "(" + std::string("((0+1)+(2+3))") + "+" + "((4+5)+(6+7))" + ")");
}

TEST_CASE("data parallel: shard plans cover the parameters in whole chunks, evenly") {
  for (const std::size_t P : {std::size_t{1}, std::size_t{4096}, std::size_t{4097}, std::size_t{10 * 4096 + 7},
                              std::size_t{123457}})
    for (const std::size_t N : {1, 2, 4, 8, 16}) {
      CAPTURE(P);
      CAPTURE(N);
      const std::vector<Shard> plan = shard_plan(P, N);
      REQUIRE(plan.size() == N);
      CHECK(plan.front().begin == 0);
      CHECK(plan.back().end == P);
      std::size_t smallest = P, largest = 0;
      for (std::size_t r = 0; r < N; ++r) {
        CHECK(plan[r].begin <= plan[r].end);
        if (r > 0) CHECK(plan[r].begin == plan[r - 1].end);
        CHECK((plan[r].begin % kShardChunk == 0 || plan[r].begin == P));
        smallest = std::min(smallest, plan[r].size());
        largest = std::max(largest, plan[r].size());
      }
      CHECK(largest - smallest <= kShardChunk);
      // Optimizer state per rank (its shard of m and v) is about 1/N of the whole.
      const std::size_t chunks = (P + kShardChunk - 1) / kShardChunk;
      CHECK(largest <= ((chunks + N - 1) / N) * kShardChunk);
    }
}

TEST_CASE("data parallel: the norm's chunk sums over any shard split equal one rank's sum of squares") {
  const std::size_t P = 7 * 4096 + 301;
  std::vector<float> g(P);
  const CounterRng rng(1, 2);
  for (std::size_t i = 0; i < P; ++i) g[i] = static_cast<float>(rng.uniform(i) - 0.5) * (i % 97 == 0 ? 1e3f : 1.0f);
  const double one = cpu::sum_of_squares(g.data(), P);
  for (const std::size_t N : {1, 2, 4, 8, 16}) {
    CAPTURE(N);
    double total = 0.0;
    for (const Shard& s : shard_plan(P, N)) {
      std::vector<double> part((s.size() + kShardChunk - 1) / kShardChunk);
      cpu::sum_of_squares_chunks(g.data() + s.begin, s.size(), part.data());
      for (double p : part) total += p;
    }
    CHECK(std::memcmp(&total, &one, sizeof(double)) == 0);
  }
}

TEST_CASE("data parallel: the thread collective gathers, exchanges and broadcasts exact bytes") {
  const auto comms = make_thread_collectives(4);
  std::vector<std::vector<float>> gathered(4), got(4);
  std::vector<double> broadcast(4);
  run_ranks(comms, [&](Collective& c) {
    const std::size_t me = c.rank();
    const float mine[2] = {static_cast<float>(me), static_cast<float>(10 * me)};
    gathered[me].resize(8);
    c.all_gather(mine, gathered[me].data(), sizeof(mine));
    // Rank r sends r+s+1 floats of value 100r+s to rank s.
    std::vector<std::vector<float>> out(4), in(4);
    std::vector<std::span<const std::byte>> send(4);
    std::vector<std::span<std::byte>> recv(4);
    for (std::size_t s = 0; s < 4; ++s) {
      out[s].assign(me + s + 1, static_cast<float>(100 * me + s));
      in[s].resize(s + me + 1);
      send[s] = bytes_of(std::span<const float>(out[s]));
      recv[s] = bytes_of(std::span<float>(in[s]));
    }
    c.exchange(send, recv);
    for (std::size_t r = 0; r < 4; ++r) got[me].insert(got[me].end(), in[r].begin(), in[r].end());
    double value = me == 2 ? 3.25 : 0.0;
    c.broadcast(&value, sizeof(value), 2);
    c.barrier();
    broadcast[me] = value;
  });
  for (std::size_t me = 0; me < 4; ++me) {
    CHECK(gathered[me] == std::vector<float>{0, 0, 1, 10, 2, 20, 3, 30});
    std::vector<float> want;
    for (std::size_t r = 0; r < 4; ++r) want.insert(want.end(), r + me + 1, static_cast<float>(100 * r + me));
    CHECK(got[me] == want);
    CHECK(broadcast[me] == 3.25);
  }
}

TEST_CASE("data parallel: the thread collective moves bytes through the ranks' movers, settled at each rendezvous") {
  // What the GPU's ranks rely on: every copy goes through the receiving rank's mover (its
  // stream), and the mover settles before the rank arrives at any rendezvous, so what it posted
  // is written and what it copied has arrived before anyone goes on.
  struct Counting final : ByteMover {
    std::atomic<int>& copies;
    std::atomic<int>& settles;
    bool pending = false;  // a copy made since the last settle (read by the rank's own thread)
    Counting(std::atomic<int>& c, std::atomic<int>& s) : copies(c), settles(s) {}
    void copy(void* to, const void* from, std::size_t bytes) override {
      std::memcpy(to, from, bytes);
      ++copies;
      pending = true;
    }
    void settle() override {
      ++settles;
      pending = false;
    }
  };
  std::atomic<int> copies{0}, settles{0}, unsettled{0};
  std::vector<std::unique_ptr<ByteMover>> movers;
  std::vector<Counting*> seen;
  for (int r = 0; r < 2; ++r) {
    auto m = std::make_unique<Counting>(copies, settles);
    seen.push_back(m.get());
    movers.push_back(std::move(m));
  }
  const auto comms = make_thread_collectives(2, std::move(movers));
  std::vector<std::vector<float>> gathered(2, std::vector<float>(2));
  run_ranks(comms, [&](Collective& c) {
    const float mine = static_cast<float>(c.rank() + 1);
    c.all_gather(&mine, gathered[c.rank()].data(), sizeof(float));
    if (seen[c.rank()]->pending) ++unsettled;
    c.barrier();
  });
  for (const auto& g : gathered) CHECK(g == std::vector<float>{1.0f, 2.0f});
  CHECK(copies == 4);    // each rank copies both ranks' values, its own included
  CHECK(settles == 6);   // two arrivals for the all-gather, one for the barrier, on each rank
  CHECK(unsettled == 0);  // no copy is left unsettled when a collective returns
  CHECK_THROWS_WITH_AS(make_thread_collectives(2, [] {
                         std::vector<std::unique_ptr<ByteMover>> one;
                         one.push_back(nullptr);
                         return one;
                       }()),
                       doctest::Contains("a group of 2 ranks given 1 byte movers"), Error);
}

TEST_CASE("data parallel: a failing rank stops every rank, and the error names it") {
  for (const bool early : {false, true}) {
    CAPTURE(early);
    const auto comms = make_thread_collectives(4);
    std::atomic<int> returned{0};
    CHECK_THROWS_WITH_AS(run_ranks(comms,
                                   [&](Collective& c) {
                                     struct Count {
                                       std::atomic<int>& n;
                                       ~Count() { ++n; }
                                     } count{returned};
                                     double x = 1.0, all[4];
                                     if (!early) c.all_gather(&x, all, sizeof(x));
                                     if (c.rank() == 2) throw std::runtime_error("boom");
                                     for (int i = 0; i < 1000000; ++i) c.all_gather(&x, all, sizeof(x));
                                   }),
                         doctest::Contains("rank 2 of 4 failed: boom"), Error);
    CHECK(returned == 4);
    // The group stays stopped: a later collective fails at once instead of waiting.
    CHECK_THROWS_WITH_AS(run_ranks(comms, [](Collective& c) { c.barrier(); }), doctest::Contains("rank 2 of 4 failed"),
                         Error);
  }
}

TEST_CASE("data parallel: layouts that cannot keep the bits are refused, naming the values") {
  CHECK_THROWS_WITH_AS(check_data_parallel(8, 3, 1), doctest::Contains("micro_batches = 3 does not divide batch_size = 8"),
                       Error);
  CHECK_THROWS_WITH_AS(check_data_parallel(8, 4, 3), doctest::Contains("3 ranks: the number of ranks must be a power of two"),
                       Error);
  CHECK_THROWS_WITH_AS(check_data_parallel(8, 2, 4), doctest::Contains("4 ranks do not divide [train] micro_batches = 2"),
                       Error);
  CHECK_NOTHROW(check_data_parallel(8, 4, 4));
  const ConfigFile file = ConfigFile::parse("[train]\nbatch_size = 6\nsteps = 3\nlearning_rate = 0.001\nmicro_batches = 4\n",
                                            "t.toml");
  CHECK_THROWS_WITH_AS(parse_train_config(file.root().table("train")),
                       doctest::Contains("micro_batches: must divide batch_size = 6, got 4"), Error);
  const ConfigFile good = ConfigFile::parse("[train]\nbatch_size = 6\nsteps = 3\nlearning_rate = 0.001\nmicro_batches = 3\n",
                                            "t.toml");
  CHECK(parse_train_config(good.root().table("train")).micro_batches == 3);
  // The layout is checked before the device is looked at: the same answer with or without a GPU.
  TempDir dir;
  const auto data = stream(2000, 40);
  TrainOptions gpu;
  gpu.device = "cuda";
  gpu.simulated_ranks = 3;
  CHECK_THROWS_WITH_AS(train_run(dir.path(), dp_train(2, 4), data, gpu), doctest::Contains("power of two"), Error);
  TrainOptions gpus;
  gpus.device = "cuda";
  gpus.gpus = 4;
  CHECK_THROWS_WITH_AS(train_run(dir.path(), dp_train(2, 2), data, gpus),
                       doctest::Contains("4 ranks do not divide [train] micro_batches = 2"), Error);
  gpus.simulated_ranks = 2;
  CHECK_THROWS_WITH_AS(train_run(dir.path(), dp_train(2, 4), data, gpus),
                       doctest::Contains("--gpus 4 and --simulate-ranks 2"), Error);
  TrainOptions cpu_gpus;
  cpu_gpus.device = "cpu";
  cpu_gpus.gpus = 2;
  CHECK_THROWS_WITH_AS(train_run(dir.path(), dp_train(2, 2), data, cpu_gpus),
                       doctest::Contains("--gpus 2 trains on GPUs, not on the cpu"), Error);
  TrainOptions three;
  three.simulated_ranks = 3;
  CHECK_THROWS_WITH_AS(train_run(dir.path(), dp_train(2, 4), data, three), doctest::Contains("power of two"), Error);
}

TEST_CASE("data parallel: one rank with one micro-batch is the cpu engine, bit for bit") {
  const ModelConfig m = dp_model();
  const TrainConfig tc = dp_train(4, 1);
  const auto data = stream(3000, 40);
  const auto old_engine = make_cpu_engine(m, tc.batch_size, tc.seq_len, initial_state(m, 3));
  const auto dp_engine = make_cpu_data_parallel_engine(m, tc.batch_size, tc.seq_len, 1, 1, initial_state(m, 3));
  const Trace a = drive(*old_engine, tc, tc.seq_len, data), b = drive(*dp_engine, tc, tc.seq_len, data);
  CHECK(same_bits(a.losses, b.losses));
  CHECK(same_bits(a.norms, b.norms));
  CHECK(same_bits(a.state.params, b.state.params));
  CHECK(same_bits(a.state.m, b.state.m));
  CHECK(same_bits(a.state.v, b.state.v));
}

TEST_CASE("data parallel: 2 and 4 ranks give one rank's bits for the same micro-batches") {
  const ModelConfig m = dp_model();
  const TrainConfig tc = dp_train(4, 4);
  const auto data = stream(3000, 40);
  REQUIRE(param_count(m) > 4 * kShardChunk);  // every rank holds a shard, and shards cut tensors
  const auto one = make_cpu_data_parallel_engine(m, tc.batch_size, tc.seq_len, 4, 1, initial_state(m, 3));
  const Trace a = drive(*one, tc, tc.seq_len, data);
  // Micro-batches change the bits (another summation order) but not the quantity: the loss is the same mean.
  const auto whole = make_cpu_engine(m, tc.batch_size, tc.seq_len, initial_state(m, 3));
  const Trace w = drive(*whole, tc, tc.seq_len, data);
  CHECK(a.losses.front() == doctest::Approx(w.losses.front()).epsilon(1e-6));
  CHECK(a.norms.front() == doctest::Approx(w.norms.front()).epsilon(1e-4));
  for (const std::size_t N : {2, 4}) {
    CAPTURE(N);
    const auto many = make_cpu_data_parallel_engine(m, tc.batch_size, tc.seq_len, 4, N, initial_state(m, 3));
    const Trace b = drive(*many, tc, tc.seq_len, data);
    CHECK(same_bits(a.losses, b.losses));
    CHECK(same_bits(a.norms, b.norms));
    CHECK(same_bits(a.state.params, b.state.params));
    CHECK(same_bits(a.state.m, b.state.m));
    CHECK(same_bits(a.state.v, b.state.v));
  }
  // More ranks than the parameters have chunks: one rank's shard is empty, and nothing changes.
  const TrainConfig tc8 = dp_train(3, 8);
  REQUIRE(shard_plan(param_count(m), 8).front().size() == 0);
  const auto one8 = make_cpu_data_parallel_engine(m, tc8.batch_size, tc8.seq_len, 8, 1, initial_state(m, 3));
  const auto eight = make_cpu_data_parallel_engine(m, tc8.batch_size, tc8.seq_len, 8, 8, initial_state(m, 3));
  const Trace c = drive(*one8, tc8, tc8.seq_len, data), d = drive(*eight, tc8, tc8.seq_len, data);
  CHECK(same_bits(c.norms, d.norms));
  CHECK(same_bits(c.state.params, d.state.params));
  CHECK(same_bits(c.state.m, d.state.m));
  CHECK(same_bits(c.state.v, d.state.v));
}

TEST_CASE("data parallel: checkpoints are the same bytes for any rank count, and resume with another") {
  const auto data = stream(3000, 40);
  const TrainConfig tc = dp_train(7, 4);
  TempDir a, b, c;
  std::string log_one, log_resumed;
  const std::string one = train_run(a.path(), tc, data, {}, &log_one);
  REQUIRE(!one.empty());
  TrainOptions four;
  four.simulated_ranks = 4;
  CHECK(train_run(b.path(), tc, data, four) == one);
  // Stopped after 4 steps on 4 ranks, finished on 2.
  four.stop_after = 4;
  CHECK(train_run(c.path(), tc, data, four).empty());
  CHECK(read_checkpoint(c.path() / "resume" / "model.ckpt").step == 4);
  TrainOptions two;
  two.simulated_ranks = 2;
  two.resume = c.path() / "resume" / "model.ckpt";
  CHECK(train_run(c.path(), tc, data, two, &log_resumed) == one);
  CHECK(log_resumed == log_one);
}

TEST_CASE("data parallel: micro_batches = 1 trains the bytes of the release before it") {
  // The SHA-256 of this run's checkpoint from main at 9f0edc8 (before micro-batches existed): the
  // same train_model call, compiled against main's headers and linked with main's build/obj
  // objects, on an x86-64 machine with AVX-512 (also with MINITX_GEMM_ISA=avx2 and
  // MINITX_THREADS=1: the same hash).
  TempDir dir;
  const auto data = stream(3000, 40);
  CHECK(sha256_hex(train_run(dir.path(), dp_train(7, 1), data, {})) ==
        "cfe583b1d098b43e51578b660f5d7c5f21be55c67de384a22e0fe3ccad81a431");
}

TEST_CASE("data parallel: a rank that fails in its step stops the others, and the error names it") {
  const ModelConfig m = dp_model();
  const std::size_t B = 8, T = 8;
  const auto engine = make_cpu_data_parallel_engine(m, B, T, 4, 2, initial_state(m, 3));
  std::vector<std::uint32_t> ids(B * T, 1), targets(B * T, 2);
  targets[7 * T + 3] = 999;  // in the last micro-batch: rank 1's
  CHECK_THROWS_WITH_AS(engine->forward_backward(ids.data(), targets.data()), doctest::Contains("rank 1 of 2 failed: "),
                       Error);
  // The group stays stopped: the engine cannot be used after a failure (the run stops), and says why.
  CHECK_THROWS_WITH_AS(engine->forward_backward(ids.data(), targets.data()), doctest::Contains("rank 1 of 2 failed: "),
                       Error);
}
