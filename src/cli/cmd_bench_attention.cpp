// minitx bench attention: block-sparse attention forward and forward+backward on the GPU, per
// pattern and sequence length at a fixed number of tokens (B·T), timed with CUDA events (median
// of --reps after warm-up, inputs rotating over several buffers so no run finds the previous
// one's data in L2). --export-masks writes each layout for scripts/peers/attention_peer.py, so
// PyTorch's FlexAttention runs on exactly the same masks.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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

// Every operand, kSets times over, sized for `tokens` tokens: B·T is the same at every T, so
// one allocation serves the whole run. Rotating through the sets keeps each run's inputs out of
// L2 (~50 MB on an H200; one set of qkv alone is 75 MB at 16k tokens and C = 768).
class Operands {
 public:
  static constexpr int kSets = 3;
  struct Set {
    cuda::bf16_bits *qkv, *out, *dout, *dqkv;
    float *lse, *delta;
  };

  Operands(std::size_t tokens, std::size_t C, std::size_t H) : sets_(kSets) {
    std::vector<cuda::bf16_bits> host(tokens * 3 * C);
    const CounterRng rng(1, 0);
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = cuda::bf16_from_float(rng.normal(i));
    for (Set& x : sets_) {
      alloc(x.qkv, tokens * 3 * C);
      alloc(x.out, tokens * C);
      alloc(x.dout, tokens * C);
      alloc(x.dqkv, tokens * 3 * C);
      alloc(x.lse, tokens * H);
      alloc(x.delta, tokens * H);
      MINITX_CUDA_CHECK(cudaMemcpy(x.qkv, host.data(), tokens * 3 * C * 2, cudaMemcpyHostToDevice));
      MINITX_CUDA_CHECK(cudaMemcpy(x.dout, host.data() + tokens * C, tokens * C * 2, cudaMemcpyHostToDevice));
    }
  }
  ~Operands() {
    for (void* p : owned_) cudaFree(p);  // no throwing from a destructor
  }
  Operands(const Operands&) = delete;
  Operands& operator=(const Operands&) = delete;
  const Set& operator[](int i) const { return sets_[static_cast<std::size_t>(i % kSets)]; }

 private:
  template <class T>
  void alloc(T*& p, std::size_t n) {
    MINITX_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    owned_.push_back(p);
  }
  std::vector<Set> sets_;
  std::vector<void*> owned_;
};

// Medians of per-run event times after warm-up, the operands rotating.
Timing time_layout(const sp::BlockLayout& layout, const Operands& ops, std::int32_t B, std::int32_t H, std::int32_t D,
                   int reps) {
  const cuda::DeviceLayout dl(layout);
  const cuda::AttentionShape shape{B, layout.T, H, D};
  const auto ld = static_cast<std::int64_t>(H) * D;
  auto fwd = [&](const Operands::Set& x) {
    cuda::attention_forward(x.out, ld, x.lse, cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  auto fwdbwd = [&](const Operands::Set& x) {
    fwd(x);
    cuda::attention_backward(x.dqkv, x.dqkv + ld, x.dqkv + 2 * ld, 3 * ld, x.delta, x.dout, ld, x.out, ld, x.lse,
                             cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  cudaEvent_t start, stop;
  MINITX_CUDA_CHECK(cudaEventCreate(&start));
  MINITX_CUDA_CHECK(cudaEventCreate(&stop));
  auto median_ms = [&](const std::function<void(const Operands::Set&)>& run) {
    for (int i = 0; i < 3; ++i) run(ops[i]);
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
      MINITX_CUDA_CHECK(cudaEventRecord(start));
      run(ops[i]);
      MINITX_CUDA_CHECK(cudaEventRecord(stop));
      MINITX_CUDA_CHECK(cudaEventSynchronize(stop));
      float t = 0;
      MINITX_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  const Timing timing{median_ms(fwd), median_ms(fwdbwd)};
  // A timing of a broken kernel is worthless: the row statistics must at least be finite.
  std::vector<float> lse(static_cast<std::size_t>(B) * H * layout.T);
  MINITX_CUDA_CHECK(cudaMemcpy(lse.data(), ops[0].lse, lse.size() * 4, cudaMemcpyDeviceToHost));
  for (float x : lse)
    MINITX_CHECK(std::isfinite(x), "bench attention: T = {}: the forward left a non-finite lse", layout.T);
  MINITX_CUDA_CHECK(cudaEventDestroy(start));
  MINITX_CUDA_CHECK(cudaEventDestroy(stop));
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
  std::int32_t max_tokens = 0;
  for (std::int32_t T : lengths) max_tokens = std::max(max_tokens, std::max(1, tokens / T) * T);
  const Operands ops(static_cast<std::size_t>(max_tokens), static_cast<std::size_t>(H) * D, static_cast<std::size_t>(H));
  std::string csv = "pattern,block,T,B,density,fwd_ms,fwdbwd_ms,fwd_tflops,fwdbwd_tflops,fwd_bytes\n";
  fmt::print("{:<13} {:>5} {:>6} {:>3} {:>7} {:>8} {:>9} {:>7} {:>7} {:>11}\n", "pattern", "block", "T", "B", "density",
             "fwd ms", "f+b ms", "fwd TF", "f+b TF", "fwd bytes");
  for (std::int32_t block : blocks)
    for (std::int32_t T : lengths) {
      const std::int32_t B = std::max(1, tokens / T);
      for (const std::string& name : names) {
        const auto layout = make_pattern(name, T, block);
        const Timing t = time_layout(layout, ops, B, H, D, reps);
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
