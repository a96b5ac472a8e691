// The sections about the model's quality: training (loss curves from train_log.csv, speed from
// train_times.csv) and evaluation (eval.json).
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "minitx/core/error.h"
#include "report_parts.h"

namespace minitx::report {

std::optional<Section> training_section(const Context& cx) {
  if (!cx.has("train_log.csv")) return std::nullopt;
  const CsvTable log = cx.csv("train_log.csv");
  if (log.rows.empty()) fail("{}: no rows; expected one line per training step", log.name);
  const std::size_t step = log.column("step"), train = log.column("train_loss"), val = log.column("val_loss");

  // gnuplot's input: the training loss of every step, then (index 1) the validation loss where
  // it was measured.
  std::string data = "# step train_loss\n", val_data = "\n\n# step val_loss\n";
  std::vector<std::size_t> evaluated;
  for (std::size_t r = 0; r < log.rows.size(); ++r) {
    data += fmt::format("{} {}\n", log.number(r, step), log.number(r, train));
    if (const auto v = log.optional_number(r, val)) {
      val_data += fmt::format("{} {}\n", log.number(r, step), *v);
      evaluated.push_back(r);
    }
  }
  const std::size_t last = log.rows.size() - 1;
  std::string caption = fmt::format("Training loss went from {} at step {} to {} at step {}",
                                    fixed(log.number(0, train), 3), log.rows[0][step], fixed(log.number(last, train), 3),
                                    log.rows[last][step]);
  if (!evaluated.empty())
    caption += fmt::format("; validation loss was {} at step {}", fixed(log.number(evaluated.back(), val), 3),
                           log.rows[evaluated.back()][step]);
  std::string body;
  if (evaluated.empty()) val_data += "NaN NaN\n";  // index 1 must exist for the script
  body += cx.plotter.figure("fig-loss", "report_loss.gp", data + val_data,
                            "Line chart of the training and validation loss in nats per token against the training step.",
                            caption + ".");

  if (cx.has("train_times.csv")) {
    const CsvTable times = cx.csv("train_times.csv");
    if (!times.rows.empty()) {
      const std::size_t rate = times.column("tokens_per_s"), elapsed = times.column("elapsed_s");
      std::vector<double> rates;
      for (std::size_t r = 0; r < times.rows.size(); ++r) rates.push_back(times.number(r, rate));
      std::sort(rates.begin(), rates.end());
      body += fmt::format("<p>Training ran at {} tokens/s (the median over {} steps) and took {} s in all "
                          "(<code>train_times.csv</code>).</p>\n",
                          group_digits(static_cast<std::uint64_t>(rates[rates.size() / 2] + 0.5)), times.rows.size(),
                          fixed(times.number(times.rows.size() - 1, elapsed), 1));
    }
  }
  // Every step is in the figure; the table keeps the steps where validation loss was measured.
  body += table_html(log, evaluated.empty() ? "Loss by step (<code>train_log.csv</code>)."
                                            : "Loss at each evaluation step (<code>train_log.csv</code>; the figure has every step).",
                     evaluated.empty() ? std::vector<std::size_t>{} : evaluated);
  return Section{"training", "Training", body};
}

std::optional<Section> evaluation_section(const Context& cx) {
  if (!cx.has("eval.json")) return std::nullopt;
  const fs::path path = cx.file("eval.json");
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
  if (!doc.is_object()) fail("{}: expected a JSON object", path.string());
  for (const char* key : {"tokens", "val_loss", "perplexity"})
    if (!doc.contains(key) || !doc[key].is_number()) fail("{}: \"{}\": expected a number", path.string(), key);
  std::string body = fmt::format("<p>Over all {} validation tokens the model's loss is {} nats/token: a perplexity of {}.</p>\n",
                                 group_digits(doc["tokens"].get<std::uint64_t>()), fixed(doc["val_loss"].get<double>(), 4),
                                 fixed(doc["perplexity"].get<double>(), 2));
  static const std::pair<const char*, const char*> kNames[] = {
      {"checkpoint_step", "checkpoint step"}, {"window", "window (tokens)"}, {"windows", "windows"},
      {"tokens", "tokens"}, {"val_loss", "validation loss (nats/token)"}, {"perplexity", "perplexity"}};
  body += "<div class=\"table\"><table>\n<caption>Evaluation on <code>val.bin</code> (<code>eval.json</code>).</caption>\n"
          "<thead><tr><th scope=\"col\">quantity</th><th scope=\"col\" class=\"num\">value</th></tr></thead>\n<tbody>\n";
  for (const auto& [key, value] : doc.items()) {
    std::string label = key;
    for (const auto& [k, name] : kNames)
      if (key == k) label = name;
    const std::string text = value.is_number_unsigned() ? group_digits(value.get<std::uint64_t>())
                             : value.is_string()        ? escape(value.get<std::string>())
                                                        : escape(value.dump());
    body += fmt::format("<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td></tr>\n", escape(label), text);
  }
  body += "</tbody>\n</table></div>\n";
  return Section{"evaluation", "Evaluation", body};
}

}  // namespace minitx::report
