// The page: a header, a contents list, the sections whose files exist, and the style sheet.
#include "minitx/release/report.h"

#include <fmt/format.h>

#include "report_parts.h"

namespace minitx {
namespace {

// Light by default, dark through prefers-color-scheme; figures draw their axes and text in
// currentColor, so they follow. The config's text is folded on screen (the results come first).
// Print drops the contents list, unfolds the config and keeps figures whole.
constexpr const char* kStyle = R"(
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #59636e; --rule: #d0d7de; --band: #f3f5f7; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0f1419; --muted: #9aa5b1; --rule: #3a434d; --band: #1a2129; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 62rem; padding: 1.5rem 1.25rem 3rem; color: var(--fg); background: var(--bg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
h1 { font-size: 1.75rem; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
p.lead, footer { color: var(--muted); }
nav ol { margin: .25rem 0; padding-left: 1.5rem; columns: 2; }
a { color: inherit; }
code, pre { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: .875em; }
pre { background: var(--band); padding: .75rem 1rem; overflow-x: auto; border-radius: 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1.25rem; margin: 0 0 1rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
summary { cursor: pointer; }
figure { margin: 1.25rem 0; break-inside: avoid; }
svg.plot { display: block; width: 100%; max-width: 48rem; height: auto; color: var(--fg); }
figcaption, caption { color: var(--muted); font-size: .9rem; text-align: left; }
figcaption .label { font-weight: 600; color: var(--fg); }
div.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .9rem; break-inside: avoid; }
caption { padding-bottom: .4rem; caption-side: top; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
@media print {
  :root { --fg: #000; --bg: #fff; --muted: #333; --rule: #999; --band: #f3f3f3; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  pre { overflow: visible; white-space: pre-wrap; }
  nav { display: none; }
  h2 { break-after: avoid; }
  /* On paper the config is printed whole, folded or not. */
  details::details-content { content-visibility: visible; }
  details > summary { list-style: none; }
}
)";

}  // namespace

Report render_report(const Experiment& experiment, const fs::path& scripts_dir) {
  using namespace report;
  Plotter plotter(scripts_dir);
  const Context cx{experiment, plotter};
  std::vector<Section> sections;
  sections.push_back(experiment_section(cx));
  for (auto* make : {tokenizer_section, training_section, evaluation_section, kv_cache_section, quantization_section,
                     sparse_section})
    if (auto section = make(cx)) sections.push_back(std::move(*section));

  Report report;
  std::string contents, main;
  for (const Section& s : sections) {
    report.sections.push_back(s.id);
    contents += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", s.id, escape(s.title));
    main += fmt::format("<section id=\"{}\" aria-labelledby=\"{}-h\">\n<h2 id=\"{}-h\">{}</h2>\n{}</section>\n", s.id, s.id,
                        s.id, escape(s.title), s.body);
  }
  report.html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"color-scheme\" content=\"light dark\">\n<title>minitx report: {0}</title>\n<style>{1}</style>\n</head>\n<body>\n"
      "<header>\n<h1>minitx report: {0}</h1>\n<p class=\"lead\">Every result of the <code>{0}</code> experiment, from the files "
      "its stages wrote. A section appears only when its files exist.</p>\n</header>\n"
      "<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n<ol>\n{2}</ol>\n</nav>\n<main>\n{3}</main>\n"
      "<footer>\n<p>Written by <code>minitx report</code> from the config and the files of its output directory; figures by "
      "gnuplot. The page holds no script and refers to nothing outside itself.</p>\n</footer>\n</body>\n</html>\n",
      escape(experiment.name), kStyle, contents, main);
  return report;
}

}  // namespace minitx
