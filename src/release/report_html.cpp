// Text and tables of the report. Numbers in tables are the CSV's own text (only long integers
// get digit groups), so the page shows exactly what the stage wrote.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "report_parts.h"

namespace minitx::report {
namespace {

bool is_integer(std::string_view cell) {
  if (cell.empty()) return false;
  for (char c : cell)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_number(std::string_view cell) {
  double value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  return !cell.empty() && ec == std::errc() && end == cell.data() + cell.size();
}

struct Label {
  std::string_view column, label;
};
// The columns the stages write, in words, with units.
constexpr std::array kLabels = {
    Label{"step", "step"},
    Label{"lr", "learning rate"},
    Label{"train_loss", "train loss (nats/token)"},
    Label{"val_loss", "validation loss (nats/token)"},
    Label{"elapsed_s", "elapsed (s)"},
    Label{"tokens_per_s", "throughput (tokens/s)"},
    Label{"length", "generated length L (tokens)"},
    Label{"cached_ms_per_token", "KV cache (ms/token)"},
    Label{"cached_std_ms", "KV cache std. dev. (ms)"},
    Label{"recompute_ms_per_token", "no cache (ms/token)"},
    Label{"recompute_std_ms", "no cache std. dev. (ms)"},
    Label{"cached_tokens_per_s", "KV cache (tokens/s)"},
    Label{"recompute_tokens_per_s", "no cache (tokens/s)"},
    Label{"speedup", "speedup (×)"},
    Label{"format", "format"},
    Label{"bytes", "file size (B)"},
    Label{"ratio_to_fp32", "size / fp32 (×)"},
    Label{"bits_per_param", "size per parameter (bits)"},
    Label{"perplexity", "perplexity"},
    Label{"dppl", "Δ perplexity"},
    Label{"dppl_pct", "Δ perplexity (%)"},
    Label{"threads", "threads"},
    Label{"prompt_tokens", "prompt (tokens)"},
    Label{"prompt_tok_s", "prompt (tokens/s)"},
    Label{"prompt_speedup", "prompt speedup vs fp32 (×)"},
    Label{"gen_tokens", "generated (tokens)"},
    Label{"decode_tok_s", "decode (tokens/s)"},
    Label{"decode_speedup", "decode speedup vs fp32 (×)"},
    Label{"device", "device"},
};

struct Suffix {
  std::string_view suffix, unit;
};
// For columns no stage writes yet (bench_sparse.csv): the unit from the name's ending.
constexpr std::array kSuffixes = {
    Suffix{"_tok_s", "tokens/s"}, Suffix{"_tokens_per_s", "tokens/s"}, Suffix{"_gflops", "GFLOP/s"},
    Suffix{"_gb_s", "GB/s"},      Suffix{"_ms", "ms"},                 Suffix{"_us", "µs"},
    Suffix{"_s", "s"},            Suffix{"_bytes", "B"},               Suffix{"_pct", "%"},
    Suffix{"_speedup", "×"},      Suffix{"_tokens", "tokens"},
};

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string group_digits(std::uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string fixed(double value, int decimals) { return fmt::format("{:.{}f}", value, decimals); }

std::string ratio(double value) { return fixed(value, std::fabs(value) >= 10 ? 0 : 2); }

std::string amount(double value) {
  const double a = std::fabs(value);
  if (a >= 100) return (value < 0 ? "−" : "") + group_digits(static_cast<std::uint64_t>(std::llround(a)));
  return fixed(value, a >= 10 ? 1 : 2);
}

std::string signed_percent(double value) {
  const double a = std::fabs(value);
  // Two significant digits below 1%, so that a tiny change does not read as "+0.00%".
  const int decimals = a >= 1 || a == 0 ? 2 : std::max(2, 1 - static_cast<int>(std::floor(std::log10(a))));
  return fmt::format("{}{}%", value < 0 ? "−" : "+", fixed(a, decimals));
}

std::string column_label(std::string_view column) {
  for (const Label& l : kLabels)
    if (l.column == column) return std::string(l.label);
  std::string words(column);
  std::string unit;
  for (const Suffix& s : kSuffixes)
    if (words.size() > s.suffix.size() && words.ends_with(s.suffix)) {
      words.resize(words.size() - s.suffix.size());
      unit = s.unit;
      break;
    }
  for (char& c : words)
    if (c == '_') c = ' ';
  return unit.empty() ? words : fmt::format("{} ({})", words, unit);
}

std::string table_html(const CsvTable& table, const std::string& caption, std::vector<std::size_t> rows) {
  if (rows.empty())
    for (std::size_t r = 0; r < table.rows.size(); ++r) rows.push_back(r);
  std::vector<bool> numeric(table.header.size(), true), shown(table.header.size(), false);
  for (std::size_t c = 0; c < table.header.size(); ++c)
    for (std::size_t r : rows) {
      if (!table.rows[r][c].empty() && !is_number(table.rows[r][c])) numeric[c] = false;
      if (!table.rows[r][c].empty()) shown[c] = true;
    }
  // A column with no value in any of these rows (one device's measure in another's table) is left out.
  std::string out = fmt::format("<div class=\"table\"><table>\n<caption>{}</caption>\n<thead><tr>", caption);
  for (std::size_t c = 0; c < table.header.size(); ++c)
    if (shown[c])
      out += fmt::format("<th scope=\"col\"{}>{}</th>", numeric[c] ? " class=\"num\"" : "", escape(column_label(table.header[c])));
  out += "</tr></thead>\n<tbody>\n";
  for (std::size_t r : rows) {
    out += "<tr>";
    for (std::size_t c = 0; c < table.header.size(); ++c) {
      if (!shown[c]) continue;
      const std::string& cell = table.rows[r][c];
      // Counts and sizes get digit groups; short integers (steps, lengths) stay as written, and so
      // does anything too long for 64 bits.
      const bool grouped = is_integer(cell) && cell.size() > 4 && cell.size() < 20;
      const std::string text = grouped ? group_digits(std::stoull(cell)) : escape(cell);
      out += fmt::format("<td{}>{}</td>", numeric[c] ? " class=\"num\"" : "", cell.empty() ? "—" : text);
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table></div>\n";
}

std::string tables_by_device(const CsvTable& table, const std::string& caption) {
  const auto device = table.find_column("device");
  std::vector<std::size_t> cpu, gpu;
  for (std::size_t r = 0; r < table.rows.size(); ++r)
    (device && table.rows[r][*device].starts_with("cuda") ? gpu : cpu).push_back(r);
  if (gpu.empty()) return table_html(table, caption);
  std::string out;
  if (!cpu.empty()) out += table_html(table, caption + " On the CPU.", cpu);
  return out + table_html(table, caption + " On the GPU.", gpu);
}

}  // namespace minitx::report
