// CSV tables as the stages write them: a header line of column names, then one line per row,
// comma-separated, no quoting. Readers look columns up by name, so a stage may add a column
// without breaking them, and every error names the file, line and column.
#pragma once
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minitx {

struct CsvTable {
  std::string name;  // the file, as error messages name it
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() cells

  std::optional<std::size_t> find_column(std::string_view wanted) const;
  std::size_t column(std::string_view wanted) const;  // fails naming the columns there are
  // The cell as a finite number; fails with "FILE:LINE: column N (NAME): ..." when it is not.
  double number(std::size_t row, std::size_t col) const;
  // An empty cell is "no value" (train_log.csv leaves val_loss empty between evaluations).
  std::optional<double> optional_number(std::size_t row, std::size_t col) const;
  std::size_t line_of(std::size_t row) const { return row + 2; }  // the header is line 1
};

CsvTable parse_csv(std::string_view text, std::string_view name);
CsvTable read_csv(const std::filesystem::path& path);

}  // namespace minitx
