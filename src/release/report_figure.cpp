// Figures: gnuplot's svg terminal, made fit to sit inside the page. gnuplot writes a standalone
// document (XML prologue, namespaces, its own title, ids such as "gpPt7" that every figure
// repeats, and black/white colours); inline, the ids must be unique and the colours must follow
// the page's text colour so that a figure stays legible in dark mode.
#include <fmt/format.h>

#include <array>

#include "minitx/core/error.h"
#include "minitx/core/subprocess.h"
#include "report_parts.h"

namespace minitx::report {
namespace {

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

// The value of `attribute="…"` in `tag`, or "".
std::string attribute(std::string_view tag, std::string_view name) {
  const std::string key = fmt::format(" {}=\"", name);
  const std::size_t at = tag.find(key);
  if (at == std::string_view::npos) return "";
  const std::size_t start = at + key.size(), end = tag.find('"', start);
  return end == std::string_view::npos ? "" : std::string(tag.substr(start, end - start));
}

void erase_element(std::string& text, std::string_view open, std::string_view close) {
  const std::size_t at = text.find(open);
  if (at == std::string::npos) return;
  const std::size_t end = text.find(close, at);
  if (end != std::string::npos) text.erase(at, end + close.size() - at);
}

}  // namespace

std::string inline_svg(std::string_view svg, const std::string& id, const std::string& alt) {
  const std::size_t open = svg.find("<svg");
  const std::size_t open_end = open == std::string_view::npos ? open : svg.find('>', open);
  const std::size_t close = svg.rfind("</svg>");
  if (open_end == std::string_view::npos || close == std::string_view::npos || close < open_end)
    fail("report: figure '{}': gnuplot's output is not an SVG document", id);
  const std::string_view tag = svg.substr(open, open_end - open);
  const std::string view_box = attribute(tag, "viewBox");
  if (view_box.empty()) fail("report: figure '{}': gnuplot's <svg> has no viewBox", id);

  std::string body(svg.substr(open_end + 1, close - open_end - 1));
  erase_element(body, "<title>", "</title>");
  erase_element(body, "<desc>", "</desc>");
  // Unique ids: every reference in gnuplot's output is an href or url() to "#id".
  for (const std::string_view q : {"\"", "'"}) {
    replace_all(body, fmt::format(" id={}", q), fmt::format(" id={}{}-", q, id));
    replace_all(body, fmt::format(" href={}#", q), fmt::format(" href={}#{}-", q, id));  // before xlink's become plain
    replace_all(body, fmt::format("xlink:href={}#", q), fmt::format("href={}#{}-", q, id));
    // gnuplot names black as a word, or as rgb() where a script set a colour (written two ways).
    for (const std::string_view black : {"black", "rgb(0,0,0)", "rgb(  0,   0,   0)"})
      replace_all(body, fmt::format("={}{}{}", q, black, q), fmt::format("={}currentColor{}", q, q));
  }
  replace_all(body, "url(#", fmt::format("url(#{}-", id));

  // Nothing may leave the file or run: no script, no external image, link or font.
  constexpr std::array kForbidden = {"<script", "<image", "<foreignObject", "<a ", "<style", "@import", "http:",
                                     "https:", "file:", "data:", "javascript:", "xlink:"};
  for (const char* needle : kForbidden)
    if (body.find(needle) != std::string::npos)
      fail("report: figure '{}': gnuplot's SVG holds '{}', which could reach outside the page", id, needle);
  for (std::size_t at = body.find(" on"); at != std::string::npos; at = body.find(" on", at + 1)) {
    std::size_t end = at + 3;  // an event handler attribute: " on" letters "="
    while (end < body.size() && body[end] >= 'a' && body[end] <= 'z') ++end;
    if (end > at + 3 && end < body.size() && body[end] == '=')
      fail("report: figure '{}': gnuplot's SVG holds an event handler, which would run a script", id);
  }
  for (std::size_t at = body.find("href="); at != std::string::npos; at = body.find("href=", at + 1))
    if (body.compare(at + 6, id.size() + 1, "#" + id) != 0)
      fail("report: figure '{}': gnuplot's SVG links outside the figure", id);

  return fmt::format("<svg class=\"plot\" viewBox=\"{}\" role=\"img\" aria-labelledby=\"{}-title\">\n<title id=\"{}-title\">{}</title>{}</svg>",
                     view_box, id, id, escape(alt), body);
}

std::string Plotter::figure(const std::string& id, const std::string& script, const std::string& data,
                            const std::string& alt, const std::string& caption) {
  const fs::path script_path = scripts_ / script;
  if (!fs::is_regular_file(script_path)) fail("report: the gnuplot script {} does not exist", script_path.string());
  const fs::path data_path = temp_.path() / (id + ".dat"), svg_path = temp_.path() / (id + ".svg");
  write_file_atomic(data_path, data);
  const ProcessResult result = run_process(
      {"gnuplot", "-e", fmt::format("data='{}'; output='{}'", data_path.string(), svg_path.string()), script_path.string()});
  if (!result.started) fail("report: gnuplot was not found; install it (scripts/install-deps.sh) to draw the figures");
  if (!result.ok())
    fail("report: gnuplot {} failed (exit {}):\n{}", script_path.string(), result.exit_code, tail_lines(result.err, 10));
  ++count_;
  return fmt::format("<figure id=\"{}\">\n{}\n<figcaption><span class=\"label\">Figure {}.</span> {}</figcaption>\n</figure>\n",
                     id, inline_svg(read_file(svg_path), id, alt), count_, caption);
}

}  // namespace minitx::report
