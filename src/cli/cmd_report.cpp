// minitx report: the results in OUT -> OUT/report.html, one self-contained page.
#include <fmt/format.h>

#include "commands.h"
#include "common.h"
#include "minitx/core/io.h"
#include "minitx/release/report.h"

namespace minitx::cli {

int run_report(Args& args) {
  const Experiment ex = experiment_from_args(args);
  const fs::path output = args.option("--output").value_or((ex.out_dir / "report.html").string());
  const fs::path scripts = args.option("--scripts").value_or("scripts");
  args.done();
  // Rendered whole before anything is written: a bad input leaves no page at all.
  const Report report = render_report(ex, scripts);
  write_file_atomic(output, report.html);
  std::string sections;
  for (const auto& s : report.sections) sections += (sections.empty() ? "" : ", ") + s;
  fmt::print("report: wrote {} ({} bytes; sections: {})\n", output.string(), report.html.size(), sections);
  return 0;
}

}  // namespace minitx::cli
