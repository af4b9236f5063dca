// The progress line of long runs: a bar, items done of the total, and an ETA
// extrapolated from the items computed so far (reused items cost nothing).
#pragma once
#include <string>

#include "eval/runner.h"

namespace zc::eval {

// "1h02m", "3m05s", "42s"; "?" when unknown (negative or not finite).
std::string format_duration(double seconds);
// "[########........]  37/120  31%  ETA 1m23s  lines lines=100 zipcache #12"
std::string progress_line(const ProgressEvent& e, int bar_width = 24);

}  // namespace zc::eval
