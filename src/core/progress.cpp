#include "minitx/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace minitx {

Progress::Progress(std::string label, std::uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_) std::fputc('\n', stderr);
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

void Progress::update(std::uint64_t done, std::string_view detail) {
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.1 : 5.0)) return;
  last_draw_ = now;
  draw(done, detail, false);
}

void Progress::finish(std::string_view detail) {
  if (finished_) return;
  draw(total_, detail, true);
  finished_ = true;
}

std::string Progress::format_rate(std::uint64_t done, double seconds, std::string_view unit) {
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  // Slow units (a benchmark run of a minute) read better as seconds per unit than as "0.0 runs/s".
  if (rate >= 1.0 || done == 0) return fmt::format("{:.1f} {}/s", rate, unit);
  if (unit.size() > 1 && unit.ends_with('s')) unit.remove_suffix(1);
  return fmt::format("{:.1f} s/{}", seconds / static_cast<double>(done), unit);
}

void Progress::draw(std::uint64_t done, std::string_view detail, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double percent = total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
  std::string line = fmt::format("{}: {:5.1f}% {}/{} {} | {}", label_, percent, done, total_, unit_,
                                 format_rate(done, elapsed, unit_));
  if (final)
    line += fmt::format(" | {} total", format_duration(elapsed));
  else if (rate > 0)
    line += fmt::format(" | ETA {}", format_duration(static_cast<double>(total_ - std::min(done, total_)) / rate));
  if (!detail.empty()) line += fmt::format(" | {}", detail);
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace minitx
