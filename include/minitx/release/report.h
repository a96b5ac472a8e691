// OUT/report.html: every result of one experiment in one self-contained page — tables rendered
// from the CSV and JSON files, figures drawn by gnuplot as inline SVG, CSS inline, no script and
// no reference outside the file. A section appears only when its files exist in OUT. The page
// depends only on those files, the config and the gnuplot scripts: no time, host or path.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "minitx/experiment.h"

namespace minitx {

struct Report {
  std::string html;
  std::vector<std::string> sections;  // the ids of the sections on the page, in order
};

// Reads experiment.out_dir; runs gnuplot on scripts_dir/report_*.gp for the figures. Throws an
// Error naming the file, line and column of any malformed input.
Report render_report(const Experiment& experiment, const std::filesystem::path& scripts_dir);

}  // namespace minitx
