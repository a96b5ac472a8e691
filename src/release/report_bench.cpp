// The benchmark sections: the KV cache (bench.csv, bench_positions.csv), quantization
// (bench_quant.csv, bench_quant_times.csv) and block-sparse attention (bench_sparse.csv).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>

#include "minitx/core/error.h"
#include "report_parts.h"

namespace minitx::report {
namespace {

void require_rows(const CsvTable& table) {
  if (table.rows.empty()) fail("{}: no rows; expected one line per measurement", table.name);
}

// The rows of each device, devices in the order the file first names them. A file without a
// `device` column (written before the GPU's rows existed) is the CPU's.
struct DeviceRows {
  std::string device;  // "cpu" or "cuda"
  std::vector<std::size_t> rows;
};
std::vector<DeviceRows> rows_by_device(const CsvTable& table) {
  const auto column = table.find_column("device");
  std::vector<DeviceRows> out;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::string device = column ? table.rows[r][*column] : "cpu";
    auto it = std::find_if(out.begin(), out.end(), [&](const DeviceRows& d) { return d.device == device; });
    if (it == out.end()) it = out.insert(out.end(), DeviceRows{device, {}});
    it->rows.push_back(r);
  }
  return out;
}

std::string device_name(const std::string& device) { return device.starts_with("cuda") ? "GPU" : "CPU"; }

std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? std::string(separator) : "") + parts[i];
  return out;
}

}  // namespace

std::optional<Section> kv_cache_section(const Context& cx) {
  if (!cx.has("bench.csv")) return std::nullopt;
  const CsvTable bench = cx.csv("bench.csv");
  require_rows(bench);
  const std::size_t length = bench.column("length"), cached = bench.column("cached_ms_per_token"),
                    recompute = bench.column("recompute_ms_per_token");
  // Each device's longest length: the cache's gain there, naming the device when there are two.
  const std::vector<DeviceRows> devices = rows_by_device(bench);
  const bool two = devices.size() > 1;
  std::vector<std::string> gains;
  for (const DeviceRows& d : devices) {
    const std::size_t last = d.rows.back();
    gains.push_back(fmt::format("{}× cheaper {} ({} ms instead of {} ms)",
                                ratio(bench.number(last, recompute) / bench.number(last, cached)),
                                two ? "on the " + device_name(d.device) : std::string("on average"),
                                fixed(bench.number(last, cached), 3), fixed(bench.number(last, recompute), 2)));
  }
  const std::string sentence =
      fmt::format("Over {} generated tokens the KV cache makes a token {}",
                  group_digits(static_cast<std::uint64_t>(bench.number(devices.front().rows.back(), length))),
                  joined(gains, " and "));
  std::string body;
  if (cx.has("bench_positions.csv")) {
    const CsvTable positions = cx.csv("bench_positions.csv");
    require_rows(positions);
    const std::size_t pos = positions.column("position"), c = positions.column("cached_ms"), n = positions.column("recompute_ms");
    // One gnuplot index per device, headed by its name (scripts/report_latency.gp).
    std::string data;
    std::vector<std::string> last_tokens;
    const std::vector<DeviceRows> position_devices = rows_by_device(positions);
    const bool both = position_devices.size() > 1;
    for (const DeviceRows& d : position_devices) {
      data += fmt::format("\"{}\" cached_ms recompute_ms\n", device_name(d.device));
      for (std::size_t r : d.rows)
        data += fmt::format("{} {} {}\n", positions.number(r, pos), positions.number(r, c), positions.number(r, n));
      data += "\n\n";
      const std::size_t end = d.rows.back();
      last_tokens.push_back(fmt::format("{}× cheaper{}: {} ms, against {} ms when the prefix is recomputed",
                                        ratio(positions.number(end, n) / positions.number(end, c)),
                                        both ? " on the " + device_name(d.device) : std::string(),
                                        fixed(positions.number(end, c), 3), fixed(positions.number(end, n), 2)));
    }
    body += cx.plotter.figure(
        "fig-latency", "report_latency.gp", data,
        fmt::format("Line chart, logarithmic time axis: milliseconds to generate the token at each position, with the KV "
                    "cache and without it{}.",
                    both ? ", on the CPU and on the GPU (dashed)" : ""),
        fmt::format("The KV cache makes the token at position {} {}.",
                    group_digits(static_cast<std::uint64_t>(positions.number(position_devices.front().rows.back(), pos))),
                    joined(last_tokens, "; and ")));
  }
  body += tables_by_device(bench, sentence + ": mean per-token latency of L generated tokens (<code>bench.csv</code>).");
  return Section{"kv-cache", "KV cache", body};
}

std::optional<Section> quantization_section(const Context& cx) {
  const bool quality = cx.has("bench_quant.csv"), speed = cx.has("bench_quant_times.csv");
  if (!quality && !speed) return std::nullopt;
  std::string body;
  if (quality) {
    const CsvTable q = cx.csv("bench_quant.csv");
    require_rows(q);
    const std::size_t format = q.column("format"), size = q.column("ratio_to_fp32"), dppl = q.column("dppl_pct");
    // Formats of similar size and quality sit close together, so their labels alternate above
    // and below the points in order of size: neighbours never share a side.
    std::vector<std::size_t> by_size(q.rows.size());
    double lo = 0, hi = 0;
    for (std::size_t r = 0; r < q.rows.size(); ++r) {
      by_size[r] = r;
      lo = std::min(lo, q.number(r, dppl));
      hi = std::max(hi, q.number(r, dppl));
    }
    std::stable_sort(by_size.begin(), by_size.end(), [&](std::size_t a, std::size_t b) { return q.number(a, size) < q.number(b, size); });
    const double shift = 0.07 * (hi > lo ? hi - lo : 1.0);
    std::string data = "# format ratio_to_fp32 dppl_pct label_y\n";
    for (std::size_t i = 0; i < by_size.size(); ++i) {
      const std::size_t r = by_size[i];
      data += fmt::format("{} {} {} {}\n", q.rows[r][format], q.number(r, size), q.number(r, dppl),
                          q.number(r, dppl) + (i % 2 == 0 ? shift : -shift));
    }
    const std::size_t smallest = by_size.front();
    body += cx.plotter.figure(
        "fig-quant-size", "report_quant_size.gp", data,
        "Scatter chart: each format's file size as a fraction of the fp32 file against its change in validation perplexity.",
        fmt::format("{} is {}× the fp32 file for {} perplexity.", escape(q.rows[smallest][format]),
                    ratio(q.number(smallest, size)), signed_percent(q.number(smallest, dppl))));
    body += tables_by_device(q, "Size and validation perplexity per format (<code>bench_quant.csv</code>).");
  }
  if (speed) {
    const CsvTable t = cx.csv("bench_quant_times.csv");
    require_rows(t);
    const std::size_t format = t.column("format"), decode = t.column("decode_tok_s"), prompt = t.column("prompt_tok_s");
    // A figure per device: the GPU's tokens/s would flatten the CPU's bars on one axis.
    const std::vector<DeviceRows> devices = rows_by_device(t);
    for (const DeviceRows& d : devices) {
      const bool named = devices.size() > 1 || d.device != "cpu";
      std::optional<std::size_t> base;
      std::string data = "# format decode_tok_s prompt_tok_s\n";
      std::size_t fastest = d.rows.front();
      for (std::size_t r : d.rows) {
        data += fmt::format("{} {} {}\n", t.rows[r][format], t.number(r, decode), t.number(r, prompt));
        if (t.number(r, decode) > t.number(fastest, decode)) fastest = r;
        if (t.rows[r][format] == "fp32") base = r;
      }
      if (!base)
        fail("{}: no row whose format is 'fp32'{}", t.name, named ? " on device " + d.device : std::string());
      const std::string on = named ? " on the " + device_name(d.device) : "";
      const std::string sentence =
          fastest == *base
              ? fmt::format("fp32 decodes fastest{}, at {} tokens/s.", on, amount(t.number(*base, decode)))
              : fmt::format("{} decodes {}× as fast as fp32{} ({} against {} tokens/s).", escape(t.rows[fastest][format]),
                            ratio(t.number(fastest, decode) / t.number(*base, decode)), on,
                            amount(t.number(fastest, decode)), amount(t.number(*base, decode)));
      body += cx.plotter.figure(d.device == "cpu" ? "fig-quant-speed" : "fig-quant-speed-" + d.device,
                                "report_quant_speed.gp", data,
                                fmt::format("Bar chart: decode and prompt tokens per second of each format at batch 1{}.", on),
                                sentence);
    }
    body += tables_by_device(t, "Speed per format at batch 1, medians of repeated runs (<code>bench_quant_times.csv</code>).");
  }
  return Section{"quantization", "Quantization", body};
}

std::optional<Section> sparse_section(const Context& cx) {
  if (!cx.has("bench_sparse.csv")) return std::nullopt;
  const CsvTable sparse = cx.csv("bench_sparse.csv");
  require_rows(sparse);
  const std::size_t pattern = sparse.column("pattern"), impl = sparse.column("impl"), device = sparse.column("device"),
                    block = sparse.column("block"), T = sparse.column("T"), fb = sparse.column("fwdbwd_ms");
  // minitx's own rows of one device (the GPU's when there are any) and one block size, each pattern
  // a series of forward + backward time against T, SDPA's dense causal beside them when measured.
  const bool gpu = std::any_of(sparse.rows.begin(), sparse.rows.end(), [&](const auto& r) { return r[device] == "cuda"; });
  const std::string ours = gpu ? "minitx-cuda" : "minitx-cpu", first_block = [&] {
    for (const auto& r : sparse.rows)
      if (r[impl] == ours) return r[block];
    return std::string();
  }();
  std::vector<std::string> series;  // "impl pattern", in the CSV's order
  for (const auto& r : sparse.rows) {
    const bool wanted = (r[impl] == ours || (gpu && r[impl] == "sdpa")) && r[block] == first_block;
    const std::string name = r[impl] == ours ? r[pattern] : r[impl] + " " + r[pattern];
    if (wanted && std::find(series.begin(), series.end(), name) == series.end()) series.push_back(name);
  }
  std::string body;
  if (!series.empty()) {
    std::string data;
    double dense_at_max = 0, local_at_max = 0, max_T = 0;
    for (const std::string& name : series) {
      data += fmt::format("\"{}\" ms\n", name);
      for (std::size_t r = 0; r < sparse.rows.size(); ++r) {
        const auto& row = sparse.rows[r];
        const std::string here = row[impl] == ours ? row[pattern] : row[impl] + " " + row[pattern];
        if (here != name || row[block] != first_block) continue;
        data += fmt::format("{} {}\n", sparse.number(r, T), sparse.number(r, fb));
        if (sparse.number(r, T) >= max_T) {
          max_T = sparse.number(r, T);
          if (name == "causal") dense_at_max = sparse.number(r, fb);
          if (name == "local") local_at_max = sparse.number(r, fb);
        }
      }
      data += "\n\n";  // the next series is the next gnuplot index
    }
    const std::string sentence =
        dense_at_max > 0 && local_at_max > 0
            ? fmt::format("At T = {}, local attention's forward and backward take {} ms, {}× faster than dense causal.",
                          amount(max_T), amount(local_at_max), ratio(dense_at_max / local_at_max))
            : std::string("Forward and backward time of each pattern against T.");
    body += cx.plotter.figure(
        "fig-sparse-time", "report_sparse_time.gp", data,
        fmt::format("Log-log line chart: forward and backward milliseconds of each attention pattern against the "
                    "sequence length, minitx on the {}{}.",
                    gpu ? "GPU" : "CPU", gpu ? ", with PyTorch SDPA's dense causal beside" : ""),
        sentence);
  }
  body += tables_by_device(sparse, "Block-sparse attention (<code>bench_sparse.csv</code>).");
  return Section{"sparse", "Block-sparse attention", body};
}

}  // namespace minitx::report
