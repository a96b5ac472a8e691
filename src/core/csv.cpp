#include "minitx/core/csv.h"

#include <charconv>
#include <cmath>

#include "minitx/core/error.h"
#include "minitx/core/io.h"

namespace minitx {
namespace {

std::vector<std::string> split_line(std::string_view line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    cells.emplace_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return cells;
    start = comma + 1;
  }
}

}  // namespace

CsvTable parse_csv(std::string_view text, std::string_view name) {
  CsvTable table;
  table.name = name;
  if (text.empty()) fail("{}: the file is empty; expected a header line of column names", name);
  if (text.back() != '\n') fail("{}: the last line has no newline; was the file cut short?", name);
  std::size_t line_no = 0, at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) fail("{}:{}: empty line", name, line_no);
    if (const std::size_t quote = line.find('"'); quote != std::string_view::npos)
      fail("{}:{}:{}: quoted fields are not supported", name, line_no, quote + 1);
    std::vector<std::string> cells = split_line(line);
    if (line_no == 1) {
      for (std::size_t c = 0; c < cells.size(); ++c) {
        if (cells[c].empty()) fail("{}:1: column {} has no name", name, c + 1);
        for (std::size_t d = 0; d < c; ++d)
          if (cells[d] == cells[c]) fail("{}:1: column {} repeats the name '{}'", name, c + 1, cells[c]);
      }
      table.header = std::move(cells);
      continue;
    }
    if (cells.size() != table.header.size())
      fail("{}:{}: {} fields, but the header names {} columns", name, line_no, cells.size(), table.header.size());
    table.rows.push_back(std::move(cells));
  }
  return table;
}

CsvTable read_csv(const fs::path& path) { return parse_csv(read_file(path), path.string()); }

std::optional<std::size_t> CsvTable::find_column(std::string_view wanted) const {
  for (std::size_t c = 0; c < header.size(); ++c)
    if (header[c] == wanted) return c;
  return std::nullopt;
}

std::size_t CsvTable::column(std::string_view wanted) const {
  if (auto c = find_column(wanted)) return *c;
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
  fail("{}:1: no column '{}' (the header has: {})", name, wanted, have);
}

std::optional<double> CsvTable::optional_number(std::size_t row, std::size_t col) const {
  const std::string& cell = rows.at(row).at(col);
  if (cell.empty()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(value))
    fail("{}:{}: column {} ({}): expected a number, got '{}'", name, line_of(row), col + 1, header[col], cell);
  return value;
}

double CsvTable::number(std::size_t row, std::size_t col) const {
  if (auto value = optional_number(row, col)) return *value;
  fail("{}:{}: column {} ({}): expected a number, got an empty field", name, line_of(row), col + 1, header[col]);
}

}  // namespace minitx
