#include "eval/plots.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "core/error.h"

namespace zc::eval {
namespace {

namespace fs = std::filesystem;

// A string inside gnuplot double quotes (the terminal is noenhanced, so _ and ^ are plain).
std::string gp(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A file name part from task parameters: "tokens=2000" -> "tokens-2000".
std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '-';
  return out;
}

std::string header(const std::string& terminal, const std::string& png, const std::string& title,
                   const std::string& xlabel, const std::string& ylabel) {
  return fmt::format(
      "set terminal {} size 960,600 noenhanced\nset output {}\nset title {}\nset xlabel {}\n"
      "set ylabel {}\nset grid\nset key outside right top\n",
      terminal, gp(png), gp(title), gp(xlabel), gp(ylabel));
}

}  // namespace

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

PlotResult write_plots(const std::vector<Summary>& summaries, const std::string& out_dir,
                       const std::string& title, const std::string& gnuplot) {
  PlotResult result;
  const std::string quiet = " >/dev/null 2>&1";
  if (std::system((shell_quote(gnuplot) + " --version" + quiet).c_str()) != 0) {
    result.warning = fmt::format("gnuplot ('{}') was not found: plots skipped (install Debian's gnuplot-nox)", gnuplot);
    return result;
  }
  const bool cairo = std::system((shell_quote(gnuplot) + " -e 'set terminal pngcairo'" + quiet).c_str()) == 0;
  const std::string terminal = cairo ? "pngcairo" : "png";

  // Methods in order of first appearance, and task configurations.
  std::vector<std::string> methods;
  std::vector<std::pair<std::string, std::string>> configs;
  for (const auto& s : summaries) {
    if (std::find(methods.begin(), methods.end(), s.method) == methods.end()) methods.push_back(s.method);
    if (std::find(configs.begin(), configs.end(), std::pair(s.task, s.params)) == configs.end())
      configs.emplace_back(s.task, s.params);
  }

  std::string script;
  std::vector<std::string> pngs;
  // Accuracy against the number of lines: one data block per method.
  {
    std::string data, plot;
    int block = 0;
    for (const auto& m : methods) {
      std::string rows;
      for (const auto& s : summaries)
        if (s.task == "lines" && s.method == m)
          rows += fmt::format("{} {:.4f} {:.4f} {:.4f}\n", s.size, 100 * s.accuracy, 100 * s.ci_lo, 100 * s.ci_hi);
      if (rows.empty()) continue;
      data += (block ? "\n\n" : "") + rows;
      plot += fmt::format("{}'lines.dat' index {} using 1:2:3:4 with yerrorlines lw 2 title {}",
                          block ? ", \\\n     " : "plot ", block, gp(m));
      ++block;
    }
    if (block > 0) {
      std::ofstream(fs::path(out_dir) / "lines.dat") << data;
      script += header(terminal, "accuracy_vs_lines.png", "Line retrieval: " + title, "number of lines",
                       "accuracy (%)");
      script += "set yrange [-5:105]\nset offsets graph 0.05, graph 0.05, 0, 0\n" + plot + "\n";
      script += "unset offsets\nunset yrange\n";
      pngs.push_back("accuracy_vs_lines.png");
    }
  }
  // Accuracy (or perplexity) against the measured compression ratio, per configuration.
  for (const auto& [task, params] : configs) {
    const bool ppl = task == "ppl";
    const std::string base = "ratio_" + slug(task) + "_" + slug(params);
    std::string data, plot;
    int block = 0;
    for (const auto& s : summaries) {
      if (s.task != task || s.params != params) continue;
      data += fmt::format("{}{:.4f} {:.4f} {:.4f} {:.4f}\n", block ? "\n\n" : "", s.ratio,
                          ppl ? s.perplexity : 100 * s.accuracy, 100 * s.ci_lo, 100 * s.ci_hi);
      plot += fmt::format("{}'{}.dat' index {} using 1:2{} with {} pt 7 ps 1.5 title {}",
                          block ? ", \\\n     " : "plot ", base, block, ppl ? "" : ":3:4",
                          ppl ? "points" : "yerrorbars", gp(s.method));
      ++block;
    }
    std::ofstream(fs::path(out_dir) / (base + ".dat")) << data;
    script += header(terminal, base + ".png", fmt::format("{} {}: {}", task, params, title),
                     "measured compression ratio (fp16 bytes / stored bytes)", ppl ? "perplexity" : "accuracy (%)");
    script += ppl ? "set autoscale y\n" : "set yrange [-5:105]\n";
    script += "set offsets graph 0.1, graph 0.1, graph 0.05, graph 0.05\n" + plot + "\n";
    script += "unset offsets\nunset yrange\n";
    pngs.push_back(base + ".png");
  }
  if (pngs.empty()) return result;
  const fs::path script_path = fs::path(out_dir) / "plots.gp";
  std::ofstream(script_path) << script;
  for (const auto& p : pngs) fs::remove(fs::path(out_dir) / p);
  const std::string cmd = "cd " + shell_quote(out_dir) + " && " + shell_quote(gnuplot) + " plots.gp >gnuplot.log 2>&1";
  const int rc = std::system(cmd.c_str());
  for (const auto& p : pngs)
    if (fs::exists(fs::path(out_dir) / p)) result.files.push_back((fs::path(out_dir) / p).string());
  if (rc != 0 || result.files.size() != pngs.size())
    result.warning = fmt::format("gnuplot failed on {} (see {}): {} of {} plots written", script_path.string(),
                                 (fs::path(out_dir) / "gnuplot.log").string(), result.files.size(), pngs.size());
  return result;
}

}  // namespace zc::eval
