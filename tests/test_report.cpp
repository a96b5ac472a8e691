#include <doctest/doctest.h>

#include "../src/release/report_parts.h"
#include "helpers.h"
#include "minitx/core/csv.h"
#include "minitx/core/io.h"
#include "minitx/release/report.h"

using namespace minitx;

namespace {

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// An output directory as the tiny config's stages would leave it, with made-up numbers.
void write_results(const fs::path& out) {
  write_file_atomic(out / "train_log.csv",
                    "step,lr,train_loss,val_loss\n1,3e-4,6.25,6.2\n2,3e-4,5.5,\n3,3e-4,5.0,\n4,3e-4,4.75,4.9\n");
  write_file_atomic(out / "train_times.csv", "step,elapsed_s,tokens_per_s\n1,0.5,1000.0\n2,1.0,1200.0\n3,1.5,1100.0\n4,2.0,1150.0\n");
  write_file_atomic(out / "eval.json", "{\n  \"checkpoint_step\": 4,\n  \"tokens\": 39786,\n  \"val_loss\": 5.083,\n  \"perplexity\": 161.3\n}\n");
  write_file_atomic(out / "bench.csv",
                    "device,length,cached_ms_per_token,cached_std_ms,recompute_ms_per_token,recompute_std_ms,"
                    "cached_tokens_per_s,recompute_tokens_per_s,speedup\ncpu,512,0.8,0.01,20.0,0.1,1250.0,50.0,25.00\n"
                    "cpu,1024,0.88,0.01,45.4,0.2,1136.4,22.0,51.59\n");
  write_file_atomic(out / "bench_positions.csv",
                    "device,position,cached_ms,recompute_ms\ncpu,1,0.5,0.6\ncpu,2,0.6,1.2\ncpu,3,0.7,2.0\n");
  write_file_atomic(out / "bench_quant.csv",
                    "format,bytes,ratio_to_fp32,bits_per_param,val_loss,perplexity,dppl,dppl_pct\n"
                    "fp32,15786752,1.0000,32.000,5.083,161.3,0.0,0.000\nq8_0,4236032,0.2683,8.500,5.083,161.31,0.01,0.006\n"
                    "q4_0,2269952,0.1438,4.500,5.086,161.74,0.44,0.271\n");
  write_file_atomic(out / "bench_quant_times.csv",
                    "device,format,bytes,ratio_to_fp32,threads,prompt_tokens,prompt_tok_s,prompt_speedup,depth,gen_tokens,"
                    "decode_tok_s,decode_speedup,floor_tok_s\n"
                    "cpu,fp32,15786752,1.0000,2,64,900.0,1.00,1,64,300.0,1.00,\n"
                    "cpu,q8_0,4236032,0.2683,2,64,850.0,0.94,1,64,570.0,1.90,\n");
}

// The GPU's rows after the CPU's, as `bench generate` and `bench quant --speed` write them on a
// machine with a GPU (--device auto).
void add_gpu_rows(const fs::path& out) {
  std::string bench = read_file(out / "bench.csv");
  bench += "cuda,512,0.05,0.001,1.0,0.01,20000.0,1000.0,20.00\ncuda,1024,0.06,0.001,2.4,0.02,16666.7,416.7,40.00\n";
  write_file_atomic(out / "bench.csv", bench);
  std::string positions = read_file(out / "bench_positions.csv");
  positions += "cuda,1,0.2,0.2\ncuda,2,0.05,0.3\ncuda,3,0.05,0.4\n";
  write_file_atomic(out / "bench_positions.csv", positions);
  std::string times = read_file(out / "bench_quant_times.csv");
  times += "cuda,fp32,15786752,1.0000,,64,90000.0,1.00,16,48,9000.0,1.00,40000.0\n"
           "cuda,q8_0,4236032,0.2683,,64,80000.0,0.89,16,48,13500.0,1.50,120000.0\n";
  write_file_atomic(out / "bench_quant_times.csv", times);
}

struct Fixture {
  fs::path root = fs::current_path();
  std::string config = read_file("configs/tiny.toml");
  TempDir dir{"minitx-test-report"};
  test::InDirectory in{dir.path()};
  Fixture() { write_file_atomic("configs/tiny.toml", config); }
  Report render() { return render_report(load_experiment("configs/tiny.toml"), root / "scripts"); }
};

}  // namespace

TEST_CASE("report: column labels carry units, numbers keep their text") {
  CHECK(report::column_label("decode_tok_s") == "decode (tokens/s)");
  CHECK(report::column_label("bytes") == "file size (B)");
  CHECK(report::column_label("attn_fwd_ms") == "attn fwd (ms)");
  CHECK(report::column_label("layout") == "layout");
  CHECK(report::group_digits(15786752) == "15,786,752");
  CHECK(report::group_digits(999) == "999");
  CHECK(report::ratio(51.59) == "52");
  CHECK(report::ratio(0.1438) == "0.14");
  CHECK(report::ratio(1.0234) == "1.02");
  CHECK(report::amount(68411.04) == "68,411");
  CHECK(report::amount(12.34) == "12.3");
  CHECK(report::signed_percent(0.271) == "+0.27%");
  CHECK(report::signed_percent(-0.0039) == "−0.0039%");
  CHECK(report::signed_percent(12.345) == "+12.35%");
  CHECK(report::escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  const CsvTable t = parse_csv("layout,device,bytes\nlocal,cpu,123456\nlocal,cuda:0,7\n", "s.csv");
  const std::string html = report::tables_by_device(t, "Sparse.");
  CHECK(count(html, "<table>") == 2);
  CHECK(html.find("Sparse. On the GPU.") != std::string::npos);
  CHECK(html.find("<td class=\"num\">123,456</td>") != std::string::npos);
  CHECK(html.find("<th scope=\"col\" class=\"num\">file size (B)</th>") != std::string::npos);
}

TEST_CASE("report: gnuplot's SVG is inlined with unique ids, page colours and nothing external") {
  const std::string svg =
      "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"5\" viewBox=\"0 0 10 5\" xmlns=\"http://www.w3.org/2000/svg\""
      " xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n<title>Gnuplot</title><desc>Produced by GNUPLOT</desc>"
      "<defs><path id='gpPt7' stroke='black'/></defs><use xlink:href='#gpPt7' fill=\"black\"/>"
      "<g clip-path=\"url(#gpclip)\" color=\"black\"><text fill=\"rgb(0,0,0)\"> one</text></g></svg>\n";
  const std::string out = report::inline_svg(svg, "fig-x", "A <chart>");
  CHECK(out.starts_with("<svg class=\"plot\" viewBox=\"0 0 10 5\" role=\"img\" aria-labelledby=\"fig-x-title\">"));
  CHECK(out.find("<title id=\"fig-x-title\">A &lt;chart&gt;</title>") != std::string::npos);
  CHECK(out.find("id='fig-x-gpPt7'") != std::string::npos);
  CHECK(out.find("href='#fig-x-gpPt7'") != std::string::npos);
  CHECK(out.find("url(#fig-x-gpclip)") != std::string::npos);
  for (const char* gone : {"<?xml", "xmlns", "xlink", "Gnuplot", "GNUPLOT", "black", "http"})
    CHECK_MESSAGE(out.find(gone) == std::string::npos, gone);
  CHECK(count(out, "currentColor") == 4);
  CHECK_ERROR_CONTAINS(report::inline_svg("<svg viewBox=\"0 0 1 1\"><script>x</script></svg>", "f", "a"), "'<script'");
  CHECK_ERROR_CONTAINS(report::inline_svg("<svg viewBox=\"0 0 1 1\"><use href=\"other.svg#a\"/></svg>", "f", "a"),
                       "links outside the figure");
  CHECK_ERROR_CONTAINS(report::inline_svg("<svg viewBox=\"0 0 1 1\"><g onload=\"x()\"/></svg>", "f", "a"), "event handler");
  CHECK_ERROR_CONTAINS(report::inline_svg("<svg><g/></svg>", "f", "a"), "no viewBox");
  CHECK_ERROR_CONTAINS(report::inline_svg("not svg", "f", "a"), "not an SVG document");
}

TEST_CASE("report: a section per group of files, captions computed from the data, the same bytes twice") {
  Fixture f;
  const Report bare = f.render();
  CHECK(bare.sections == std::vector<std::string>{"experiment"});
  CHECK(bare.html.find("provenance.json is absent") != std::string::npos);

  write_results("out/tiny");
  const Report full = f.render();
  CHECK(full.sections == std::vector<std::string>{"experiment", "training", "evaluation", "kv-cache", "quantization"});
  CHECK(count(full.html, "<svg class=\"plot\"") == 4);
  CHECK(count(full.html, "<figcaption>") == 4);
  CHECK(full.html.find("Over 1,024 generated tokens the KV cache makes a token 52× cheaper on average (0.880 ms instead of 45.40 ms)") != std::string::npos);
  CHECK(full.html.find("q4_0 is 0.14× the fp32 file for +0.27% perplexity.") != std::string::npos);
  CHECK(full.html.find("q8_0 decodes 1.90× as fast as fp32 (570 against 300 tokens/s).") != std::string::npos);
  CHECK(full.html.find("Training ran at 1,150 tokens/s (the median over 4 steps) and took 2.0 s") != std::string::npos);
  CHECK(full.html.find("validation loss was 4.900 at step 4") != std::string::npos);
  CHECK(full.html.find("<a href=\"#quantization\">Quantization</a>") != std::string::npos);
  for (const char* external : {"http:", "https:", "<script", "<img", "<link", "url(h", "src="})
    CHECK_MESSAGE(full.html.find(external) == std::string::npos, external);
  CHECK(f.render().html == full.html);

  write_file_atomic("out/tiny/bench_sparse.csv",
                    "pattern,impl,device,block,T,fwd_ms,fwdbwd_ms\n"
                    "causal,minitx-cuda,cuda,128,1024,0.2,0.8\nlocal,minitx-cuda,cuda,128,1024,0.1,0.4\n"
                    "causal,minitx-cuda,cuda,128,4096,0.8,2.4\nlocal,minitx-cuda,cuda,128,4096,0.1,0.4\n"
                    "causal,sdpa,cuda,128,4096,0.3,1.2\nlocal,minitx-cpu,cpu,64,256,1.5,4.0\n");
  const Report sparse = f.render();
  CHECK(sparse.sections.back() == "sparse");
  CHECK(sparse.html.find("fwd (ms)") != std::string::npos);
  CHECK(sparse.html.find("On the GPU.") != std::string::npos);
  // The figure: the GPU's rows, SDPA beside them, and its caption computed from the largest T.
  CHECK(sparse.html.find("id=\"fig-sparse-time\"") != std::string::npos);
  CHECK(sparse.html.find("At T = 4,096, local attention's forward and backward take 0.40 ms, 6.00× faster than dense "
                         "causal.") != std::string::npos);
  write_file_atomic("out/tiny/bench_sparse.csv", "layout,device,fwd_ms\nlocal,cpu,1.5\n");
  CHECK_ERROR_CONTAINS(f.render(), "bench_sparse.csv:1: no column 'pattern'");
}

TEST_CASE("report: benchmarks with CPU and GPU rows get a table per device and sentences naming both") {
  Fixture f;
  write_results("out/tiny");
  const Report cpu = f.render();
  // A column no CPU row fills (the GPU's floor) is left out of the CPU's table.
  CHECK(cpu.html.find("floor (tokens/s)") == std::string::npos);
  CHECK(cpu.html.find("On the GPU.") == std::string::npos);
  add_gpu_rows("out/tiny");
  const Report both = f.render();
  CHECK(both.sections == cpu.sections);
  CHECK(both.html.find("Over 1,024 generated tokens the KV cache makes a token 52× cheaper on the CPU (0.880 ms "
                       "instead of 45.40 ms) and 40× cheaper on the GPU (0.060 ms instead of 2.40 ms)") != std::string::npos);
  CHECK(both.html.find("The KV cache makes the token at position 3 2.86× cheaper on the CPU: 0.700 ms, against 2.00 ms "
                       "when the prefix is recomputed; and 8.00× cheaper on the GPU: 0.050 ms, against 0.40 ms") !=
        std::string::npos);
  CHECK(both.html.find("q8_0 decodes 1.90× as fast as fp32 on the CPU (570 against 300 tokens/s).") != std::string::npos);
  CHECK(both.html.find("q8_0 decodes 1.50× as fast as fp32 on the GPU (13,500 against 9,000 tokens/s).") != std::string::npos);
  CHECK(both.html.find("id=\"fig-quant-speed-cuda\"") != std::string::npos);
  // The latency figure holds both devices; the speed figures are one per device.
  CHECK(count(both.html, "<svg class=\"plot\"") == count(cpu.html, "<svg class=\"plot\"") + 1);
  CHECK(count(both.html, "On the GPU.") == 2);
  CHECK(both.html.find("floor (tokens/s)") != std::string::npos);
  CHECK(f.render().html == both.html);

  // Files written before the device column are the CPU's.
  write_file_atomic("out/tiny/bench.csv", "length,cached_ms_per_token,recompute_ms_per_token\n64,1.0,2.0\n");
  write_file_atomic("out/tiny/bench_positions.csv", "position,cached_ms,recompute_ms\n1,0.5,0.6\n");
  CHECK(f.render().html.find("Over 64 generated tokens the KV cache makes a token 2.00× cheaper on average") !=
        std::string::npos);
}

TEST_CASE("report: malformed inputs are named errors") {
  Fixture f;
  write_results("out/tiny");
  write_file_atomic("out/tiny/bench.csv", "length,cached_ms_per_token,recompute_ms_per_token\n64,fast,2.0\n");
  CHECK_ERROR_CONTAINS(f.render(), "bench.csv:2: column 2 (cached_ms_per_token): expected a number, got 'fast'");
  write_file_atomic("out/tiny/bench.csv", "length,cached_ms\n64,1.0\n");
  CHECK_ERROR_CONTAINS(f.render(), "bench.csv:1: no column 'cached_ms_per_token'");
  write_results("out/tiny");
  write_file_atomic("out/tiny/eval.json", "{\"tokens\": 5,");
  CHECK_ERROR_CONTAINS(f.render(), "eval.json: not valid JSON");
  write_results("out/tiny");
  write_file_atomic("out/tiny/train_log.csv", "step,lr,train_loss,val_loss\n");
  CHECK_ERROR_CONTAINS(f.render(), "train_log.csv: no rows");
}
