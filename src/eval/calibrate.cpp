#include "eval/calibrate.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace zc::eval {

bool has_budget_knob(const kv::MethodConfig& m) {
  return m.method == kv::Method::H2O || m.method == kv::Method::MiKV;
}

std::string knob_option(const kv::MethodConfig& m) {
  if (!has_budget_knob(m))
    fail("--kv '{}': only h2o and mikv budgets can be matched to another method", m.label);
  return m.method == kv::Method::H2O ? "budget" : "ratio";
}

std::string spec_with_knob(const std::string& base_spec, const kv::MethodConfig& m, double knob) {
  const std::string opt = fmt::format("{}={:.6g}", knob_option(m), knob);
  return base_spec + (base_spec.find(':') == std::string::npos ? ":" : ",") + opt;
}

Calibration match_budget(const std::string& base_spec, const kv::MethodConfig& method, double target_ratio,
                         const std::function<double(const kv::MethodConfig&)>& measure) {
  if (!(target_ratio > 0)) fail("--kv '{}': the reference's measured ratio {} cannot be matched", base_spec, target_ratio);
  // H2O must keep some tokens; MiKV may put none at the high bit width.
  const double lo = method.method == kv::Method::H2O ? 1e-3 : 0.0, hi = 1.0;
  const double want = 16.0 / target_ratio;  // bits per value
  Calibration best;
  best.target_ratio = target_ratio;
  double best_err = INFINITY;
  const auto eval = [&](double knob) {
    const std::string spec = spec_with_knob(base_spec, method, knob);
    const kv::MethodConfig config = kv::parse_method(spec);
    knob = method.method == kv::Method::H2O ? config.budget : config.saliency_ratio;  // as printed
    const double ratio = measure(config);
    ++best.runs;
    const double f = (ratio > 0 ? 16.0 / ratio : INFINITY) - want;
    if (std::abs(f) < best_err) {
      best_err = std::abs(f);
      best.resolved = spec, best.knob = knob, best.achieved_ratio = ratio;
    }
    return f;
  };
  double a = lo, b = hi, fa = eval(lo), fb = eval(hi);
  if (fa < 0 && fb > 0) {
    int side = 0;  // Illinois: halve the weight of an end kept twice in a row
    for (int it = 0; it < 10 && best_err > 2e-3 * want; ++it) {
      const double c = (a * fb - b * fa) / (fb - fa);
      const double fc = eval(c);
      if (fc == 0) break;
      if ((fc < 0) == (fa < 0)) {
        a = c, fa = fc;
        if (side == -1) fb /= 2;
        side = -1;
      } else {
        b = c, fb = fc;
        if (side == 1) fa /= 2;
        side = 1;
      }
    }
  }
  best.reached = std::abs(best.achieved_ratio - target_ratio) <= 0.01 * target_ratio;
  return best;
}

}  // namespace zc::eval
