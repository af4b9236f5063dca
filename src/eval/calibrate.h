// Matching a method's memory budget to another method's measured compression, as the
// papers compare H2O and MiKV with ZipCache "at the same compression ratio" (SPEC.md
// section 5). The knob is H2O's kept fraction (budget) or MiKV's saliency ratio (the
// fraction of tokens at the high bit width); the ratio is measured on a run of the
// first item, so what is matched is the stored bytes, metadata and windows included.
#pragma once
#include <functional>
#include <string>

#include "kv/method.h"

namespace zc::eval {

struct Calibration {
  std::string resolved;       // the --kv spec with the knob filled in
  double knob = 0;            // budget (h2o) or saliency ratio (mikv)
  double target_ratio = 0;    // the reference's measured ratio
  double achieved_ratio = 0;  // this method's measured ratio at `knob`
  bool reached = false;       // achieved within 1% of the target
  int runs = 0;               // items run to find it
};

// Whether the method has a budget knob (h2o, mikv), and the knob's --kv option name.
bool has_budget_knob(const kv::MethodConfig& method);
std::string knob_option(const kv::MethodConfig& method);  // "budget" or "ratio"
// `base_spec` (no '@') with the knob set: "h2o" -> "h2o:budget=0.2".
std::string spec_with_knob(const std::string& base_spec, const kv::MethodConfig& method, double knob);

// Finds the knob whose measured ratio equals target_ratio: the bits per value
// 16 / ratio grow about linearly with the knob, so the Illinois variant of regula falsi
// on bits(knob) - 16 / target converges in a few runs. A target outside what the knob
// can reach gives the nearest end, with reached = false. measure(config) runs the
// first item with that configuration and returns its measured ratio.
Calibration match_budget(const std::string& base_spec, const kv::MethodConfig& method, double target_ratio,
                         const std::function<double(const kv::MethodConfig&)>& measure);

}  // namespace zc::eval
