// minitx bench attention: block-sparse attention forward and forward+backward, per pattern and
// sequence length at a fixed number of tokens (B·T), on the GPU (our bf16 kernel, timed with
// CUDA events, inputs rotating over several buffers so no run finds the previous one's data in
// L2) or on the CPU (the fp32 block-sparse kernel, wall clock). Both take the median of --reps
// runs after warm-up. Each row also gives the attention memory the pattern implies (see Memory).
// --export-masks writes each layout for scripts/peers/attention_peer.py, so PyTorch's SDPA and
// FlexAttention run on exactly the same masks and shapes and write rows of the same CSV.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_attention.h"
#include "commands.h"
#include "common.h"
#include "minitx/backend/cpu/sparse_attention.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"

#if MINITX_CUDA
#include <cuda_runtime.h>

#include "minitx/backend/cuda/attention.h"
#include "minitx/backend/cuda/buffer.h"
#include "minitx/backend/cuda/check.h"
#endif

namespace minitx::cli {
namespace {

namespace sp = sparse;

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

// One line per query block, "kb:kind ..." (kind 0 full, 1 causal, 2 global), after a header
// (with the KV cache's positions, so the peer's memory columns are ours) and the global tokens;
// read by attention_peer.py.
std::string layout_text(const sp::BlockLayout& l, std::int64_t kv_cache_positions) {
  std::string text = fmt::format("minitx-block-layout 2\nT {} block {} nb {} kv_positions {}\nglobals", l.T, l.block,
                                 l.nb, kv_cache_positions);
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

// Each pattern's block grid as a gnuplot matrix (one data set per pattern, separated by two
// blank lines so `index i` picks one): -2 above the diagonal, -1 a skipped block, else the kept
// block's kind (0 full, 1 causal, 2 global).
std::string layout_grid(const std::vector<const AttentionPreset*>& presets, std::int32_t T, std::int32_t block) {
  std::string text;
  for (const AttentionPreset* preset : presets) {
    const sp::BlockLayout l = preset_layout(*preset, T, block);
    text += fmt::format("# {}: T {}, block {}, density {:.4f}\n", preset->name, T, block, l.density());
    for (std::int32_t qb = 0; qb < l.nb; ++qb) {
      for (std::int32_t kb = 0; kb < l.nb; ++kb) {
        sp::BlockKind kind{};
        const int cell = kb > qb ? -2 : l.find(0, qb, kb, &kind) ? static_cast<int>(kind) : -1;
        text += fmt::format("{}{}", kb == 0 ? "" : " ", cell);
      }
      text += '\n';
    }
    text += "\n\n";
  }
  return text;
}

// Median of `reps` timed runs after `warmup` untimed ones. run(i) performs run i and returns
// its time in milliseconds, so the GPU (CUDA events) and the CPU (wall clock) share this loop.
double median_ms(int warmup, int reps, const std::function<double(int)>& run) {
  for (int i = 0; i < warmup; ++i) run(i);
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) ms.push_back(run(warmup + i));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Shape {
  std::int32_t B, T, H, D;
};

struct Timing {
  double fwd_ms, fwdbwd_ms;
};

// Attention memory per layer, in bytes, beside q, k and v (which any implementation holds):
//   saved     what the forward keeps for the backward: out (bf16) and the row statistics lse
//             (fp32) for a fused kernel (ours on the GPU, SDPA's, FlexAttention's); the (T, T)
//             probabilities (fp32) for the CPU kernel, which keeps them whatever the pattern;
//   kv_cache  k and v of the positions a decoder at length T still needs (preset_kv_positions), in
//             the kernel's precision (bf16 on the GPU, fp32 on the CPU);
//   scores    the kept score blocks in fp32, what a kernel that materialised them would need.
struct Memory {
  std::int64_t saved, kv_cache, scores;
};

Memory attention_memory(const sp::BlockLayout& l, const AttentionPreset& preset, bool cpu, const Shape& s) {
  const std::int64_t B = s.B, T = s.T, H = s.H, D = s.D, block = l.block;
  const std::int64_t value_bytes = cpu ? 4 : 2;
  const std::int64_t kept_per_head = l.kept_blocks() / l.heads;
  return Memory{cpu ? B * H * T * T * 4 : B * T * H * (D * 2 + 4),
                2 * B * preset_kv_positions(preset, l.T, l.block) * H * D * value_bytes,
                kept_per_head * block * block * 4 * B * H};
}

#if MINITX_CUDA
// Every operand, kSets times over, sized for `tokens` tokens: B·T is the same at every T, so
// one allocation serves the whole run. Rotating through the sets keeps each run's inputs out of
// L2 (~50 MB on an H200; one set of qkv alone is 75 MB at 16k tokens and C = 768).
class Operands {
 public:
  static constexpr int kSets = 3;
  struct Set {
    cuda::bf16_bits *qkv, *out, *dout, *dqkv;
    float* lse;
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

class EventPair {
 public:
  EventPair() {
    MINITX_CUDA_CHECK(cudaEventCreate(&start_));
    MINITX_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~EventPair() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
  double time_ms(const std::function<void()>& work) {
    MINITX_CUDA_CHECK(cudaEventRecord(start_));
    work();
    MINITX_CUDA_CHECK(cudaEventRecord(stop_));
    MINITX_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    MINITX_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaEvent_t start_, stop_;
};

Timing time_cuda(const sp::BlockLayout& layout, const Operands& ops, const Shape& s, int reps) {
  const cuda::DeviceLayout dl(layout);
  const cuda::AttentionShape shape{s.B, s.T, s.H, s.D};
  const auto ld = static_cast<std::int64_t>(s.H) * s.D;
  // Per layout (its plan decides the partials' size), allocated before any timing.
  const cuda::DeviceBuffer<float> scratch(cuda::attention_backward_scratch_floats(dl, shape));
  auto fwd = [&](const Operands::Set& x) {
    cuda::attention_forward(x.out, ld, x.lse, cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  auto fwdbwd = [&](const Operands::Set& x) {
    fwd(x);
    cuda::attention_backward(x.dqkv, x.dqkv + ld, x.dqkv + 2 * ld, 3 * ld, scratch.get(), scratch.size(), x.dout, ld,
                             x.out, ld, x.lse, cuda::qkv_view(x.qkv, ld), dl, shape);
  };
  EventPair events;
  const Timing timing{median_ms(3, reps, [&](int i) { return events.time_ms([&] { fwd(ops[i]); }); }),
                      median_ms(3, reps, [&](int i) { return events.time_ms([&] { fwdbwd(ops[i]); }); })};
  // A timing of a broken kernel is worthless: the row statistics must at least be finite.
  std::vector<float> lse(static_cast<std::size_t>(s.B) * s.H * s.T);
  MINITX_CUDA_CHECK(cudaMemcpy(lse.data(), ops[0].lse, lse.size() * 4, cudaMemcpyDeviceToHost));
  for (float x : lse) MINITX_CHECK(std::isfinite(x), "bench attention: T = {}: the forward left a non-finite lse", s.T);
  return timing;
}
#endif

// The CPU kernel's operands for up to `tokens` tokens and T_max; att and datt (B, H, T, T) are
// largest at the longest T, where B·T² = tokens·T.
struct CpuOperands {
  std::vector<float> inp, out, dout, dinp, att, datt;
  CpuOperands(std::size_t tokens, std::size_t C, std::size_t H, std::size_t max_T)
      : inp(tokens * 3 * C), out(tokens * C), dout(tokens * C), dinp(tokens * 3 * C), att(tokens * max_T * H),
        datt(att.size()) {
    const CounterRng rng(1, 0);
    for (std::size_t i = 0; i < inp.size(); ++i) inp[i] = rng.normal(i);
    for (std::size_t i = 0; i < dout.size(); ++i) dout[i] = rng.normal(inp.size() + i);
  }
};

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

double wall_ms(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

Timing time_cpu(const sp::BlockLayout& layout, CpuOperands& x, const Shape& s, int reps) {
  const std::size_t B = s.B, T = s.T, NH = s.H, C = static_cast<std::size_t>(s.H) * s.D;
  auto fwd = [&] { cpu::sparse_attention_forward(x.out.data(), x.att.data(), x.inp.data(), layout, B, T, C, NH); };
  auto fwdbwd = [&] {
    fwd();
    cpu::sparse_attention_backward(x.dinp.data(), x.datt.data(), x.dout.data(), x.inp.data(), x.att.data(), layout, B,
                                   T, C, NH);
  };
  const Timing timing{median_ms(1, reps, [&](int) { return wall_ms(fwd); }),
                      median_ms(1, reps, [&](int) { return wall_ms(fwdbwd); })};
  for (std::size_t i = 0; i < B * T * C; ++i)
    MINITX_CHECK(std::isfinite(x.out[i]), "bench attention: T = {}: the CPU forward left a non-finite output", s.T);
  return timing;
}

constexpr const char* kHeader =
    "pattern,impl,device,block,T,B,H,D,density,fwd_ms,fwdbwd_ms,fwd_tflops,fwdbwd_tflops,saved_bytes,kv_cache_bytes,"
    "scores_bytes";

}  // namespace

const std::vector<AttentionPreset>& attention_presets() {
  using Kind = sp::AttentionPattern::Kind;
  // The first four are the peer script's masks (torch_peers.py, block 128: W = 2 blocks, stride 8,
  // its hash-drawn BigBird); the rest are ours. Every number a layout reads is written out, not left
  // to the pattern's defaults, so the bench's layouts stay put when a model's defaults change.
  static const std::vector<AttentionPreset> presets = {
      {"causal", {.kind = Kind::dense}},
      {"local", {.kind = Kind::local, .window = 2}},
      {"strided", {.kind = Kind::strided, .window = 2, .stride = 8}},
      {"bigbird_peer", {.kind = Kind::bigbird, .window = 2, .global_blocks = 1}, true},
      {"bigbird",
       {.kind = Kind::bigbird, .window = 2, .global_blocks = 1, .random_blocks = 2, .per_head = false, .seed = 1}},
      {"longformer", {.kind = Kind::longformer, .window = 2, .global_tokens = 16}},  // a prompt's instruction
      {"sinks", {.kind = Kind::sinks, .window = 4, .sinks = 1}},
  };
  return presets;
}

const AttentionPreset& attention_preset(const std::string& name) {
  std::string known;
  for (const AttentionPreset& preset : attention_presets()) {
    if (preset.name == name) return preset;
    known += fmt::format("{}{}", known.empty() ? "" : ", ", preset.name);
  }
  fail("bench attention: unknown pattern '{}' ({})", name, known);
}

sp::BlockLayout preset_layout(const AttentionPreset& preset, std::int32_t T, std::int32_t block) {
  sp::AttentionPattern p = preset.pattern;
  p.block = block;
  if (!preset.peer_hash) return sp::build_layout(p, T, 1, block);
  return sp::layout_from_predicate(T, block, 1, [p](std::int32_t, std::int32_t qb, std::int32_t kb) {
    return qb - kb < p.window || kb < p.global_blocks || (qb * 7 + kb * 13) % 11 == 0;
  });
}

std::int64_t preset_kv_positions(const AttentionPreset& preset, std::int32_t T, std::int32_t block) {
  const sp::AttentionPattern& p = preset.pattern;
  if (!p.bounded()) return T;
  const std::int64_t blocks = p.window + (p.kind == sp::AttentionPattern::Kind::sinks ? p.sinks : 0);
  return std::min<std::int64_t>(T, blocks * block);
}

int run_bench_attention(Args& args) {
  const auto layout_grid_file = args.option("--layout-grid");
  const auto masks = args.option("--export-masks");
  const auto output = args.option("--output");
  const std::string device_option = args.option("--device").value_or("auto");
  // The device decides the defaults: the CPU kernel keeps (T, T) probabilities and runs on a
  // few cores, so it gets shorter sequences, fewer tokens and heads, and fewer runs.
  const std::string device = layout_grid_file ? "cpu" : resolve_device(device_option);
  const bool gpu = device == "cuda";
  const auto names = split(args.option("--patterns").value_or("causal,local,strided,bigbird_peer,bigbird,longformer,sinks"));
  const auto lengths = parse_ints(args.option("--T").value_or(gpu ? "1024,2048,4096,8192,16384" : "256,512,1024,2048,4096"),
                                  "--T", 16, 1 << 20);
  const auto blocks = parse_ints(args.option("--block").value_or(gpu ? "128" : "64"), "--block", 16, 128);
  const auto tokens = static_cast<std::int32_t>(args.integer("--tokens", 16, 1 << 24, gpu ? 16384 : 4096));
  const auto H = static_cast<std::int32_t>(args.integer("--heads", 1, 256, gpu ? 12 : 4));
  const auto D = static_cast<std::int32_t>(args.integer("--dim", gpu ? 64 : 1, 128, 64));
  const int reps = static_cast<int>(args.integer("--reps", 1, 10000, gpu ? 30 : 5));
  args.done();
  std::vector<const AttentionPreset*> presets;  // an unknown name fails before any work
  for (const std::string& name : names) presets.push_back(&attention_preset(name));
  MINITX_CHECK(!gpu || D == 64 || D == 128, "bench attention: --dim must be 64 or 128 on the GPU, not {}", D);

  if (layout_grid_file) {
    // Only the picture's data: no timing, so it works anywhere and takes milliseconds.
    MINITX_CHECK(lengths.size() == 1 && blocks.size() == 1,
                 "bench attention: --layout-grid draws one T and one block; got --T with {} values and --block with {}",
                 lengths.size(), blocks.size());
    write_file_atomic(*layout_grid_file, layout_grid(presets, lengths[0], blocks[0]));
    return 0;
  }
  const auto B_of = [&](std::int32_t T) { return std::max(1, tokens / T); };
  if (masks) {
    fs::create_directories(*masks);
    for (std::int32_t block : blocks)
      for (std::int32_t T : lengths)
        for (const AttentionPreset* preset : presets)
          write_file_atomic(fs::path(*masks) / fmt::format("{}_b{}_T{}.txt", preset->name, block, T),
                            layout_text(preset_layout(*preset, T, block), preset_kv_positions(*preset, T, block)));
    // The shapes, so the peer times the same B, H and D without being told twice.
    write_file_atomic(fs::path(*masks) / "shape.txt",
                      fmt::format("minitx-bench-shape 1\ntokens {}\nheads {}\ndim {}\nreps {}\n", tokens, H, D, reps));
  }
  std::int32_t max_tokens = 0;
  for (std::int32_t T : lengths) max_tokens = std::max(max_tokens, B_of(T) * T);
  const auto max_T = static_cast<std::size_t>(*std::max_element(lengths.begin(), lengths.end()));
  const auto C = static_cast<std::size_t>(H) * D;

#if MINITX_CUDA
  std::optional<Operands> cuda_ops;
  if (gpu) cuda_ops.emplace(static_cast<std::size_t>(max_tokens), C, static_cast<std::size_t>(H));
#endif
  std::optional<CpuOperands> cpu_ops;
  if (!gpu) cpu_ops.emplace(static_cast<std::size_t>(max_tokens), C, static_cast<std::size_t>(H), max_T);
  const std::string impl = gpu ? "minitx-cuda" : "minitx-cpu";

  fmt::print("{} on {} ({}), H = {}, D = {}, {} tokens per run, median of {} runs\n", impl,
             gpu ? cuda_devices().front().name : "the CPU", device, H, D, tokens, reps);
  fmt::print("{:<13} {:>5} {:>6} {:>3} {:>7} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10}\n", "pattern", "block", "T",
             "B", "density", "fwd ms", "f+b ms", "fwd TF", "f+b TF", "saved MiB", "KV MiB", "scores MiB");
  std::string csv = std::string(kHeader) + "\n";
  for (std::int32_t block : blocks)
    for (std::int32_t T : lengths) {
      const Shape shape{B_of(T), T, H, D};
      for (const AttentionPreset* preset : presets) {
        const std::string_view name = preset->name;
        const auto layout = preset_layout(*preset, T, block);
        Timing t{};
#if MINITX_CUDA
        if (gpu) t = time_cuda(layout, *cuda_ops, shape, reps);
#endif
        if (!gpu) t = time_cpu(layout, *cpu_ops, shape, reps);
        // Kept work only, as the peer counts it: the causal FLOPs (4·B·H·T²·D / 2) times the
        // density; the backward does 2.5 times the forward's matrix products.
        const double flops = 2.0 * shape.B * H * static_cast<double>(T) * T * D * layout.density();
        const double fwd_tf = flops / (t.fwd_ms * 1e9), fb_tf = 3.5 * flops / (t.fwdbwd_ms * 1e9);
        const Memory m = attention_memory(layout, *preset, !gpu, shape);
        fmt::print("{:<13} {:>5} {:>6} {:>3} {:>7.3f} {:>10.3f} {:>10.3f} {:>8.3f} {:>8.3f} {:>10.1f} {:>10.1f} {:>10.1f}\n",
                   name, block, T, shape.B, layout.density(), t.fwd_ms, t.fwdbwd_ms, fwd_tf, fb_tf, mib(m.saved),
                   mib(m.kv_cache), mib(m.scores));
        csv += fmt::format("{},{},{},{},{},{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{},{},{}\n", name, impl, device,
                           block, T, shape.B, H, D, layout.density(), t.fwd_ms, t.fwdbwd_ms, fwd_tf, fb_tf, m.saved,
                           m.kv_cache, m.scores);
      }
    }
  if (output) write_file_atomic(*output, csv);
  return 0;
}

}  // namespace minitx::cli
