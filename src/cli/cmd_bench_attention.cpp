// minitx bench attention: block-sparse attention forward and forward+backward on the GPU, per
// pattern and sequence length at a fixed number of tokens (B·T), timed with CUDA events (median
// of --reps after warm-up, inputs rotating over several buffers so no run finds the previous
// one's data in L2). --export-masks writes each layout for scripts/peers/attention_peer.py, so
// PyTorch's FlexAttention runs on exactly the same masks.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/sparse/layout.h"

#if MINITX_CUDA
#include <cuda_runtime.h>

#include "minitx/backend/cuda/attention.h"
#include "minitx/backend/cuda/check.h"
#include "minitx/core/rng.h"
#endif

namespace minitx::cli {
namespace {

namespace sp = sparse;

// The patterns by name. The first four are the peer script's masks (torch_peers.py, block 128:
// W = 2 blocks, stride 8, its hash-drawn BigBird); the rest are ours.
sp::BlockLayout make_pattern(const std::string& name, std::int32_t T, std::int32_t block) {
  if (name == "causal") return sp::dense_causal(T, block);
  if (name == "local") return sp::local(T, block, 2);
  if (name == "strided") return sp::strided(T, block, 2, 8);
  if (name == "bigbird_peer")
    return sp::layout_from_predicate(T, block, 1, [](std::int32_t, std::int32_t qb, std::int32_t kb) {
      return qb - kb < 2 || kb < 1 || (qb * 7 + kb * 13) % 11 == 0;
    });
  if (name == "bigbird") return sp::bigbird(T, block, 2, 1, 2, 1);
  if (name == "longformer") {
    std::vector<std::int32_t> globals;  // the first 16 tokens (a prompt's instruction, say)
    for (std::int32_t i = 0; i < std::min(16, T); ++i) globals.push_back(i);
    return sp::longformer(T, block, 2, globals);
  }
  if (name == "sinks") return sp::sinks(T, block, 1, 4);
  fail("bench attention: unknown pattern '{}' (causal, local, strided, bigbird_peer, bigbird, longformer, sinks)",
       name);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

std::vector<std::int32_t> parse_ints(const std::string& text, const char* option, std::int32_t lo, std::int32_t hi) {
  std::vector<std::int32_t> out;
  for (const std::string& item : split(text)) {
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < lo || value > hi)
      fail("bench attention: {} expects numbers from {} to {} separated by commas, got '{}'", option, lo, hi, text);
    out.push_back(static_cast<std::int32_t>(value));
  }
  return out;
}

// One line per query block, "kb:kind ..." (kind 0 full, 1 causal, 2 global), after a header and
// the global tokens; read by attention_peer.py.
std::string layout_text(const sp::BlockLayout& l) {
  std::string text = fmt::format("minitx-block-layout 1\nT {} block {} nb {}\nglobals", l.T, l.block, l.nb);
  for (std::size_t i = 0; i < l.global_tokens.size(); ++i)
    if (l.global_tokens[i]) text += fmt::format(" {}", i);
  text += '\n';
  for (std::int32_t qb = 0; qb < l.nb; ++qb) {
    for (std::int32_t e = l.row_ptr[qb]; e < l.row_ptr[qb + 1]; ++e)
      text += fmt::format("{}{}:{}", e == l.row_ptr[qb] ? "" : " ", l.cols[e], static_cast<int>(l.kinds[e]));
    text += '\n';
  }
  return text;
}

#if MINITX_CUDA
struct Timing {
  double fwd_ms, fwdbwd_ms;
};

// Rotating sets of every operand; medians of per-run event times.
Timing time_layout(const sp::BlockLayout& layout, std::int32_t B, std::int32_t H, std::int32_t D, int reps) {
  const std::int32_t T = layout.T;
  const std::size_t N = static_cast<std::size_t>(B) * T, C = static_cast<std::size_t>(H) * D;
  constexpr int kSets = 3;
  struct Set {
    cuda::bf16_bits *qkv, *out, *dout, *dqkv;
    float *lse, *delta;
  };
  std::vector<Set> sets(kSets);
  std::vector<cuda::bf16_bits> host(N * 3 * C);
  for (int s = 0; s < kSets; ++s) {
    Set& x = sets[s];
    MINITX_CUDA_CHECK(cudaMalloc(&x.qkv, N * 3 * C * 2));
    MINITX_CUDA_CHECK(cudaMalloc(&x.out, N * C * 2));
    MINITX_CUDA_CHECK(cudaMalloc(&x.dout, N * C * 2));
    MINITX_CUDA_CHECK(cudaMalloc(&x.dqkv, N * 3 * C * 2));
    MINITX_CUDA_CHECK(cudaMalloc(&x.lse, N * H * 4));
    MINITX_CUDA_CHECK(cudaMalloc(&x.delta, N * H * 4));
    const CounterRng rng(static_cast<std::uint64_t>(s) + 1, static_cast<std::uint64_t>(T));
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = cuda::bf16_from_float(rng.normal(i));
    MINITX_CUDA_CHECK(cudaMemcpy(x.qkv, host.data(), N * 3 * C * 2, cudaMemcpyHostToDevice));
    MINITX_CUDA_CHECK(cudaMemcpy(x.dout, host.data(), N * C * 2, cudaMemcpyHostToDevice));
  }
  const cuda::DeviceLayout dl(layout);
  const cuda::AttentionShape shape{B, T, H, D};
  const auto ld = static_cast<std::int64_t>(C);
  auto fwd = [&](const Set& x) {
    cuda::attention_forward(x.out, ld, x.lse, cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  auto bwd = [&](const Set& x) {
    cuda::attention_backward(x.dqkv, x.dqkv + C, x.dqkv + 2 * C, 3 * ld, x.delta, x.dout, ld, x.out, ld, x.lse,
                             cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  cudaEvent_t start, stop;
  MINITX_CUDA_CHECK(cudaEventCreate(&start));
  MINITX_CUDA_CHECK(cudaEventCreate(&stop));
  auto median_ms = [&](const std::function<void(const Set&)>& run) {
    for (int i = 0; i < 3; ++i) run(sets[i % kSets]);  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      MINITX_CUDA_CHECK(cudaEventRecord(start));
      run(sets[i % kSets]);
      MINITX_CUDA_CHECK(cudaEventRecord(stop));
      MINITX_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0;
      MINITX_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  const Timing timing{median_ms(fwd), median_ms([&](const Set& x) {
                        fwd(x);
                        bwd(x);
                      })};
  MINITX_CUDA_CHECK(cudaEventDestroy(start));
  MINITX_CUDA_CHECK(cudaEventDestroy(stop));
  for (const Set& x : sets)
    for (void* p : {static_cast<void*>(x.qkv), static_cast<void*>(x.out), static_cast<void*>(x.dout),
                    static_cast<void*>(x.dqkv), static_cast<void*>(x.lse), static_cast<void*>(x.delta)})
      MINITX_CUDA_CHECK(cudaFree(p));
  return timing;
}
#endif

}  // namespace

int run_bench_attention(Args& args) {
  const auto names = split(args.option("--patterns").value_or("causal,local,strided,bigbird_peer,bigbird,longformer,sinks"));
  const auto lengths = parse_ints(args.option("--T").value_or("1024,2048,4096,8192,16384"), "--T", 16, 1 << 20);
  const auto blocks = parse_ints(args.option("--block").value_or("128"), "--block", 16, 128);
  const auto tokens = static_cast<std::int32_t>(args.integer("--tokens", 16, 1 << 24, 16384));
  const auto H = static_cast<std::int32_t>(args.integer("--heads", 1, 256, 12));
  const auto D = static_cast<std::int32_t>(args.integer("--dim", 64, 128, 64));
  const int reps = static_cast<int>(args.integer("--reps", 1, 10000, 30));
  const auto output = args.option("--output");
  const auto masks = args.option("--export-masks");
  args.done();

  if (masks) {
    fs::create_directories(*masks);
    for (std::int32_t block : blocks)
      for (std::int32_t T : lengths)
        for (const std::string& name : names)
          write_file_atomic(fs::path(*masks) / fmt::format("{}_b{}_T{}.txt", name, block, T),
                            layout_text(make_pattern(name, T, block)));
  }
#if MINITX_CUDA
  MINITX_CHECK(D == 64 || D == 128, "bench attention: --dim must be 64 or 128, not {}", D);
  std::string csv = "pattern,block,T,B,density,fwd_ms,fwdbwd_ms,fwd_tflops,fwdbwd_tflops,fwd_bytes\n";
  fmt::print("{:<13} {:>5} {:>6} {:>3} {:>7} {:>8} {:>9} {:>7} {:>7} {:>11}\n", "pattern", "block", "T", "B", "density",
             "fwd ms", "f+b ms", "fwd TF", "f+b TF", "fwd bytes");
  for (std::int32_t block : blocks)
    for (std::int32_t T : lengths) {
      const std::int32_t B = std::max(1, tokens / T);
      for (const std::string& name : names) {
        const auto layout = make_pattern(name, T, block);
        const Timing t = time_layout(layout, B, H, D, reps);
        // Kept work only, as the peer counts it: the causal FLOPs (4·B·H·T²·D / 2) times the
        // density; the backward does 2.5 times the forward's matrix products.
        const double flops = 2.0 * B * H * static_cast<double>(T) * T * D * layout.density();
        const double fwd_tf = flops / (t.fwd_ms * 1e9), fb_tf = 3.5 * flops / (t.fwdbwd_ms * 1e9);
        // The least the forward must move: q, k, v read and out written once (bf16), lse (fp32).
        const double bytes = static_cast<double>(B) * T * H * (4.0 * D * 2 + 4);
        fmt::print("{:<13} {:>5} {:>6} {:>3} {:>7.3f} {:>8.3f} {:>9.3f} {:>7.1f} {:>7.1f} {:>11.0f}\n", name, block, T, B,
                   layout.density(), t.fwd_ms, t.fwdbwd_ms, fwd_tf, fb_tf, bytes);
        csv += fmt::format("{},{},{},{},{:.4f},{:.4f},{:.4f},{:.2f},{:.2f},{:.0f}\n", name, block, T, B,
                           layout.density(), t.fwd_ms, t.fwdbwd_ms, fwd_tf, fb_tf, bytes);
      }
    }
  if (output) write_file_atomic(*output, csv);
  return 0;
#else
  (void)tokens, (void)H, (void)D, (void)reps, (void)output;
  if (masks) return 0;
  fail("bench attention: this build has no CUDA (only --export-masks works without it)");
#endif
}

}  // namespace minitx::cli
