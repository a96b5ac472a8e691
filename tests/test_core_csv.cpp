#include <doctest/doctest.h>

#include "helpers.h"
#include "minitx/core/csv.h"

using namespace minitx;

TEST_CASE("csv: columns by name, numbers checked, errors name file, line and column") {
  const CsvTable t = parse_csv("step,loss,note\n1,2.5,a\n2,,b\n", "x.csv");
  CHECK(t.rows.size() == 2);
  CHECK(t.column("loss") == 1);
  CHECK(t.number(0, 1) == 2.5);
  CHECK_FALSE(t.optional_number(1, 1).has_value());
  CHECK_ERROR_CONTAINS(t.number(1, 1), "x.csv:3: column 2 (loss): expected a number, got an empty field");
  CHECK_ERROR_CONTAINS(t.number(0, 2), "x.csv:2: column 3 (note): expected a number, got 'a'");
  CHECK_ERROR_CONTAINS(t.column("speed"), "x.csv:1: no column 'speed' (the header has: step, loss, note)");
  CHECK_ERROR_CONTAINS(parse_csv("a,b\n1,2,3\n", "y.csv"), "y.csv:2: 3 fields, but the header names 2 columns");
  CHECK_ERROR_CONTAINS(parse_csv("a,b\n1,2", "y.csv"), "y.csv: the last line has no newline");
  CHECK_ERROR_CONTAINS(parse_csv("", "y.csv"), "y.csv: the file is empty");
  CHECK_ERROR_CONTAINS(parse_csv("a,b\n\n", "y.csv"), "y.csv:2: empty line");
  CHECK_ERROR_CONTAINS(parse_csv("a,a\n", "y.csv"), "y.csv:1: column 2 repeats the name 'a'");
  CHECK_ERROR_CONTAINS(parse_csv("a\n\"x\"\n", "y.csv"), "y.csv:2:1: quoted fields are not supported");
  CHECK_ERROR_CONTAINS(parse_csv("a\ninf\n", "y.csv").number(0, 0), "expected a number, got 'inf'");
}
