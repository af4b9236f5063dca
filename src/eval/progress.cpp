#include "eval/progress.h"

#include <cmath>

#include <fmt/format.h>

namespace zc::eval {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string progress_line(const ProgressEvent& e, int bar_width) {
  const double frac = e.total > 0 ? double(e.done) / e.total : 1.0;
  const int filled = int(std::lround(frac * bar_width));
  // Remaining items at the mean time of the items computed in this process.
  const double eta = e.done >= e.total ? 0.0
                     : e.computed > 0  ? e.seconds / e.computed * (e.total - e.done)
                                       : -1.0;
  return fmt::format("[{}{}] {:>{}}/{}  {:3.0f}%  ETA {}  {}", std::string(size_t(filled), '#'),
                     std::string(size_t(bar_width - filled), '.'), e.done, std::to_string(e.total).size(),
                     e.total, 100 * frac, format_duration(eta), e.label);
}

}  // namespace zc::eval
