// Progress of long work: on a terminal a single line redrawn in place with rate and ETA;
// otherwise (logs, CI) a plain line every few seconds and one at the end.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace minitx {

class Progress {
 public:
  Progress(std::string label, std::uint64_t total, std::string unit);
  ~Progress();
  // `done` counts units finished so far; `detail` is shown after the rate (e.g. "loss 3.21").
  void update(std::uint64_t done, std::string_view detail = {});
  void finish(std::string_view detail = {});

  static std::string format_duration(double seconds);
  // "12.5 steps/s", or for units slower than one a second "42.3 s/step" (a plural unit ending
  // in s loses it).
  static std::string format_rate(std::uint64_t done, double seconds, std::string_view unit);

 private:
  void draw(std::uint64_t done, std::string_view detail, bool final);

  std::string label_, unit_;
  std::uint64_t total_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace minitx
