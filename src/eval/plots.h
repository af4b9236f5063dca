// PNG plots of an eval run, drawn by gnuplot (Debian's gnuplot-nox) run as a
// subprocess on a generated script; the script and its data files stay in the output
// folder so a plot can be restyled by hand.
//   accuracy_vs_lines.png        line retrieval: accuracy (Wilson 95% bars) against
//                                the number of lines, one curve per method (the
//                                ZipCache paper's line-retrieval figure)
//   ratio_<task>_<params>.png    accuracy (perplexity for ppl) against the measured
//                                compression ratio, one point per method
#pragma once
#include <string>
#include <vector>

#include "eval/report.h"

namespace zc::eval {

struct PlotResult {
  std::vector<std::string> files;  // PNGs written
  std::string warning;             // why plots were skipped or failed; empty when fine
};

// `gnuplot` is the program to run (a name found on PATH, or a path).
PlotResult write_plots(const std::vector<Summary>& summaries, const std::string& out_dir,
                       const std::string& title, const std::string& gnuplot = "gnuplot");

// `text` quoted for a POSIX shell.
std::string shell_quote(const std::string& text);

}  // namespace zc::eval
