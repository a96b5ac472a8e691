#include <doctest/doctest.h>

#include <string>

#include "../src/cli/commands.h"
#include "helpers.h"
#include "minitx/core/io.h"

TEST_CASE("quant bench: a tiny run writes one CSV row per shape, thread count and format") {
  minitx::TempDir dir("minitx-test");
  const std::string csv = (dir.path() / "bench.csv").string();
  minitx::cli::Args args("bench quant-kernels", {"--shapes", "8x64,4x32", "--threads", "1,2", "--ms", "1", "--output", csv});
  CHECK(minitx::cli::run_bench_quant_kernels(args) == 0);
  const std::string text = minitx::read_file(csv);
  CHECK(text.rfind("rows,cols,threads,format,weight_bytes,bytes_vs_f32,us_per_call,", 0) == 0);
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines == 1 + 2 * 2 * 3);
  CHECK(text.find("\n8,64,1,q4_0,288,0.1406,") != std::string::npos);  // 8 rows of 2 blocks of 18 bytes
  CHECK(text.find("\n4,32,2,q8_0,136,0.2656,") != std::string::npos);
}

TEST_CASE("quant bench: bad options are errors") {
  minitx::cli::Args odd("bench quant-kernels", {"--shapes", "8x48"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_quant_kernels(odd), "columns must be a multiple of 32, got 48");
  minitx::cli::Args malformed("bench quant-kernels", {"--shapes", "8by64"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_quant_kernels(malformed), "ROWSxCOLS");
  minitx::cli::Args threads("bench quant-kernels", {"--threads", "0"});
  CHECK_ERROR_CONTAINS(minitx::cli::run_bench_quant_kernels(threads), "--threads expects whole numbers from 1 to 1024");
}
