// minitx bench gemm: GFLOP/s of sgemm (C = A·B, square, row-major) by size, thread count and
// micro-kernel (AVX2 and, where the CPU has it, AVX-512: the same bits, so the same rows of the
// check), optionally beside PyTorch's numbers from torch_cpu_peer.py ("sgemm n=N threads=T
// gflops=G").
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "commands.h"
#include "minitx/backend/cpu/gemm.h"
#include "minitx/core/error.h"
#include "minitx/core/io.h"
#include "minitx/core/rng.h"
#include "minitx/core/threads.h"

namespace minitx::cli {
namespace {

std::vector<std::size_t> parse_list(const std::string& text, const char* option) {
  std::vector<std::size_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const unsigned long value = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 1 || value > 16384)
      fail("bench gemm: {} expects numbers from 1 to 16384 separated by commas, got '{}'", option, excerpt(text));
    out.push_back(value);
  }
  return out;
}

// (n, threads) -> GFLOP/s from the peer's log.
std::map<std::pair<std::size_t, std::size_t>, double> read_torch_log(const fs::path& path) {
  std::map<std::pair<std::size_t, std::size_t>, double> out;
  std::stringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::size_t n = 0, threads = 0;
    double gflops = 0;
    if (std::sscanf(line.c_str(), "sgemm n=%zu threads=%zu gflops=%lf", &n, &threads, &gflops) == 3)
      out[{n, threads}] = gflops;
  }
  return out;
}

std::vector<cpu::GemmIsa> parse_isas(const std::string& text) {
  std::vector<cpu::GemmIsa> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "avx2")
      out.push_back(cpu::GemmIsa::avx2);
    else if (item == "avx512" && cpu::cpu_has_avx512())
      out.push_back(cpu::GemmIsa::avx512);
    else if (item == "avx512")
      fail("bench gemm: --isa avx512: this CPU has no AVX-512F");
    else
      fail("bench gemm: --isa expects avx2 and/or avx512 separated by commas, got '{}'", excerpt(text));
  }
  return out;
}

}  // namespace

int run_bench_gemm(Args& args) {
  const auto sizes = parse_list(args.option("--sizes").value_or("256,512,1024,2048"), "--sizes");
  const auto threads = parse_list(args.option("--threads").value_or("1,2"), "--threads");
  const double budget = args.number("--seconds", 0.01, 60.0, 0.5);
  const auto isas = parse_isas(args.option("--isa").value_or(cpu::cpu_has_avx512() ? "avx2,avx512" : "avx2"));
  const auto torch_log = args.option("--torch-log");
  const auto output = args.option("--output");
  args.done();
  const auto torch = torch_log ? read_torch_log(*torch_log) : std::map<std::pair<std::size_t, std::size_t>, double>{};

  const int saved = thread_count();
  const cpu::GemmIsa saved_isa = cpu::gemm_isa();
  std::string csv = "n,threads,isa,gflops,max_abs_error,torch_gflops,ratio\n";
  fmt::print("{:>6} {:>7} {:>7} {:>10} {:>12} {:>8} {:>9}\n", "n", "threads", "kernel", "GFLOP/s", "max |err|",
             "PyTorch", "ours/pt");
  for (std::size_t n : sizes) {
    std::vector<float> a(n * n), b(n * n), c(n * n);
    const CounterRng rng(1, n);
    for (std::size_t i = 0; i < n * n; ++i) {
      a[i] = rng.uniform(2 * i) - 0.5f;
      b[i] = rng.uniform(2 * i + 1) - 0.5f;
    }
    // Check a few rows against the double reference once per size.
    const std::size_t check_rows = std::min<std::size_t>(n, 4);
    std::vector<float> want(check_rows * n);
    cpu::sgemm_reference(cpu::Trans::no, cpu::Trans::no, check_rows, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                         want.data(), n);
    for (std::size_t t : threads)
      for (cpu::GemmIsa isa : isas) {
        set_thread_count(static_cast<int>(t));
        cpu::set_gemm_isa(isa);
        double best = 1e30, spent = 0;
        int runs = 0;
        while (runs < 3 || spent < budget) {
          const auto start = std::chrono::steady_clock::now();
          cpu::sgemm(cpu::Trans::no, cpu::Trans::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          best = std::min(best, s);
          spent += s;
          ++runs;
        }
        double err = 0;
        for (std::size_t i = 0; i < check_rows * n; ++i)
          err = std::max(err, static_cast<double>(std::abs(c[i] - want[i])));
        const double gflops = 2.0 * std::pow(static_cast<double>(n), 3) / best / 1e9;
        const auto it = torch.find({n, t});
        const std::string pt = it == torch.end() ? "" : fmt::format("{:.1f}", it->second);
        const std::string ratio = it == torch.end() ? "" : fmt::format("{:.2f}", gflops / it->second);
        const char* name = cpu::gemm_isa_name(isa);
        fmt::print("{:>6} {:>7} {:>7} {:>10.1f} {:>12.2e} {:>8} {:>9}\n", n, t, name, gflops, err, pt, ratio);
        csv += fmt::format("{},{},{},{:.1f},{:.3e},{},{}\n", n, t, name, gflops, err, pt, ratio);
      }
  }
  set_thread_count(saved);
  cpu::set_gemm_isa(saved_isa);
  if (output) write_file_atomic(*output, csv);
  return 0;
}

}  // namespace minitx::cli
