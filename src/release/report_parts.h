// The pieces render_report assembles (private to src/release/report*.cpp): HTML helpers,
// tables from CSV files, figures from gnuplot, and one function per section.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "minitx/core/csv.h"
#include "minitx/core/io.h"
#include "minitx/experiment.h"

namespace minitx::report {

// ---- text (report_html.cpp) ----
std::string escape(std::string_view text);
std::string group_digits(std::uint64_t value);  // 1204997 -> "1,204,997"
// A ratio at a precision that suits its size: 52, 6.3, 0.14.
std::string ratio(double value);
std::string fixed(double value, int decimals);
std::string amount(double value);          // 68411.0 -> "68,411", 12.34 -> "12.3", 0.014 -> "0.01"
std::string signed_percent(double value);  // 0.271 -> "+0.27%", -0.0039 -> "−0.0039%"
// A column name with its unit, for a table header: "decode_tok_s" -> "decode (tokens/s)".
std::string column_label(std::string_view column);
// The rows of a CSV as a table; an empty `rows` means all of them. Numeric columns align right; a
// column empty in every row shown is left out.
std::string table_html(const CsvTable& table, const std::string& caption, std::vector<std::size_t> rows = {});
// A table per device when the CSV has a `device` column with cuda rows, else one table.
std::string tables_by_device(const CsvTable& table, const std::string& caption);

// ---- figures (report_figure.cpp) ----
// Runs gnuplot scripts on data written to a temporary directory and returns their SVG, cleaned
// to inline in the page. Figure ids must be unique on the page: they prefix the SVG's own ids.
class Plotter {
 public:
  explicit Plotter(std::filesystem::path scripts_dir) : scripts_(std::move(scripts_dir)) {}
  // `data` is gnuplot's input text; `script` a file name in the scripts directory.
  std::string figure(const std::string& id, const std::string& script, const std::string& data, const std::string& alt,
                     const std::string& caption);

 private:
  std::filesystem::path scripts_;
  TempDir temp_{"minitx-report"};
  int count_ = 0;
};
// gnuplot's SVG made fit to inline: no XML prologue, ids prefixed, colours following the page's
// text colour, the title replaced by `alt`; fails when anything could reach outside the file.
std::string inline_svg(std::string_view svg, const std::string& id, const std::string& alt);

// ---- sections (report_sections*.cpp) ----
struct Section {
  std::string id, title, body;
};
struct Context {
  const Experiment& experiment;
  Plotter& plotter;
  std::filesystem::path file(std::string_view name) const { return experiment.out_dir / name; }
  bool has(std::string_view name) const { return std::filesystem::is_regular_file(file(name)); }
  CsvTable csv(std::string_view name) const;  // read_csv, naming the file by its name in OUT
};

Section experiment_section(const Context& context);
std::optional<Section> tokenizer_section(const Context& context);
std::optional<Section> training_section(const Context& context);
std::optional<Section> evaluation_section(const Context& context);
std::optional<Section> kv_cache_section(const Context& context);
std::optional<Section> quantization_section(const Context& context);
std::optional<Section> sparse_section(const Context& context);

}  // namespace minitx::report
