// The CUDA sampler (minitx/backend/cuda/sampling.h) against the CPU's sample_token: the same
// token, exactly, for every row of random and adversarial logits (ties everywhere, NaN, ±inf,
// ±0, neighbours one ulp apart, V = 1, V = 50,304, V = 2^24) under thousands of (seed, index,
// temperature, top_k, top_p) combinations; the padding past V in a row is +inf, so a kernel that
// read it would pick it. The output is poisoned before every call, so a row left unwritten fails.
// Then the sampler captured in a CUDA graph, its draw indices advanced on the device between
// replays and new logits uploaded before each, against the CPU at every step.
//
// In a build without CUDA this file compiles to nothing; in a CUDA build on a machine without a
// GPU the cases exist and are skipped (tests/gpu.h).
#include <doctest/doctest.h>

#if MINITX_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "gpu.h"
#include "helpers.h"
#include "minitx/backend/cuda/buffer.h"
#include "minitx/backend/cuda/check.h"
#include "minitx/backend/cuda/sampling.h"
#include "minitx/infer/sampling.h"

namespace gpu = minitx::cuda;
using minitx::SamplingConfig;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// rows × ld logits on the host and the device; entries past V in a row are +inf.
struct Logits {
  std::size_t rows, V, ld;
  std::vector<float> host;
  gpu::DeviceBuffer<float> device;

  Logits(std::size_t rows_, std::size_t V_, std::size_t ld_)
      : rows(rows_), V(V_), ld(ld_), host(rows_ * ld_, kInf), device(rows_ * ld_) {}
  float& at(std::size_t r, std::size_t v) { return host[r * ld + v]; }
  std::span<const float> row(std::size_t r) const { return std::span(host).subspan(r * ld, V); }
  void upload() { device.upload(host); }
};

std::string describe(const SamplingConfig& c) {
  std::ostringstream out;
  out << "temperature " << c.temperature << ", top_k " << c.top_k << ", top_p " << c.top_p << ", seed " << c.seed;
  return out.str();
}

// Samples every config on every row on the GPU (fresh random indices per config) and compares with
// sample_token. Returns the number of comparisons; every mismatch fails a check that names it.
std::size_t compare(const Logits& logits, const std::vector<SamplingConfig>& configs, std::uint64_t index_seed) {
  const std::size_t rows = logits.rows;
  gpu::DeviceBuffer<unsigned char> scratch(gpu::sample_scratch_bytes(rows, logits.V, SamplingConfig{}));
  gpu::DeviceBuffer<std::uint64_t> index(rows);
  gpu::DeviceBuffer<std::uint32_t> out(rows);
  std::mt19937_64 gen(index_seed);
  std::size_t compared = 0, wrong = 0;
  for (const SamplingConfig& c : configs) {
    std::vector<std::uint64_t> host_index(rows);
    for (std::size_t r = 0; r < rows; ++r) host_index[r] = r % 3 == 0 ? gen() % 1000 : gen();
    index.upload(host_index);
    MINITX_CUDA_CHECK(cudaMemset(out.get(), 0xff, rows * sizeof(std::uint32_t)));
    gpu::sample_tokens(out.get(), logits.device.get(), rows, logits.V, logits.ld, c, index.get(), scratch.get(), nullptr);
    const std::vector<std::uint32_t> got = out.download();
    for (std::size_t r = 0; r < rows; ++r, ++compared) {
      const std::uint32_t want = minitx::sample_token(logits.row(r), c, host_index[r]);
      if (got[r] != want && ++wrong <= 10)
        FAIL_CHECK("row " << r << ", index " << host_index[r] << ", " << describe(c) << ": GPU " << got[r] << ", CPU " << want);
    }
  }
  CHECK(wrong == 0);
  return compared;
}

std::vector<SamplingConfig> sweep(std::size_t V, const std::vector<double>& temperatures, std::vector<std::size_t> top_ks,
                                  const std::vector<double>& top_ps) {
  std::vector<SamplingConfig> out;
  std::uint64_t seed = 0;
  for (double t : temperatures)
    for (std::size_t k : top_ks)
      for (double p : top_ps) {
        // Seeds 0 and 2^64 - 1 among ordinary ones: the key's words at both extremes.
        const std::uint64_t s = seed % 5 == 0 ? 0 : seed % 5 == 1 ? ~std::uint64_t{0} : seed * 0x9E3779B97F4A7C15u;
        out.push_back({t, std::min(k, V + 3), p, s});
        ++seed;
      }
  return out;
}

std::vector<SamplingConfig> full_sweep(std::size_t V) {
  return sweep(V, {0.0, 1e-3, 0.3, 0.7, 1.0, 1.7, 100.0}, {0, 1, 2, 7, 40, V > 1 ? V - 1 : 0, V, V + 3},
               {0.0, 1e-9, 0.3, 0.9, 0.95, 0.999, 1.0});
}

void fill_normal(Logits& l, std::uint32_t seed, float sigma) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  for (std::size_t r = 0; r < l.rows; ++r)
    for (std::size_t v = 0; v < l.V; ++v) l.at(r, v) = normal(gen);
}

}  // namespace

GPU_TEST_CASE("sampling picks the CPU's token on random logits") {
  Logits l(8, 1000, 1003);
  fill_normal(l, 1, 3.0f);
  l.upload();
  CHECK(compare(l, full_sweep(l.V), 1) == 392 * 8);
}

GPU_TEST_CASE("sampling picks the CPU's token on logits full of ties") {
  Logits l(8, 333, 340);
  std::mt19937 gen(2);
  const float values[] = {-1.0f, 0.0f, 0.5f, 2.0f, 2.0f, 2.0f};
  for (std::size_t r = 0; r < l.rows; ++r)
    for (std::size_t v = 0; v < l.V; ++v) l.at(r, v) = r == 7 ? 1.25f : values[gen() % (r < 4 ? 6 : 3)];
  l.upload();
  compare(l, full_sweep(l.V), 2);
}

GPU_TEST_CASE("sampling picks the CPU's token on NaN, infinities, signed zeros and ulp neighbours") {
  Logits l(9, 61, 64);
  std::mt19937 gen(3);
  const float denormal = std::numeric_limits<float>::denorm_min();
  for (std::size_t v = 0; v < l.V; ++v) {
    l.at(0, v) = v % 7 == 3 ? static_cast<float>(v) * 0.1f : kNaN;     // mostly NaN
    l.at(1, v) = v % 5 == 0 ? kInf : v % 5 == 1 ? -kInf : 1.0f;      // ±inf among numbers
    l.at(2, v) = -kInf;                                               // all -inf: uniform
    l.at(3, v) = kNaN;                                                // all NaN: the first
    l.at(4, v) = v % 2 == 0 ? -0.0f : 0.0f;                          // signed zeros tie
    l.at(5, v) = std::nextafter(1.0f, v % 3 == 0 ? 2.0f : 0.0f);      // one ulp apart
    l.at(6, v) = v % 2 == 0 ? 3e38f : -3e38f;                         // differences past float's range
    l.at(7, v) = static_cast<float>(gen() % 4) * denormal;            // denormals
    l.at(8, v) = v == 60 ? 5.0f : v % 4 == 0 ? kNaN : 4.999f;         // the maximum last
  }
  l.upload();
  compare(l, full_sweep(l.V), 3);
}

GPU_TEST_CASE("sampling picks the CPU's token for V = 1 and for equal logits across argmax chunks") {
  Logits one(4, 1, 1);
  for (std::size_t r = 0; r < one.rows; ++r) one.at(r, 0) = static_cast<float>(r) - 1.0f;
  one.upload();
  compare(one, full_sweep(1), 4);
  for (std::size_t V : {2047, 2048, 2049, 4097, 8193}) {  // around the argmax's 2048 logits per block
    CAPTURE(V);
    Logits equal(3, V, V + 1);
    for (std::size_t v = 0; v < V; ++v) {
      equal.at(0, v) = 0.5f;
      equal.at(1, v) = v + 1 == V ? 1.0f : 0.5f;  // the largest at the very end
      equal.at(2, v) = v == 2048 % V ? 1.0f : -1.0f;
    }
    equal.upload();
    compare(equal, sweep(V, {0.0, 1.0}, {0, 5}, {0.5, 1.0}), 5);
  }
}

GPU_TEST_CASE("sampling picks the CPU's token at V = 50,304 and at V = 2^24") {
  Logits pythia(4, 50304, 50304);
  fill_normal(pythia, 6, 2.0f);
  pythia.at(1, 7) = pythia.at(1, 50000) = 40.0f;  // a tied maximum
  pythia.upload();
  CHECK(compare(pythia, sweep(pythia.V, {0.0, 0.7, 1.0, 1.5}, {0, 1, 40, 50304}, {0.9, 1.0}), 7) == 32 * 4);
  Logits huge(1, std::size_t{1} << 24, std::size_t{1} << 24);
  fill_normal(huge, 8, 1.0f);
  huge.upload();
  compare(huge, sweep(huge.V, {0.0, 1.0}, {0, 40}, {0.9, 1.0}), 9);
}

GPU_TEST_CASE("sampling in a captured graph draws anew at each replay as the device advances the index") {
  const std::size_t rows = 3, V = 50304, ld = 50304 + 16;
  struct Stream {
    cudaStream_t s = nullptr;
    Stream() { MINITX_CUDA_CHECK(cudaStreamCreate(&s)); }
    ~Stream() { cudaStreamDestroy(s); }
  } stream;
  const std::vector<std::uint64_t> start = {5, 1000, std::uint64_t{1} << 40};
  for (const SamplingConfig& c : {SamplingConfig{0.8, 40, 0.95, 7}, SamplingConfig{1.0, 0, 1.0, 8}, SamplingConfig{0.0, 0, 1.0, 9}}) {
    CAPTURE(describe(c));
    Logits l(rows, V, ld);
    gpu::DeviceBuffer<unsigned char> scratch(gpu::sample_scratch_bytes(rows, V, c));
    gpu::DeviceBuffer<std::uint64_t> index(rows);
    gpu::DeviceBuffer<std::uint32_t> out(rows);
    index.upload(start);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    MINITX_CUDA_CHECK(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal));
    gpu::sample_tokens(out.get(), l.device.get(), rows, V, ld, c, index.get(), scratch.get(), stream.s);
    gpu::advance_indices(index.get(), rows, 1, stream.s);
    MINITX_CUDA_CHECK(cudaStreamEndCapture(stream.s, &graph));
    MINITX_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    std::size_t wrong = 0, changed = 0;
    std::vector<std::vector<std::uint32_t>> history;
    for (std::uint64_t step = 0; step < 20; ++step) {
      fill_normal(l, static_cast<std::uint32_t>(100 + step % 2), 1.5f);  // two sets of logits, alternating
      l.device.upload(l.host, stream.s);
      MINITX_CUDA_CHECK(cudaMemsetAsync(out.get(), 0xff, rows * sizeof(std::uint32_t), stream.s));
      MINITX_CUDA_CHECK(cudaGraphLaunch(exec, stream.s));
      std::vector<std::uint32_t> got(rows);
      out.download(got.data(), rows, stream.s);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::uint32_t want = minitx::sample_token(l.row(r), c, start[r] + step);
        if (got[r] != want && ++wrong <= 10) FAIL_CHECK("step " << step << ", row " << r << ": GPU " << got[r] << ", CPU " << want);
        changed += step >= 2 && got[r] != history[step - 2][r];  // the same logits, the next index
      }
      history.push_back(got);
    }
    CHECK(wrong == 0);
    if (c.temperature > 0) CHECK(changed > 0);  // the draws moved with the index
    std::vector<std::uint64_t> final_index(rows);
    index.download(final_index.data(), rows, stream.s);
    for (std::size_t r = 0; r < rows; ++r) CHECK(final_index[r] == start[r] + 20);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
}

GPU_TEST_CASE("sampling on the GPU rejects bad arguments with the CPU's messages") {
  gpu::DeviceBuffer<float> logits(16);
  gpu::DeviceBuffer<std::uint32_t> out(2);
  gpu::DeviceBuffer<std::uint64_t> index(2);
  gpu::DeviceBuffer<unsigned char> scratch(gpu::sample_scratch_bytes(2, 8, SamplingConfig{}));
  const SamplingConfig ok{1.0, 0, 1.0, 0};
  const auto run = [&](std::size_t rows, std::size_t V, std::size_t ld, const SamplingConfig& c, const std::uint64_t* idx) {
    gpu::sample_tokens(out.get(), logits.get(), rows, V, ld, c, idx, scratch.get(), nullptr);
  };
  CHECK_ERROR_CONTAINS(run(2, 0, 8, ok, index.get()), "no logits (V = 0)");
  CHECK_ERROR_CONTAINS(run(2, 8, 7, ok, index.get()), "ld = 7 is less than V = 8");
  CHECK_ERROR_CONTAINS(run(70000, 8, 8, ok, index.get()), "rows = 70000");
  CHECK_ERROR_CONTAINS(run(2, 8, 8, SamplingConfig{-1.0, 0, 1.0, 0}, index.get()), "temperature = -1");
  CHECK_ERROR_CONTAINS(run(2, 8, 8, SamplingConfig{1.0, 0, 2.0, 0}, index.get()), "top_p = 2 is outside [0, 1]");
  CHECK_ERROR_CONTAINS(run(2, 8, 8, ok, nullptr), "index is null");
  CHECK_ERROR_CONTAINS(gpu::sample_tokens(nullptr, logits.get(), 2, 8, 8, ok, index.get(), scratch.get(), nullptr), "must be device pointers");
  CHECK_ERROR_CONTAINS(gpu::sample_tokens(out.get(), logits.get(), 2, 8, 8, ok, index.get(), nullptr, nullptr), "scratch is null");
  CHECK(gpu::sample_scratch_bytes(2, 8, SamplingConfig{0.0, 0, 1.0, 0}) == 0);  // a one-chunk argmax needs none
  run(2, 8, 8, SamplingConfig{0.0, 0, 1.0, 0}, nullptr);                         // greedy reads no index
  MINITX_CUDA_CHECK(cudaDeviceSynchronize());
}

#endif  // MINITX_CUDA
