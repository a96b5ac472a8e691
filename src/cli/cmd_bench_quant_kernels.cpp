// minitx bench quant-kernels: y = W x with fp32, q8_0 and q4_0 weights at a few shapes and
// thread counts. Decoding one token is a chain of such products whose weights are read once per
// token, so weight bytes per second is the number that bounds decode speed. The quantized
// timings include quantizing x to q8_0, as a decode step must. --tokens T times a prompt's
// product instead (T input rows, a different kernel); the kernel column says which ISA ran.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "commands.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/threads.h"
#include "minitx/backend/cpu/gemm.h"
#include "minitx/quant/matmul.h"
#include "minitx/quant/tensor.h"

namespace minitx::cli {
namespace {

using quant::Format;

struct Shape {
  std::size_t rows, cols;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = text.find(sep, pos);
    parts.push_back(text.substr(pos, end - pos));
    if (end == std::string::npos) return parts;
    pos = end + 1;
  }
}

std::size_t parse_size(const std::string& text, const std::string& option, std::size_t lo, std::size_t hi) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < lo || value > hi)
    fail("bench quant-kernels: {} expects whole numbers from {} to {}, got '{}'", option, lo, hi, excerpt(text));
  return static_cast<std::size_t>(value);
}

std::vector<Shape> parse_shapes(const std::string& text) {
  std::vector<Shape> shapes;
  for (const std::string& item : split(text, ',')) {
    const auto dims = split(item, 'x');
    if (dims.size() != 2) fail("bench quant-kernels: --shapes expects ROWSxCOLS items like 512x2048, got '{}'", excerpt(item));
    const Shape s{parse_size(dims[0], "--shapes", 1, 1 << 20), parse_size(dims[1], "--shapes", 32, 1 << 20)};
    if (s.cols % quant::QK != 0)
      fail("bench quant-kernels: --shapes: columns must be a multiple of {}, got {}", quant::QK, s.cols);
    shapes.push_back(s);
  }
  return shapes;
}

// Deterministic weights of a trained model's scale (no RNG state: a hash of the index).
std::vector<float> synthetic(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t x = (seed << 40) ^ (i * 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 31)) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    v[i] = 0.02f * (static_cast<float>(x >> 40) * 0x1p-24f * 2.0f - 1.0f);
  }
  return v;
}

// Seconds per call: the fastest of repeated batches (each about a millisecond) within `budget`.
// The minimum, not the median: on a shared machine the slower batches measure the neighbours.
template <class Fn>
double seconds_per_call(Fn fn, double budget) {
  using clock = std::chrono::steady_clock;
  const auto elapsed = [](clock::time_point since) { return std::chrono::duration<double>(clock::now() - since).count(); };
  fn();  // warm caches and the thread pool
  std::size_t batch = 1;
  while (batch < (1u << 20)) {
    const auto start = clock::now();
    for (std::size_t i = 0; i < batch; ++i) fn();
    if (elapsed(start) >= 1e-3) break;
    batch *= 2;
  }
  double best = 1e30;
  const auto begin = clock::now();
  for (int rep = 0; rep < 5 || elapsed(begin) < budget; ++rep) {
    const auto start = clock::now();
    for (std::size_t i = 0; i < batch; ++i) fn();
    best = std::min(best, elapsed(start) / static_cast<double>(batch));
  }
  return best;
}

}  // namespace

int run_bench_quant_kernels(Args& args) {
  const std::string output = args.option("--output").value_or("out/bench_quant_kernels.csv");
  const auto shapes = parse_shapes(args.option("--shapes").value_or("512x512,512x2048,2048x512,8192x512"));
  std::vector<int> thread_counts;
  for (const std::string& t : split(args.option("--threads").value_or("1,2"), ','))
    thread_counts.push_back(static_cast<int>(parse_size(t, "--threads", 1, 1024)));
  const double budget = static_cast<double>(args.integer("--ms", 1, 60000, 300)) / 1000.0;
  const auto T = static_cast<std::size_t>(args.integer("--tokens", 1, 4096, 1));
  args.done();
  // The quantized kernels follow MINITX_GEMM_ISA (dot.h); fp32 rows always take vec_dot_f32_avx2.
  const char* quant_kernel = quant::dot_kernels().name;

  const int saved_threads = thread_count();
  std::string csv =
      "rows,cols,threads,format,weight_bytes,bytes_vs_f32,us_per_call,weight_gb_per_s,gflop_per_s,speedup_vs_f32,"
      "tokens,kernel\n";
  fmt::print("{:>11} {:>3} {:>5} {:>10} {:>6} {:>10} {:>8} {:>8} {:>8} {:>6}\n", "shape", "thr", "fmt", "weights", "size",
             "us/call", "GB/s", "GFLOP/s", "speedup", "kernel");
  for (const Shape& s : shapes) {
    const std::vector<float> weights = synthetic(s.rows * s.cols, 1), x = synthetic(T * s.cols, 2);
    std::vector<quant::QTensor> tensors;
    for (Format f : {Format::f32, Format::q8_0, Format::q4_0})
      tensors.push_back(quant::quantize_tensor(std::string(quant::format_name(f)), {s.rows, s.cols}, weights, f));
    std::vector<float> y(T * s.rows);
    for (int threads : thread_counts) {
      set_thread_count(threads);
      double f32_seconds = 0.0;
      for (const quant::QTensor& w : tensors) {
        const quant::QMatrix m = w.matrix();
        const double sec = seconds_per_call([&] { quant::matmul(y.data(), x.data(), m, nullptr, T); }, budget);
        if (w.format == Format::f32) f32_seconds = sec;
        const double bytes = static_cast<double>(w.data.size());
        const double ratio = bytes / static_cast<double>(tensors[0].data.size());
        const double flops = 2.0 * static_cast<double>(T * s.rows * s.cols);
        const char* kernel = w.format != Format::f32 ? quant_kernel : "avx2";
        const std::string shape = fmt::format("{}x{}", s.rows, s.cols);
        fmt::print("{:>11} {:>3} {:>5} {:>8.0f}Ki {:>5.3f}x {:>10.1f} {:>8.1f} {:>8.1f} {:>7.2f}x {:>6}\n", shape,
                   threads, quant::format_name(w.format), bytes / 1024, ratio, sec * 1e6, bytes / sec / 1e9,
                   flops / sec / 1e9, f32_seconds / sec, kernel);
        csv += fmt::format("{},{},{},{},{:.0f},{:.4f},{:.2f},{:.2f},{:.2f},{:.3f},{},{}\n", s.rows, s.cols, threads,
                           quant::format_name(w.format), bytes, ratio, sec * 1e6, bytes / sec / 1e9, flops / sec / 1e9,
                           f32_seconds / sec, T, kernel);
      }
    }
  }
  set_thread_count(saved_threads);
  write_file_atomic(output, csv);
  fmt::print("wrote {}\n", output);
  return 0;
}

}  // namespace minitx::cli
